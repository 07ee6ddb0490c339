"""qmail-remote: send one message to recipients at one remote host by SMTP.

Usage: ``qmail-remote host sender recip...``, the message on stdin (LF line
ends).  The host's mail exchangers (or its address, or the relay that
control/smtproutes names) are tried in preference order, skipping addresses
that time out repeatedly (``queue/lock/tcpto``) and refusing to send to
ourselves.  The dialogue is plain HELO, MAIL, RCPT, DATA, QUIT.

What happened goes to stdout as qmail-remote(8) says: a report per accepted
or refused recipient (``r``, ``h``, ``s``), then one for the message (``K``,
``Z``, ``D``), each ending in a NUL byte.  The exit code is always 0.
"""
from __future__ import annotations

import os
import signal
import socket
import time

from pyqmail import control, dnsq, ipme
from pyqmail.mxip import addresses, mangle, mx_addresses, route
from pyqmail.strerr import run, warn
from pyqmail.tcpto import TcpTo

HUGESMTPTEXT = 5000
BLOCK = 65536

# message reports, as qmail-remote.c words them
TEMP_NOMEM = b"ZOut of memory. (#4.3.0)\n"
TEMP_OSERR = b"ZSystem resources temporarily unavailable. (#4.3.0)\n"
TEMP_NOCONN = b"ZSorry, I wasn't able to establish an SMTP connection. (#4.4.1)\n"
TEMP_READ = b"ZUnable to read message. (#4.3.0)\n"
TEMP_DNSCANON = b"ZCNAME lookup failed temporarily. (#4.4.3)\n"
TEMP_DNS = b"ZSorry, I couldn't find any host by that name. (#4.1.2)\n"
TEMP_CHDIR = b"ZUnable to switch to home directory. (#4.3.0)\n"
TEMP_CONTROL = b"ZUnable to read control files. (#4.3.0)\n"
PERM_PARTIALLINE = b"DSMTP cannot transfer messages with partial final lines. (#5.6.2)\n"
PERM_USAGE = b"DI (qmail-remote) was invoked improperly. (#5.3.5)\n"
PERM_NOMX = b"DSorry, I couldn't find a mail exchanger or IP address. (#5.4.4)\n"
PERM_AMBIGMX = (b"DSorry. Although I'm listed as a best-preference MX or A for that host,\n"
                b"it isn't in my control/locals file, so I don't treat it as local. (#5.4.6)\n")


def perm_dns(host: bytes) -> bytes:
    return b"DSorry, I couldn't find any host named " + safe(host) + b". (#5.1.2)\n"


def safe(text: bytes) -> bytes:
    """``text`` with control characters, spaces and non-ASCII shown as ``?``."""
    return bytes(ch if 33 <= ch <= 126 else 63 for ch in text)


class Done(Exception):
    """The message report has been made: stop."""


class Report:
    """The reports for stdout, written when the program ends."""

    def __init__(self) -> None:
        self.data = bytearray()

    def out(self, text: bytes) -> None:
        self.data += text

    def zero(self) -> None:
        self.data += b"\0"

    def die(self, text: bytes) -> None:
        """Make the message report ``text`` and stop."""
        self.out(text)
        self.zero()
        raise Done

    def flush(self, fd: int = 1) -> None:
        view = memoryview(bytes(self.data))
        try:
            while view:
                view = view[os.write(fd, view):]
        except OSError:
            pass
        self.data.clear()


class Conn:
    """The SMTP connection, each read and write bounded by ``timeout``.

    This is the seam a unit test fakes: anything with ``recv(n) -> bytes`` and
    ``send(data) -> int`` that raises OSError (or returns b"") when the
    connection is gone will do.
    """

    def __init__(self, sock: socket.socket, timeout: float) -> None:
        self.sock = sock
        sock.settimeout(timeout)

    def recv(self, n: int) -> bytes:
        return self.sock.recv(n)

    def send(self, data: bytes) -> int:
        return self.sock.send(data)


class Session:
    """One SMTP conversation with ``partner``, as qmail-remote.c's smtp()."""

    def __init__(self, conn, partner: str, report: Report, message) -> None:
        self.conn = conn
        self.partner = partner.encode()
        self.report = report
        self.message = message  # binary file object with read(n)
        self.inbuf = b""
        self.outbuf = bytearray()
        self.text = bytearray()
        self.critical = False

    # -- the connection
    def dropped(self) -> None:
        self.report.die(b"ZConnected to " + self.partner + b" but connection died. "
                        + (b"Possible duplicate! " if self.critical else b"") + b"(#4.4.2)\n")

    def put(self, data: bytes) -> None:
        self.outbuf += data

    def flush(self) -> None:
        view = memoryview(bytes(self.outbuf))
        self.outbuf.clear()
        while view:
            try:
                n = self.conn.send(view)
            except OSError:
                n = 0
            if n <= 0:
                self.dropped()
            view = view[n:]

    def get(self) -> int:
        if not self.inbuf:
            try:
                self.inbuf = self.conn.recv(128)
            except OSError:
                self.inbuf = b""
            if not self.inbuf:
                self.dropped()
        ch = self.inbuf[0]
        self.inbuf = self.inbuf[1:]
        if ch != 13 and len(self.text) < HUGESMTPTEXT:
            self.text.append(ch)
        return ch

    def code(self) -> int:
        """Read one (perhaps multi-line) reply; its code as qmail computes it
        from the first three bytes, digits or not."""
        self.text.clear()
        code = self.get() - 48
        code = code * 10 + self.get() - 48
        code = code * 10 + self.get() - 48
        while True:
            ch = self.get()
            if ch != 45:  # '-'
                break
            while ch != 10:
                ch = self.get()
            self.get(), self.get(), self.get()
        while ch != 10:
            ch = self.get()
        return code % (1 << 64)  # C's unsigned long: garbage counts as huge

    def out_text(self) -> None:
        if self.text:
            self.report.out(b"Remote host said: " + bytes(self.text).replace(b"\0", b"?"))
            self.text.clear()

    def quit(self, prepend: bytes, append: bytes) -> None:
        self.put(b"QUIT\r\n")
        self.flush()  # no waiting for the answer: "just too ridiculous"
        self.report.out(prepend + self.partner + append + b".\n")
        self.out_text()
        self.report.zero()
        raise Done

    # -- the dialogue
    def smtp(self, helohost: bytes, sender: bytes, recips: list[bytes]) -> None:
        """Talk to the partner; always ends by raising :class:`Done`."""
        if self.code() != 220:
            self.quit(b"ZConnected to ", b" but greeting failed")
        self.put(b"HELO " + helohost + b"\r\n")
        self.flush()
        if self.code() != 250:
            self.quit(b"ZConnected to ", b" but my name was rejected")
        self.put(b"MAIL FROM:<" + sender + b">\r\n")
        self.flush()
        code = self.code()
        if code >= 500:
            self.quit(b"DConnected to ", b" but sender was rejected")
        if code >= 400:
            self.quit(b"ZConnected to ", b" but sender was rejected")
        bother = False
        for recip in recips:
            self.put(b"RCPT TO:<" + recip + b">\r\n")
            self.flush()
            code = self.code()
            if code >= 400:
                self.report.out((b"h" if code >= 500 else b"s") + self.partner
                                + b" does not like recipient.\n")
                self.out_text()
                self.report.zero()
            else:
                self.report.out(b"r")
                self.report.zero()
                bother = True
        if not bother:
            self.quit(b"DGiving up on ", b"")
        self.put(b"DATA\r\n")
        self.flush()
        code = self.code()
        if code >= 500:
            self.quit(b"D", b" failed on DATA command")
        if code >= 400:
            self.quit(b"Z", b" failed on DATA command")
        self.blast()
        code = self.code()
        self.critical = False
        if code >= 500:
            self.quit(b"D", b" failed after I sent the message")
        if code >= 400:
            self.quit(b"Z", b" failed after I sent the message")
        self.quit(b"K", b" accepted message")

    def blast(self) -> None:
        """Send the message: CRLF line ends, leading dots doubled, then dot CRLF."""
        atstart = True
        while True:
            try:
                chunk = self.message.read(BLOCK)
            except OSError:
                self.report.die(TEMP_READ)
            if not chunk:
                break
            data = chunk.replace(b"\n.", b"\n..").replace(b"\n", b"\r\n")
            if atstart and chunk[:1] == b".":
                data = b"." + data
            atstart = chunk[-1:] == b"\n"
            self.put(data)
            self.flush()
        if not atstart:
            self.report.die(PERM_PARTIALLINE)
        self.critical = True
        self.put(b".\r\n")
        self.flush()


def deliver(argv: list[bytes], report: Report, message) -> None:
    """Everything qmail-remote does; ends by raising :class:`Done`."""
    if len(argv) < 4:
        report.die(PERM_USAGE)
    try:
        os.chdir(control.qmail_home())
    except OSError:
        report.die(TEMP_CHDIR)
    try:
        timeout = control.readint("timeoutremote", 1200)
        timeoutconnect = control.readint("timeoutconnect", 60)
        helohost = control.readline("helohost", flagme=True)
        routes = [os.fsencode(x) for x in control.readlines("smtproutes")]
    except OSError:
        report.die(TEMP_CONTROL)
    if helohost is None:
        report.die(TEMP_CONTROL)

    host = argv[1]
    relay, port = route(host, routes)
    if relay is not None:
        host = relay
    sender, _ = mangle(argv[2], False)
    try:
        ipme.addresses()
    except (OSError, ImportError):
        report.die(TEMP_OSERR)
    recips: list[bytes] = []
    allaliases = True
    try:
        for addr in argv[3:]:
            mangled, alias = mangle(addr, relay is None)
            recips.append(mangled)
            allaliases = allaliases and alias
    except dnsq.TempError:
        report.die(TEMP_DNSCANON)

    name = os.fsdecode(host)
    try:
        if relay is not None:
            ips = addresses(name)
            found = None if ips is None else [(0, ip) for ip in ips]
        else:
            found, soft = mx_addresses(name, int(time.time()) + (os.getpid() << 16))
            if soft and not found:
                report.die(TEMP_DNS)
    except dnsq.TempError:
        report.die(TEMP_DNS)
    if found is None:
        report.die(perm_dns(host))
    if not found:
        report.die(PERM_NOMX)

    prefme = min([pref for pref, ip in found if ipme.is_me(ip)], default=100000)
    if relay is not None:
        prefme = 300000
    if allaliases:
        prefme = 500000
    if not any(pref < prefme for pref, _ in found):
        report.die(PERM_AMBIGMX)

    tcpto = TcpTo()
    for pref, ip in found:
        if pref >= prefme or tcpto.skip(ip):
            continue
        sock = connect(ip, port, timeoutconnect, tcpto)
        if sock is not None:
            session = Session(Conn(sock, timeout), ip, report, message)
            session.smtp(os.fsencode(helohost), sender, recips)
    report.die(TEMP_NOCONN)


def connect(ip: str, port: int, timeout: int, tcpto: TcpTo) -> socket.socket | None:
    """A connection to ``ip`` within ``timeout`` seconds, noted in the tcpto table."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)  # OSError: temp_oserr
    try:
        sock.settimeout(timeout)
        sock.connect((ip, port & 0xFFFF))  # qmail keeps the low 16 bits
    except OSError as e:
        sock.close()
        # BlockingIOError: timeoutconnect 0, which qmail's select times out at once
        tcpto.record(ip, isinstance(e, (TimeoutError, BlockingIOError)))
        return None
    tcpto.record(ip, False)
    return sock


class Stdin:
    """The message: fd 0, read only when DATA is accepted."""

    def read(self, n: int) -> bytes:
        return os.read(0, n)


def main(argv: list[str]) -> int:
    """Send the message on stdin; print the reports; exit 0."""
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    report = Report()
    try:
        deliver([os.fsencode(a) for a in argv], report, Stdin())
    except Done:
        pass
    except MemoryError:
        report.out(TEMP_NOMEM)
        report.zero()
    except OSError:
        report.out(TEMP_OSERR)
        report.zero()
    except Exception as e:  # a bug: still a report for qmail-rspawn, never a traceback
        warn("qmail-remote: warning: internal error: ", repr(e))
        report.out(TEMP_OSERR)
        report.zero()
    report.flush()
    return 0


def cli() -> None:
    run(main)


if __name__ == "__main__":
    cli()
