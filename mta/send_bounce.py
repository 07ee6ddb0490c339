"""qmail-send's bounces: failure reports gathered in ``bounce/N``, then one
bounce message (QSBMF) per message, or a double bounce, injected through
qmail-queue."""
from __future__ import annotations

import os
import time

from mta.send_log import log
from mta.send_rewrite import Controls
from pyqmail import queue
from pyqmail.date822 import date822
from pyqmail.qmailqueue import Queue
from pyqmail.quote import quote, quote2

HI = b"Hi. This is the qmail-send program at "
FAILED = (b".\nI'm afraid I wasn't able to deliver your message to the following addresses.\n"
          b"This is a permanent error; I've given up. Sorry it didn't work out.\n\n")
DOUBLE = b".\nI tried to deliver a bounce message to this address, but the bounce bounced!\n\n"
COPY = b"--- Below this line is a copy of the message.\n\n"
ORIGINAL = b"--- Below this line is the original bounce.\n\n"


def addbounce(ctl: Controls, id_: int, recip: bytes, report: bytes) -> None:
    """Append one recipient's failure report to ``bounce/N`` (retrying until it works)."""
    text = (b"<" + ctl.stripvdomprepend(recip)).replace(b"\n", b"_") + b">:\n" + report
    if report and not report.endswith(b"\n"):
        text += b"\n"
    # a blank line inside the report would end the paragraph: make it "/"
    buf = bytearray(text)
    for pos in range(len(buf) - 2, 0, -1):
        if buf[pos] == 10 and buf[pos - 1] == 10:
            buf[pos] = 47
    buf += b"\n"
    fn = queue.fn("bounce", id_)
    while True:
        try:
            fd = os.open(fn, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            break
        except OSError:
            log("alert: unable to append to bounce message; HELP! sleeping...\n")
            time.sleep(10)
    try:
        view = memoryview(bytes(buf))
        while view:
            try:
                n = os.write(fd, view)
            except OSError:
                n = 0
            if n <= 0:
                log("alert: unable to append to bounce message; HELP! sleeping...\n")
                time.sleep(10)
            else:
                view = view[n:]
    finally:
        os.close(fd)


def getinfo(id_: int) -> tuple[bytes, int] | None:
    """The sender and birth time recorded in ``info/N``, or None."""
    try:
        with open(queue.fn("info", id_), "rb") as f:
            st = os.fstat(f.fileno())
            data = f.read()
    except OSError:
        return None
    end = data.find(b"\0")
    if end < 0 or not data.startswith(b"F"):
        return None
    return data[1:end], int(st.st_mtime)


def _copy(qq: Queue, path: str) -> None:
    try:
        with open(path, "rb") as f:
            while True:
                data = f.read(65536)
                if not data:
                    return
                qq.put(data)
    except OSError:
        qq.fail()


def injectbounce(ctl: Controls, id_: int) -> bool:
    """Send the bounce for message ``id_`` if there is one; False to try again later."""
    info = getinfo(id_)
    if info is None:
        return False
    sender = info[0]
    if sender.endswith(b"-@[]"):
        sender = sender[:-4]  # owner-@host-@[] -> owner-@host
    bfn = queue.fn("bounce", id_)
    try:
        os.stat(bfn)
    except FileNotFoundError:
        return True
    except OSError:
        log(f"warning: unable to stat {bfn}\n")
        return False
    if sender == b"#@[]":
        log(f"triple bounce: discarding {bfn}\n")
    else:
        try:
            qq = Queue()
        except OSError:
            log("warning: unable to start qmail-queue, will try later\n")
            return False
        qp = qq.qp
        if sender:
            bsender, brecip = b"", sender
        else:
            bsender, brecip = b"#@[]", ctl.doublebounceto
        qq.put(b"Date: " + date822(time.time()))
        qq.put(b"From: " + quote(ctl.bouncefrom) + b"@" + ctl.bouncehost + b"\nTo: "
               + quote2(brecip) + b"\nSubject: failure notice\n\n" + HI + ctl.bouncehost
               + (FAILED if sender else DOUBLE))
        _copy(qq, bfn)
        qq.put(COPY if sender else ORIGINAL)
        qq.put(b"Return-Path: <" + quote2(sender) + b">\n")
        _copy(qq, queue.fn("mess", id_))
        qq.sender(bsender)
        qq.recipient(brecip)
        if qq.close():
            log("warning: trouble injecting bounce message, will try later\n")
            return False
        log(f"bounce msg {id_} qp {qp}\n")
    try:
        os.unlink(bfn)
    except OSError:
        log(f"warning: unable to unlink {bfn}\n")
        return False
    return True
