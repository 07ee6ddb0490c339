"""qmail-smtpd: receive mail via SMTP, as qmail 1.03's (qmail-smtpd(8)).

Usage: ``qmail-smtpd [hostname checkprogram subprogram ...]`` with
descriptors 0 and 1 on the connection and the environment tcpserver gives
(TCPREMOTEIP, TCPREMOTEHOST, TCPREMOTEINFO, TCPLOCALHOST or TCPLOCALIP, and
RELAYCLIENT and DATABYTES from the rules).

The dialogue, the replies (:mod:`mta.smtpd_replies`), the control files
(smtpgreeting, localiphost, timeoutsmtpd, rcpthosts, morercpthosts.cdb,
badmailfrom, databytes) and the message handed to qmail-queue (a
``Received:`` line, then the data with CRLF as LF and dot-stuffing undone)
are qmail 1.03's.  Exit 0 after QUIT, 1 when the connection ends or breaks,
after a timeout, a bare LF, or a 421.

Beyond qmail 1.03, each off unless configured: SIZE (control/esmtpsize, when
databytes limits the message), ENHANCEDSTATUSCODES (control/enhancedstatuscodes), STARTTLS
(control/servercert.pem, :mod:`mta.smtpd_tls`) and AUTH LOGIN PLAIN through
a checkpassword program given as arguments (:mod:`mta.smtpd_auth`), and
recipient checking at RCPT time (control/realrcptto, :mod:`mta.rcptcheck`).
"""
from __future__ import annotations

import os
import time

import _signal

from mta import smtpd_replies as R
from mta import rcptcheck, smtpd_tls
from mta.rcpthosts import BadMailFrom, RcptHosts, addrparse
from pyqmail import control
from pyqmail.date822 import date822
from pyqmail.qmailqueue import Queue
from pyqmail.scan import scan_ulong
from pyqmail.strerr import run
from pyqmail.timeoutio import Closed, Conn, Timeout, TooLong

MAXHOPS = 100
#: the longest command line kept (qmail's has no limit but memory)
MAXLINE = 65536
#: a line of DATA longer than this is passed on in parts
LONGLINE = 65536
DEFAULT_TIMEOUT = 1200
#: what received.c shows of each byte: letters, digits and .@%+/=:-[] as is, the rest as ?
_SAFE = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.@%+/=:-[]"
SAFE = bytes(c if c in _SAFE else 0x3F for c in range(256))


class Drop(Exception):
    """End the session with exit ``code`` (the reply, if any, is out)."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


class StrayNewline(Exception):
    """A bare LF in the message."""


def received(local: bytes, remoteip: bytes, remotehost: bytes, remoteinfo: bytes | None,
             helo: bytes | None, when: float | None = None, protocol: bytes = b"SMTP") -> bytes:
    """The ``Received:`` line of received.c (two lines, the second indented);
    ``protocol`` is ``ESMTPS (cipher encrypted)`` after STARTTLS, as the TLS patch has it."""
    parts = [b"Received: from ", remotehost.translate(SAFE)]
    if helo is not None:
        parts += [b" (HELO ", helo.translate(SAFE), b")"]
    parts.append(b" (")
    if remoteinfo is not None:
        parts += [remoteinfo.translate(SAFE), b"@"]
    parts += [remoteip.translate(SAFE), b")\n  by ", local.translate(SAFE),
              b" with ", protocol, b"; ", date822(when)]
    return b"".join(parts)


def u32(value: int) -> int:
    return value & 0xFFFFFFFF


class Config:
    """The control files and the environment, read once per connection (setup)."""

    def __init__(self) -> None:
        """OSError (or ValueError for a missing greeting) if the controls cannot be read."""
        os.chdir(control.qmail_home())
        greeting = control.readline("smtpgreeting", flagme=True)
        if greeting is None:
            raise ValueError("no smtpgreeting and no me")
        self.greeting = os.fsencode(greeting)
        liphost = control.readline("localiphost", flagme=True)
        self.liphost = None if liphost is None else os.fsencode(liphost)
        timeout = u32(control.readint("timeoutsmtpd", DEFAULT_TIMEOUT))
        self.timeout = timeout if 0 < timeout < 0x80000000 else 1  # an int, as in C
        self.rcpthosts = RcptHosts()
        self.bmf = BadMailFrom()
        databytes = u32(control.readint("databytes", 0))
        env = os.environb
        x = env.get(b"DATABYTES")
        if x is not None:
            databytes = u32(scan_ulong(x)[0])
        self.databytes = databytes if databytes != 0xFFFFFFFF else databytes - 1
        self.remoteip = env.get(b"TCPREMOTEIP", b"unknown")
        local = env.get(b"TCPLOCALHOST")
        self.local = local if local is not None else env.get(b"TCPLOCALIP", b"unknown")
        self.remotehost = env.get(b"TCPREMOTEHOST", b"unknown")
        self.remoteinfo = env.get(b"TCPREMOTEINFO")
        self.relayclient = env.get(b"RELAYCLIENT")
        self.esc = control.readint("enhancedstatuscodes", 0) != 0
        self.sizelimit = self.databytes if control.readint("esmtpsize", 0) else 0
        self.forcetls = control.readint("forcetls", 0) != 0
        self.tlsok = smtpd_tls.possible()
        self.realrcptto = rcptcheck.configured()


class Session:
    """One SMTP dialogue (qmail-smtpd.c's globals and smtp_* functions)."""

    def __init__(self, conn: Conn, c: Config, args: list[str] | None = None) -> None:
        self.conn = conn
        self.c = c
        self.seenmail = False
        self.flagbarf = False
        self.mailfrom = b""
        self.rcptto: list[bytes] = []
        self.dohelo(c.remotehost)
        self.tls: bytes | None = None  # the Received line's protocol once TLS is on
        self.authd = False
        self.relayclient, self.remoteinfo = c.relayclient, c.remoteinfo
        self.checkargs = args[1:] if args else []  # the checkpassword program
        self.commands = {
            b"rcpt": (self.rcpt, False), b"mail": (self.mail, False),
            b"data": (self.data, True), b"quit": (self.quit, True),
            b"helo": (self.helo, True), b"ehlo": (self.ehlo, True),
            b"rset": (self.rset, False), b"help": (self.help, True),
            b"noop": (self.noop, True), b"vrfy": (self.vrfy, True),
        }
        if c.tlsok:
            self.commands[b"starttls"] = (lambda arg: smtpd_tls.starttls(self, arg), True)
        if args:
            from mta import smtpd_auth

            self.commands[b"auth"] = (lambda arg: smtpd_auth.auth(self, arg), True)

    def out(self, text: bytes, code: bytes | None = None) -> None:
        self.conn.put(R.enhance(text, code) if self.c.esc else text)

    def greet(self, code: bytes, tail: bytes = R.CRLF, esc: bytes | None = None) -> None:
        text = code + self.c.greeting + tail
        self.conn.put(R.enhance(text, esc) if esc and self.c.esc else text)

    def loop(self) -> None:
        """Answer commands until QUIT or the end (commands.c)."""
        while True:
            conn = self.conn  # a new one after STARTTLS
            try:
                line = conn.getline(MAXLINE)
            except TooLong:
                self.out(R.NOMEM)
                conn.flush()
                raise Drop(1) from None
            if line[-1:] == b"\r":
                line = line[:-1]
            nul = line.find(b"\0")  # the C string ends there
            if nul >= 0:
                line = line[:nul]
            verb, _, arg = line.partition(b" ")
            fun, flush = self.commands.get(verb.lower(), (self.unimpl, True))
            fun(arg.lstrip(b" "))
            if flush:
                self.conn.flush()

    def dohelo(self, arg: bytes) -> None:
        self.helohost = arg
        self.fakehelo = arg if arg.lower() != self.c.remotehost.lower() else None

    def parse(self, arg: bytes) -> bytes | None:
        try:
            return addrparse(arg, self.c.liphost)
        except OSError:
            self.out(R.IPME)
            self.conn.flush()
            raise Drop(1) from None

    # -- the commands ----------------------------------------------------------------
    def helo(self, arg: bytes) -> None:
        self.greet(R.HELO)
        self.seenmail = False
        self.dohelo(arg)

    def ehlo(self, arg: bytes) -> None:
        c = self.c
        self.conn.put(R.ehlo(c.greeting, starttls=c.tlsok and self.tls is None,
                             auth=bool(self.checkargs) and (self.tls is not None or not c.forcetls),
                             size=c.sizelimit, enhanced=c.esc))
        self.seenmail = False
        self.dohelo(arg)

    def rset(self, arg: bytes) -> None:
        self.seenmail = False
        self.out(R.FLUSHED)

    def mail(self, arg: bytes) -> None:
        addr = self.parse(arg)
        if addr is None:
            self.out(R.SYNTAX)
            return
        if self.c.sizelimit and declared_size(arg) > self.c.sizelimit:
            self.out(R.SIZE_EXCEEDED)
            return
        self.flagbarf = self.check(lambda: addr in self.c.bmf)
        self.seenmail = True
        self.rcptto = []
        self.mailfrom = addr
        self.out(R.OK, R.MAIL_OK)

    def rcpt(self, arg: bytes) -> None:
        if not self.seenmail:
            self.out(R.WANT_MAIL)
            return
        addr = self.parse(arg)
        if addr is None:
            self.out(R.SYNTAX)
            return
        if self.flagbarf:
            self.out(R.BADMAILFROM)
            return
        if self.relayclient is not None:
            addr += self.relayclient
        elif not self.check(lambda: self.c.rcpthosts.allowed(addr)):
            self.out(R.NOGATEWAY)
            return
        if self.c.realrcptto and not self.check(lambda: self.c.realrcptto(addr)):
            self.out(rcptcheck.NO_MAILBOX)
            return
        self.rcptto.append(addr)
        self.out(R.OK, R.RCPT_OK)

    def check(self, test) -> bool:
        """``test()``, or 421 "unable to read controls" if a control file fails."""
        try:
            return test()
        except OSError:
            self.out(R.CONTROLS)
            self.conn.flush()
            raise Drop(1) from None

    def help(self, arg: bytes) -> None:
        self.out(R.HELP)

    def noop(self, arg: bytes) -> None:
        self.out(R.OK)

    def vrfy(self, arg: bytes) -> None:
        self.out(R.VRFY)

    def unimpl(self, arg: bytes) -> None:
        self.out(R.UNIMPLEMENTED)

    def quit(self, arg: bytes) -> None:
        self.greet(R.QUIT, esc=R.SENT)
        self.conn.flush()
        raise Drop(0)

    def data(self, arg: bytes) -> None:
        if not self.seenmail:
            self.out(R.WANT_MAIL)
            return
        if not self.rcptto:
            self.out(R.WANT_RCPT)
            return
        self.seenmail = False
        c = self.c
        try:
            qq = Queue()
        except OSError:
            self.out(R.QQT)
            return
        qp = qq.qp
        self.out(R.GO_AHEAD)
        qq.put(received(c.local, c.remoteip, c.remotehost, self.remoteinfo, self.fakehelo,
                        protocol=self.tls or b"SMTP"))
        try:
            hops, overflow = blast(self.conn, qq, c.databytes)
        except (StrayNewline, Timeout, Closed) as e:
            # the session ends: tell the queue there is no message before going
            qq.fail()
            qq.sender(b"")
            qq.close()
            if not isinstance(e, StrayNewline):
                raise
            self.out(R.STRAY_NEWLINE)
            self.conn.flush()
            raise Drop(1) from None
        hops = hops >= MAXHOPS
        if hops:
            qq.fail()
        qq.sender(self.mailfrom)
        for addr in self.rcptto:
            qq.recipient(addr)
        qqx = qq.close()
        if not qqx:
            self.out(R.ACCEPTED % (int(time.time()), qp), R.SENT)
        elif hops:
            self.out(R.TOO_MANY_HOPS)
        elif overflow:
            self.out(R.DATABYTES)
        else:
            self.out((R.QUEUE_PERM if qqx[0] == "D" else R.QUEUE_TEMP)
                     + qqx[1:].encode() + R.CRLF)


def declared_size(arg: bytes) -> int:
    """The ``SIZE=`` of a MAIL argument (RFC 1870), 0 without one; other
    parameters (BODY=, AUTH=, ...) are ignored, as the SIZE patches do."""
    i = arg.find(b"<")
    rest = arg[i + 1:] if i >= 0 else arg.partition(b":")[2].lstrip(b" ")
    for word in rest.split(b" ")[1:]:
        if word[:5].upper() == b"SIZE=":
            return scan_ulong(word[5:])[0]
    return 0


def blast(conn: Conn, qq: Queue, databytes: int) -> tuple[int, bool]:
    """Copy the message from the connection to ``qq`` up to the ``.`` line:
    CRLF as LF, a leading dot dropped (unless a CR follows it); a LF without
    its CR raises :class:`StrayNewline`.  Returns the number of
    Received/Delivered-To lines in the header, and whether the message
    passed ``databytes`` (0: no limit).

    This is qmail-smtpd.c's byte-at-a-time state machine, a line (or, past
    the header, a run of lines none of which starts with a dot) at a time.
    """
    buf = conn.take()
    pos = 0
    hops = 0
    inheader = True
    atstart = True  # pos is where a line starts
    room = databytes if databytes else -1
    overflow = False

    def put(data: bytes) -> None:
        nonlocal room, overflow
        if room >= 0 and not overflow:
            room -= len(data)
            if room < 0:
                overflow = True
                qq.fail()
        qq.put(data)

    def header(at: int) -> None:
        nonlocal hops
        head = buf[at:at + 9].lower()
        if head[:8] == b"received" or head == b"delivered":
            hops += 1

    while True:
        if atstart and not inheader and buf[pos:pos + 1] != b".":
            # the fast way: lines up to the next one that starts with a dot
            d = buf.find(b"\n.", pos)
            end = d + 1 if d >= 0 else buf.rfind(b"\n", pos) + 1
            if end > pos:
                block = buf[pos:end]
                if block.count(b"\n") != block.count(b"\r\n"):
                    raise StrayNewline
                put(block.replace(b"\r\n", b"\n"))
                pos = end
                continue
        nl = buf.find(b"\n", pos)
        if nl >= 0:
            if nl == pos or buf[nl - 1] != 0x0D:
                raise StrayNewline
            start = pos
            if atstart:
                if inheader:
                    if nl - pos == 1:
                        inheader = False
                    else:
                        header(pos)
                if buf[pos] == 0x2E:  # a dot
                    if nl - pos == 2:  # the end
                        conn.give(buf[nl + 1:])
                        return hops, overflow
                    if buf[pos + 1] != 0x0D:
                        start += 1
            put(buf[start:nl - 1] + b"\n")
            pos = nl + 1
            atstart = True
            continue
        if len(buf) - pos > LONGLINE:
            # part of a long line: all but its last byte, which may be the CR of a CRLF
            start = pos
            if atstart:
                if inheader:
                    header(pos)
                if buf[pos] == 0x2E and buf[pos + 1] != 0x0D:
                    start += 1
            put(buf[start:-1])
            pos = len(buf) - 1
            atstart = False
        buf = buf[pos:] + conn.read()
        pos = 0


def main(argv: list[str]) -> int:
    _signal.signal(_signal.SIGPIPE, _signal.SIG_IGN)
    conn = Conn(DEFAULT_TIMEOUT)
    session = None
    try:
        try:
            c = Config()
        except (OSError, ValueError):
            conn.put(R.CONTROLS)
            conn.flush()
            return 1
        conn.timeout = c.timeout
        session = Session(conn, c, argv[1:])
        session.greet(R.GREET, R.ESMTP)
        session.loop()
    except Drop as d:
        return d.code
    except Timeout:
        if session is not None:
            conn = session.conn  # the TLS connection, after STARTTLS
        conn.put(R.TIMEOUT)
        try:
            conn.flush()
        except Closed:
            pass
        return 1
    except Closed:
        return 1
    return 1


def cli() -> None:
    run(main)


if __name__ == "__main__":
    cli()
