"""qmail-inject: preprocess and send a mail message (qmail-inject(8)).

Usage: ``qmail-inject [ -nNaAhH ] [ -fsender ] [ recip ... ]``.  Reads a
message on stdin, fixes its header as qmail-header(5) says (addresses
completed, Bcc and Return-Path and Content-Length removed, Date, Message-ID,
From and Cc added when missing, or their Resent- forms for a resent
message) and hands it to qmail-queue (``$QMAILQUEUE``, else
QMAILHOME/bin/qmail-queue); ``-n`` prints it instead.  Exit 0; 100 for bad
usage or a severe syntax error; 111 for temporary errors.
"""
from __future__ import annotations

import _signal
import os
import time

from mta import inject_header as hf
from mta import token822 as tk
from pyqmail import control
from pyqmail.qmailqueue import Queue
from pyqmail.quote import need as quote_need, quote2
from pyqmail.sgetopt import OptError, Options
from pyqmail.strerr import die, run

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable, NoReturn, TypeVar

    T = TypeVar("T")
    Rewrite = Callable[[list], list]

FATAL = "qmail-inject: fatal: "
LINELEN = 80
RECIP_DEFAULT, RECIP_ARGS, RECIP_HEADER, RECIP_AH = 1, 2, 3, 4


def die_read() -> NoReturn:
    die(111, FATAL, "read error")


def doordie(line: bytes, result: T | None) -> T:
    """``result``, or die as qmail's doordie with the line that did not parse."""
    if result is None:
        die(100, FATAL, "unable to parse this line:\n", os.fsdecode(line.removesuffix(b"\n")))
    return result


class Output:
    """Where the message goes: qmail-queue (opened at the end of the header) or stdout."""

    def __init__(self, queue: bool) -> None:
        self.queue = queue
        self.qq: Queue | None = None
        self.parts: list[bytes] = []
        self.size = 0
        self.stdout_ok = True

    def open(self) -> None:
        if self.queue:
            try:
                self.qq = Queue()
            except OSError:
                die(111, FATAL, "unable to run qmail-queue")

    def put(self, data: bytes) -> None:
        self.parts.append(data)
        self.size += len(data)
        if self.size >= 65536:
            self.flush()

    def flush(self) -> None:
        data = b"".join(self.parts)
        self.parts.clear()
        self.size = 0
        if self.qq is not None:
            self.qq.put(data)
        elif self.stdout_ok and data:
            try:  # as substdio on subfdout: write errors are not reported
                view = memoryview(data)
                while view:
                    view = view[os.write(1, view):]
            except OSError:
                self.stdout_ok = False


class Inject:
    """One run of qmail-inject: its settings, the header seen so far, the recipients."""

    def __init__(self) -> None:
        env = os.environb
        self.starttime = int(time.time())
        opts = env.get(b"QMAILINJECT", b"")
        self.namecomment = b"c" in opts
        self.deletesender = b"s" in opts
        self.deletefrom = b"f" in opts
        self.deletemessid = b"i" in opts
        self.hackrecip = b"r" in opts
        self.hackmess = b"m" in opts
        self.mailhost = _first(env, b"QMAILHOST", b"MAILHOST")
        self.mailrhost = _first(env, b"QMAILSHOST")
        if self.mailrhost is None:
            self.mailrhost = self.mailhost
        self.mailuser = _first(env, b"QMAILUSER", b"MAILUSER", b"USER", b"LOGNAME")
        if self.mailuser is None:
            self.mailuser = b"anonymous"
        self.mailruser = _first(env, b"QMAILSUSER")
        if self.mailruser is None:
            self.mailruser = self.mailuser
        self.fullname = _first(env, b"QMAILNAME", b"MAILNAME", b"NAME")
        self.sender: bytes | None = None
        self.seen: set[int] = set()
        self.saved: list[bytes] = []
        self.hrlist: list[bytes] = []  # To, Cc, Bcc, Apparently-To
        self.tocclist: list[bytes] = []  # To, Cc
        self.hrrlist: list[bytes] = []  # Resent-To, Resent-Cc, Resent-Bcc
        self.reciplist: list[bytes] = []  # the arguments
        self.resent = False
        self.mft: set[bytes] | None = None
        self.out = Output(True)

    # controls

    def getcontrols(self) -> None:
        mftfile = os.environb.get(b"QMAILMFTFILE")
        if mftfile is not None:
            self.mft = _readfile(mftfile)
        try:
            os.chdir(control.qmail_home())
        except OSError:
            die(111, FATAL, "internal bug")
        try:
            me = control.readline("me")
        except OSError:
            die_read()
        parsed = {}
        for name, lead in (("defaultdomain", b"."), ("defaulthost", b"@"),
                           ("plusdomain", b"."), ("idhost", None)):
            try:
                value = control.readline(name)
            except OSError:
                die_read()
            if value is None:
                value = me if me is not None else name
            override = os.environb.get(b"QMAIL" + name.upper().encode())
            value = os.fsencode(value) if override is None else override
            parsed[name] = value if lead is None else _tokens(lead + value)
        self.idhost = parsed["idhost"]
        self.rewrite = hf.Rewriter(parsed["defaulthost"], parsed["defaultdomain"],
                                   parsed["plusdomain"])

    # addresses

    def _append(self, addr: list, *lists: list) -> None:
        text = tk.unquote(addr)
        for lst in lists:
            lst.append(text)

    def rw_sender(self, addr: list) -> list:
        return self.rewrite(addr)

    def rw_return(self, addr: list) -> list:
        addr = self.rewrite(addr)
        if self.sender is None:
            self.sender = tk.unquote(addr) + (b"-@[]" if self.hackrecip else b"")
        return addr

    def rw_hr(self, addr: list) -> list:
        addr = self.rewrite(addr)
        self._append(addr, self.hrlist)
        return addr

    def rw_hrr(self, addr: list) -> list:
        addr = self.rewrite(addr)
        self._append(addr, self.hrrlist)
        return addr

    def rw_tocc(self, addr: list) -> list:
        addr = self.rewrite(addr)
        self._append(addr, self.hrlist, self.tocclist)
        return addr

    def recip(self, arg: str) -> None:
        toks = tk.parse(quote2(os.fsencode(arg)))
        if toks is None:
            die(100, FATAL, "unable to parse address: ", arg)
        self._append(self.rewrite(toks), self.reciplist)

    def set_sender(self, arg: str) -> None:
        quoted = quote2(os.fsencode(arg))
        self.sender = tk.unquote(self.rewrite(doordie(quoted, tk.parse(quoted))))

    def rewrite_field(self, field: bytes, rw: Rewrite) -> bytes:
        toks = doordie(field, tk.parse(field))
        return tk.unparse(doordie(field, tk.addrlist(toks, rw)), LINELEN)

    # the header

    def field(self, h: bytes) -> None:
        """One header field, continuation lines included (doheaderfield)."""
        htype = hf.known(h)
        if (self.deletefrom and htype == hf.H_FROM or self.deletemessid and htype == hf.H_MESSAGEID
                or self.deletesender and htype == hf.H_RETURNPATH):
            return
        if htype:
            self.seen.add(htype)
        elif not hf.valid(h):
            die(100, FATAL, "invalid header field: ", os.fsdecode(h.removesuffix(b"\n")))
        rw = _REWRITE.get(htype)
        if rw is not None:
            h = self.rewrite_field(h, getattr(self, rw))
        if htype in (hf.H_BCC, hf.H_R_BCC, hf.H_RETURNPATH, hf.H_CONTENTLENGTH):
            return
        self.saved.append(h)

    def made_field(self, toks: list, rw: Rewrite) -> bytes:
        """A field qmail-inject makes: written, parsed and rewritten as one read."""
        text = tk.unparse(toks, LINELEN)
        return tk.unparse(doordie(text, tk.addrlist(doordie(text, tk.parse(text)), rw)), LINELEN)

    def default_from(self) -> bytes:
        toks = [(tk.ATOM, b"From"), (tk.COLON, b"")]
        name = self.fullname
        if name is not None and not self.namecomment:
            toks += [(tk.QUOTE, name), (tk.LEFT, b"")]
        toks.append((tk.QUOTE if quote_need(self.mailuser) else tk.ATOM, self.mailuser))
        if self.mailhost is not None:
            toks += [(tk.AT, b""), (tk.ATOM, self.mailhost)]
        if name is not None:
            toks.append((tk.COMMENT, name) if self.namecomment else (tk.RIGHT, b""))
        return self.made_field(toks, self.rw_sender)

    def default_return_path(self) -> None:
        user = self.mailruser
        if self.hackmess:
            user += b"-%d.%d" % (self.starttime, os.getpid())
        if self.hackrecip:
            user += b"-"
        toks = [(tk.ATOM, b"Return-Path"), (tk.COLON, b""), (tk.QUOTE, user)]
        if self.mailrhost is not None:
            toks += [(tk.AT, b""), (tk.ATOM, self.mailrhost)]
        self.made_field(toks, self.rw_return)

    def finish_header(self) -> None:
        """Everything that goes before the fields read (finishheader)."""
        seen = self.seen
        self.resent = any(h in seen for h in hf.RESENT)
        if self.sender is None:
            self.default_return_path()
        put = self.out.put
        if not self.out.queue:
            put(b"Return-Path: <" + quote2(self.sender) + b">\n")
        self.out.open()
        pid = os.getpid()
        if self.resent:
            if hf.H_R_DATE not in seen:
                put(b"Resent-" + hf.datefield(self.starttime))
            if hf.H_R_MESSAGEID not in seen:
                put(b"Resent-" + hf.msgidfield(self.idhost, self.starttime, pid))
            if hf.H_R_FROM not in seen:
                put(b"Resent-" + self.default_from())
            if hf.H_R_TO not in seen and hf.H_R_CC not in seen:
                put(b"Resent-Cc: recipient list not shown: ;\n")
        else:
            if hf.H_DATE not in seen:
                put(hf.datefield(self.starttime))
            if hf.H_MESSAGEID not in seen:
                put(hf.msgidfield(self.idhost, self.starttime, pid))
            if hf.H_FROM not in seen:
                put(self.default_from())
            if hf.H_TO not in seen and hf.H_CC not in seen:
                put(b"Cc: recipient list not shown: ;\n")
            self.finish_mft()
        for h in self.saved:
            put(h)

    def finish_mft(self) -> None:
        if self.mft is None or hf.H_MAILFOLLOWUPTO in self.seen:
            return
        if not any(a.lower() in self.mft for a in self.tocclist):
            return
        addrs = [quote2(a) for a in reversed(self.tocclist)]
        self.out.put(b"Mail-Followup-To: " + b",\n  ".join(addrs) + b"\n")

    def finish(self, flagrh: bool) -> int:
        """Send the envelope and close the queue (exitnicely)."""
        out = self.out
        out.flush()
        if out.qq is None:
            return 0
        qq = out.qq
        qq.sender(self.sender)
        recips = self.reciplist
        if flagrh:
            recips = recips + (self.hrrlist if self.resent else self.hrlist)
        for r in recips:
            qq.recipient(r)
        answer = qq.close()
        if answer:
            die(100 if answer[0] == "D" else 111, FATAL, answer[1:])
        return 0


_REWRITE = {
    hf.H_TO: "rw_tocc", hf.H_CC: "rw_tocc",
    hf.H_BCC: "rw_hr", hf.H_APPARENTLYTO: "rw_hr",
    hf.H_R_TO: "rw_hrr", hf.H_R_CC: "rw_hrr", hf.H_R_BCC: "rw_hrr",
    hf.H_RETURNPATH: "rw_return",
    **dict.fromkeys((hf.H_SENDER, hf.H_FROM, hf.H_REPLYTO, hf.H_RETURNRECEIPTTO, hf.H_ERRORSTO,
                     hf.H_R_SENDER, hf.H_R_FROM, hf.H_R_REPLYTO), "rw_sender"),
}


def _first(env: dict, *names: bytes) -> bytes | None:
    """The first of the variables ``names`` that is set (even if empty)."""
    for name in names:
        value = env.get(name)
        if value is not None:
            return value
    return None


def _tokens(text: bytes) -> list:
    return doordie(text, tk.parse(text))


def _readfile(name: bytes) -> set[bytes] | None:
    """The lines of a file as control_readfile reads them, lowercased; None if missing."""
    try:
        lines = control.filelines(name)
    except OSError:
        die_read()
    return None if lines is None else {line.lower() for line in lines}


def main(argv: list[str]) -> int:
    _signal.signal(_signal.SIGPIPE, _signal.SIG_IGN)
    inj = Inject()
    inj.getcontrols()
    strategy = RECIP_DEFAULT
    queue = True
    opts = Options(argv, "aAhHnNf:")
    try:
        for opt, value in opts:
            if opt == "a":
                strategy = RECIP_ARGS
            elif opt == "A":
                strategy = RECIP_DEFAULT
            elif opt == "h":
                strategy = RECIP_HEADER
            elif opt == "H":
                strategy = RECIP_AH
            elif opt in "nN":
                queue = opt == "N"
            else:
                inj.set_sender(value)
    except OptError:
        return 100
    inj.out.queue = queue
    args = opts.rest
    if strategy == RECIP_DEFAULT:
        strategy = RECIP_ARGS if args else RECIP_HEADER
    if strategy != RECIP_HEADER:
        for arg in args:
            inj.recip(arg)
    try:
        inp = open(0, "rb", buffering=65536, closefd=False)
        hf.headerbody(inp, inj.field, inj.finish_header, inj.out.put)
    except OSError:
        die_read()
    return inj.finish(strategy != RECIP_ARGS)


def cli() -> None:
    run(main)


if __name__ == "__main__":
    cli()
