"""Writing one message into the queue: the work of qmail-queue.c.

Run with the current directory at ``QMAILHOME/queue`` and the process
running as the queue's owner (qmailq).  :func:`enqueue` takes the message
as chunks and the envelope from a reader, and returns qmail-queue's exit
code.  The steps are qmail's: ``pid/P.T.S`` created exclusively, its inode
number is the message number; linked to ``mess/<N%23>/N``; the
``Received:`` line and the message written and fsynced; ``intd/N`` written
with ``u``uid, ``p``pid and the envelope, fsynced; linked to ``todo/N``.
Beyond qmail, ``todo/`` is fsynced too before success is reported, so an
acknowledged message survives a crash of the whole machine.
"""
from __future__ import annotations

import itertools
import os
import time
from typing import Callable, Iterable

from pyqmail import qmailids, queue
from pyqmail.date822 import date822
from pyqmail.fsutil import fsync_dir, write_all

#: the longest address qmail-queue takes, its NUL included
ADDR = 1003

OK = 0
TOO_LONG = 11
NOMEM = 51
TIMEOUT = 52
WRITE = 53
READ = 54
PID = 63
MESS = 64
INTD = 65
TODO = 66
BUG = 81
FORMAT = 91

#: qmail-queue's 24-hour suicide timer
DEATH = 86400

_seq = itertools.count(1)


class ReadError(Exception):
    """The message or the envelope could not be read (qmail-queue exit 54)."""


def received(pid: int, uid: int, when: float) -> bytes:
    """The ``Received:`` line qmail-queue prepends, as the account ``uid`` is named."""
    if uid == qmailids.uid(qmailids.ALIAS):
        how = "by alias"
    elif uid == qmailids.uid(qmailids.QMAILD):
        how = "from network"
    elif uid == qmailids.uid(qmailids.QMAILS):
        how = "for bounce"
    else:
        how = f"by uid {uid}"
    return f"Received: (qmail {pid} invoked {how}); ".encode() + date822(when)


class Envelope:
    """qmail-queue's envelope check: ``F``addr\\0, ``T``addr\\0 ..., \\0."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.pos = 0
        self.done = False

    def feed(self, chunk: bytes) -> int:
        """Take more envelope bytes; OK when they end the envelope, else a failing
        exit code or -1 for "more, please".  Bytes after the end are ignored."""
        self.data += chunk
        data = self.data
        while True:
            if self.pos >= len(data):
                return -1
            ch = data[self.pos]
            if self.pos == 0:
                if ch != 0x46:  # F
                    return FORMAT
            elif ch == 0:
                self.done = True
                del data[self.pos + 1:]
                return OK
            elif ch != 0x54:  # T
                return FORMAT
            end = data.find(b"\0", self.pos + 1, self.pos + 1 + ADDR)
            if end < 0:
                if len(data) - self.pos - 1 >= ADDR:
                    return TOO_LONG
                return -1
            self.pos = end + 1

    def records(self) -> bytes:
        """The F and T records (without the final NUL)."""
        return bytes(self.data[:-1])


def enqueue(chunks: Iterable[bytes], envelope: Callable[[], bytes], uid: int, pid: int) -> int:
    """Queue one message; qmail-queue's exit code.

    ``chunks`` yields the message (ReadError if it cannot be read);
    ``envelope()`` returns the next envelope bytes, ``b""`` at its end of
    input (ReadError on trouble).
    """
    now = time.time()
    messfd = intdfd = -1
    messfn = intdfn = None
    try:
        for _ in range(9):
            pidfn = f"pid/{pid}.{int(now)}.{next(_seq)}"
            try:
                messfd = os.open(pidfn, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
                break
            except FileExistsError:
                continue
            except OSError:
                return PID
        else:
            return PID
        try:
            num = os.fstat(messfd).st_ino
        except OSError:
            return PID
        try:
            os.link(pidfn, queue.fn("mess", num))
        except OSError:
            return MESS
        messfn = queue.fn("mess", num)
        try:
            os.unlink(pidfn)
        except OSError:
            return PID
        try:
            buf = [received(pid, uid, now)]
            size = len(buf[0])
            for chunk in chunks:
                buf.append(chunk)
                size += len(chunk)
                if size >= 65536:
                    write_all(messfd, b"".join(buf))
                    buf, size = [], 0
            write_all(messfd, b"".join(buf))
            os.fsync(messfd)
        except ReadError:
            return READ
        except OSError:
            return WRITE
        intdfn = queue.fn("intd", num)
        try:
            intdfd = os.open(intdfn, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except OSError:
            intdfn = None
            return INTD
        env = Envelope()
        try:
            while True:
                data = envelope()
                if not data:
                    return READ
                code = env.feed(data)
                if code >= 0:
                    break
        except ReadError:
            return READ
        if code != OK:
            return code
        try:
            write_all(intdfd, b"u%d\0p%d\0" % (uid, pid) + env.records())
            os.fsync(intdfd)
        except OSError:
            return WRITE
        try:
            os.link(intdfn, queue.fn("todo", num))
        except OSError:
            return TODO
        try:
            fsync_dir("todo")
        except OSError:
            return WRITE
        messfn = intdfn = None  # it is in the queue now: keep it
        queue.trigger_pull()
        return OK
    finally:
        _cleanup(intdfd, intdfn)
        _cleanup(messfd, messfn)


def _cleanup(fd: int, name: str | None) -> None:
    """qmail-queue's cleanup(): empty and remove a half-made file."""
    if fd < 0:
        return
    try:
        if name is not None:
            os.ftruncate(fd, 0)
            os.unlink(name)
    except OSError:
        pass
    finally:
        os.close(fd)
