"""qmail-popup: read a POP3 user name and password, then hand them to a checker.

Usage: ``qmail-popup hostname subprogram [ arg ... ]`` (qmail-popup(8)),
normally ``tcpserver 0 110 qmail-popup HOST checkpassword qmail-pop3d Maildir``.

Greets with ``+OK <pid.time@hostname>`` and reads commands: USER name, PASS
password (after USER), APOP name digest, QUIT and NOOP; anything else gets
``-ERR authorization first``.  PASS and APOP run ``subprogram`` with
``name\\0password\\0<pid.time@hostname>\\0`` on its descriptor 3 (the
checkpassword interface) and the network as descriptors 0 and 1, and wait for
it: it exits 0 once it has served the session; nonzero means ``-ERR
authorization failed``; killed by a signal, ``-ERR aack, child crashed``.
qmail-popup then exits 1, as it does on QUIT, at the end of the input, and
when the client sends or takes nothing for 1200 seconds.

Beyond qmail 1.03, each off unless configured: CAPA (RFC 2449) when
``$POP3CAPA`` is set, and STLS (RFC 2595) when ``QMAILHOME/control/servercert.pem``
exists and descriptors 0 and 1 are a socket.  After STLS qmail-popup keeps the
TLS connection: ``subprogram`` gets one end of a socketpair as descriptors 0
and 1, and qmail-popup carries the bytes between it and the client
(:meth:`pyqmail.timeoutio.Conn.relay`), as sslserver or stunnel would.

The network side is :class:`pyqmail.timeoutio.Conn` with qmail's buffer
sizes (:func:`connection`), shared with qmail-pop3d.
"""
from __future__ import annotations

import os
import stat
import time

import _signal

from pyqmail import control, pathexec
from pyqmail.timeoutio import Conn, Hangup

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import NoReturn

#: seconds a read or a write may wait (qmail's compiled-in 1200)
TIMEOUT = 1200
#: bytes qmail's substdio reads at a time
READSIZE = 128
#: longest command line kept; the rest of a longer line is dropped (qmail keeps all)
MAXLINE = 65536
#: bytes of output collected before they are written
OUTSIZE = 65536
#: bytes written after each wait for the client to take more: no more than a
#: socket that select() calls writable surely has room for, so a client that
#: stops reading cannot block a write past the timeout (qmail writes 1024)
WRITESIZE = 1024

OKAY = b"+OK \r\n"
ERR_USAGE = b"-ERR usage: popup hostname subprogram\r\n"
ERR_PIPE = b"-ERR unable to open pipe\r\n"
ERR_WRITE = b"-ERR unable to write pipe\r\n"
ERR_FORK = b"-ERR unable to fork\r\n"
ERR_CRASHED = b"-ERR aack, child crashed\r\n"
ERR_BADAUTH = b"-ERR authorization failed\r\n"
ERR_SYNTAX = b"-ERR syntax error\r\n"
ERR_WANTUSER = b"-ERR USER first\r\n"
ERR_AUTHORIZ = b"-ERR authorization first\r\n"
TLS_GO = b"+OK begin TLS negotiation\r\n"
ERR_TLS_AGAIN = b"-ERR TLS already active\r\n"
ERR_TLS_AFTER_USER = b"-ERR STLS not allowed after USER\r\n"
ERR_TLS_UNAVAILABLE = b"-ERR TLS not available\r\n"
#: the capabilities of the session after login (qmail-pop3d's commands): RFC 2449
#: says those of the AUTHORIZATION state are announced in both states, so USER too
CAPS = (b"TOP", b"UIDL", b"USER")
#: the certificate and its key, PEM, in one file (as qmail's TLS patches keep it)
SERVERCERT = "servercert.pem"


def connection(rfd: int = 0, wfd: int = 1, timeout: float = TIMEOUT) -> Conn:
    """The network side as qmail-popup and qmail-pop3d use it (qmail's substdio sizes)."""
    return Conn(timeout, rfd, wfd, readsize=READSIZE, writesize=WRITESIZE, outsize=OUTSIZE)


def capa_enabled() -> bool:
    """CAPA is answered only where the administrator asks for it (qmail has none)."""
    return "POP3CAPA" in os.environ


def capabilities(*extra: bytes) -> bytes:
    """The CAPA reply: what qmail-pop3d does after login, and ``extra``."""
    return (b"+OK capability list follows\r\n" + b"".join(c + b"\r\n" for c in CAPS + extra)
            + b".\r\n")


class Popup:
    """One authorization dialogue."""

    def __init__(self, conn: Conn, hostname: bytes, child: list[str]) -> None:
        self.conn = conn
        self.hostname = hostname
        self.child = child
        self.unique = b"%d.%d@" % (os.getpid(), int(time.time()))
        self.username: bytes | None = None
        self.capa = capa_enabled()
        self._tls_ok: bool | None = None

    def greet(self) -> None:
        self.conn.reply(b"+OK <" + self.unique + self.hostname + b">\r\n")

    def serve(self) -> None:
        """Answer commands until the session ends (by :class:`Hangup` or SystemExit)."""
        reply = self.conn.reply
        while True:
            verb, arg = self.conn.command(MAXLINE)
            if verb == b"user":
                if not arg:
                    reply(ERR_SYNTAX)
                    continue
                reply(OKAY)
                self.username = arg
            elif verb == b"pass":
                if self.username is None:
                    reply(ERR_WANTUSER)
                elif not arg:
                    reply(ERR_SYNTAX)
                else:
                    self.login(self.username, arg)
            elif verb == b"apop":
                user, space, digest = arg.partition(b" ")
                if not space:
                    reply(ERR_SYNTAX)
                    continue
                self.login(user, digest)
            elif verb == b"quit":
                reply(OKAY)
                self.conn.close_tls()
                return
            elif verb == b"noop":
                reply(OKAY)
            elif verb == b"capa" and self.capa:
                reply(capabilities(*((b"STLS",) if self.tls_offered() else ())))
            elif verb == b"stls" and (self.conn.tls is not None or self.tls_available()):
                self.stls()
            else:
                reply(ERR_AUTHORIZ)

    def tls_available(self) -> bool:
        """A certificate is configured and the client is on a socket (checked once)."""
        if self._tls_ok is None:
            try:
                self._tls_ok = (os.path.isfile(control.path("control", SERVERCERT))
                                and stat.S_ISSOCK(os.fstat(self.conn.rfd).st_mode)
                                and stat.S_ISSOCK(os.fstat(self.conn.wfd).st_mode))
            except OSError:
                self._tls_ok = False
        return self._tls_ok

    def tls_offered(self) -> bool:
        return self.conn.tls is None and self.username is None and self.tls_available()

    def stls(self) -> None:
        """RFC 2595: only once, only before USER; then the dialogue starts over
        (the client forgets what it knew), under TLS."""
        if self.conn.tls is not None:
            self.conn.reply(ERR_TLS_AGAIN)
            return
        if self.username is not None:
            self.conn.reply(ERR_TLS_AFTER_USER)
            return
        import ssl

        try:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.options |= ssl.OP_NO_RENEGOTIATION
            context.load_cert_chain(control.path("control", SERVERCERT))
        except (OSError, ValueError):  # unreadable or not a key and certificate
            self.conn.reply(ERR_TLS_UNAVAILABLE)
            return
        self.conn.reply(TLS_GO)
        self.conn.starttls(context)

    def login(self, user: bytes, password: bytes) -> None:
        """Run the checker with ``user`` and ``password`` on descriptor 3, wait
        for it, report a failure; the session then ends (SystemExit)."""
        try:
            os.close(3)
        except OSError:
            pass
        try:
            rfd, wfd = os.pipe()
        except OSError:
            self.fail(ERR_PIPE)
        if rfd != 3:
            self.fail(ERR_PIPE)
        local = theirs = None
        if self.conn.tls is not None:
            import socket

            try:
                local, theirs = socket.socketpair()
            except OSError:
                self.fail(ERR_PIPE)
        try:
            pid = os.fork()
        except OSError:
            self.fail(ERR_FORK)
        if pid == 0:
            try:
                os.close(wfd)
                os.set_inheritable(rfd, True)
                if theirs is not None:  # the child speaks in the clear to the relay
                    os.dup2(theirs.fileno(), 0)
                    os.dup2(theirs.fileno(), 1)
                _signal.signal(_signal.SIGPIPE, _signal.SIG_DFL)
                pathexec.run(self.child)
            finally:
                os._exit(1)
        os.close(rfd)
        data = b"%s\0%s\0<%s%s>\0" % (user, password, self.unique, self.hostname)
        try:
            while data:
                data = data[os.write(wfd, data):]
        except OSError:
            self.fail(ERR_WRITE)
        finally:
            if local is not None:
                theirs.close()
        os.close(wfd)
        if local is not None:
            self.conn.take()  # read past PASS: lost to the child, as without TLS
            try:
                self.conn.relay(local)
            finally:
                local.close()
        try:
            _, status = os.waitpid(pid, 0)
        except OSError:
            raise SystemExit(1) from None
        if os.WIFSIGNALED(status):
            self.conn.reply(ERR_CRASHED)
        elif os.WIFEXITED(status) and os.WEXITSTATUS(status):
            self.conn.reply(ERR_BADAUTH)
        self.conn.close_tls()
        raise SystemExit(1)

    def fail(self, reply: bytes) -> NoReturn:
        self.conn.reply(reply)
        self.conn.close_tls()
        raise SystemExit(1)


def main(argv: list[str]) -> int:
    _signal.signal(_signal.SIGPIPE, _signal.SIG_IGN)
    conn = connection()
    try:
        if len(argv) < 3:
            conn.reply(ERR_USAGE)
            return 1
        popup = Popup(conn, os.fsencode(argv[1]), argv[2:])
        popup.greet()
        popup.serve()
    except Hangup:
        pass
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else 1
    return 1


def cli() -> None:
    from pyqmail.strerr import run

    run(main)


if __name__ == "__main__":
    cli()
