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

:class:`Channel` is the network side, shared with qmail-pop3d: djb's
timeoutread/timeoutwrite under substdio, and qmail's commands() parsing.
"""
from __future__ import annotations

import os
import select
import time

import _signal

from pyqmail import pathexec

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


class Hangup(Exception):
    """The client is gone, or silent past the timeout: the session ends."""


class Channel:
    """Lines from descriptor ``infd``, replies to ``outfd``, each read and write
    allowed ``timeout`` seconds; :class:`Hangup` on end of input, error or timeout."""

    def __init__(self, infd: int = 0, outfd: int = 1, timeout: float = TIMEOUT) -> None:
        self.infd = infd
        self.outfd = outfd
        self.timeout = timeout
        self.buf = bytearray()
        self.out = bytearray()

    def _ready(self, fd: int, write: bool) -> None:
        try:
            if write:
                ok = select.select([], [fd], [], self.timeout)[1]
            else:
                ok = select.select([fd], [], [], self.timeout)[0]
        except (OSError, ValueError):
            raise Hangup() from None
        if not ok:
            raise Hangup()

    def line(self) -> bytes:
        """The next line, without its LF and a CR before it."""
        line = bytearray()
        while True:
            nl = self.buf.find(b"\n")
            end = nl if nl >= 0 else len(self.buf)
            room = MAXLINE - len(line)
            if room > 0:
                line += self.buf[:min(end, room)]
            if nl >= 0:
                del self.buf[:nl + 1]
                break
            self.buf.clear()
            self._ready(self.infd, False)
            try:
                data = os.read(self.infd, READSIZE)
            except OSError:
                raise Hangup() from None
            if not data:
                raise Hangup()
            self.buf += data
        if line.endswith(b"\r"):
            del line[-1]
        return bytes(line)

    def command(self) -> tuple[bytes, bytes]:
        """The next command as qmail's commands() sees it: the line up to a NUL,
        its first word in lower case, and the rest after the spaces that follow."""
        text = self.line().split(b"\0", 1)[0]
        verb, _, arg = text.partition(b" ")
        return verb.lower(), arg.lstrip(b" ")

    def put(self, data: bytes) -> None:
        """Queue ``data`` for the client, writing when enough has gathered."""
        self.out += data
        if len(self.out) >= OUTSIZE:
            self.flush()

    def flush(self) -> None:
        """Write what is queued."""
        data = memoryview(bytes(self.out))
        self.out.clear()
        while data:
            self._ready(self.outfd, True)
            try:
                n = os.write(self.outfd, data[:WRITESIZE])
            except OSError:
                raise Hangup() from None
            data = data[n:]

    def reply(self, data: bytes) -> None:
        """Send one reply now."""
        self.put(data)
        self.flush()


class Popup:
    """One authorization dialogue."""

    def __init__(self, chan: Channel, hostname: bytes, child: list[str]) -> None:
        self.chan = chan
        self.hostname = hostname
        self.child = child
        self.unique = b"%d.%d@" % (os.getpid(), int(time.time()))
        self.username: bytes | None = None

    def greet(self) -> None:
        self.chan.reply(b"+OK <" + self.unique + self.hostname + b">\r\n")

    def serve(self) -> None:
        """Answer commands until the session ends (by :class:`Hangup` or SystemExit)."""
        while True:
            verb, arg = self.chan.command()
            if verb == b"user":
                if not arg:
                    self.chan.reply(ERR_SYNTAX)
                    continue
                self.chan.reply(OKAY)
                self.username = arg
            elif verb == b"pass":
                if self.username is None:
                    self.chan.reply(ERR_WANTUSER)
                elif not arg:
                    self.chan.reply(ERR_SYNTAX)
                else:
                    self.login(self.username, arg)
            elif verb == b"apop":
                user, space, digest = arg.partition(b" ")
                if not space:
                    self.chan.reply(ERR_SYNTAX)
                    continue
                self.login(user, digest)
            elif verb == b"quit":
                self.chan.reply(OKAY)
                return
            elif verb == b"noop":
                self.chan.reply(OKAY)
            else:
                self.chan.reply(ERR_AUTHORIZ)

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
        try:
            pid = os.fork()
        except OSError:
            self.fail(ERR_FORK)
        if pid == 0:
            try:
                os.close(wfd)
                os.set_inheritable(rfd, True)
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
        os.close(wfd)
        try:
            _, status = os.waitpid(pid, 0)
        except OSError:
            raise SystemExit(1) from None
        if os.WIFSIGNALED(status):
            self.chan.reply(ERR_CRASHED)
        elif os.WIFEXITED(status) and os.WEXITSTATUS(status):
            self.chan.reply(ERR_BADAUTH)
        raise SystemExit(1)

    def fail(self, reply: bytes) -> NoReturn:
        self.chan.reply(reply)
        raise SystemExit(1)


def main(argv: list[str]) -> int:
    _signal.signal(_signal.SIGPIPE, _signal.SIG_IGN)
    chan = Channel()
    try:
        if len(argv) < 3:
            chan.reply(ERR_USAGE)
            return 1
        popup = Popup(chan, os.fsencode(argv[1]), argv[2:])
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
