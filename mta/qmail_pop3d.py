"""qmail-pop3d: distribute mail from a Maildir over POP3.

Usage: ``qmail-pop3d maildirname`` (qmail-pop3d(8)), run by a checkpassword
program once the user is logged in (its working directory the user's home).

On start it changes to ``maildirname`` (``-ERR this user has no
$HOME/Maildir`` otherwise), removes ``tmp/`` files not accessed for 36
hours, lists the messages of ``new/`` and ``cur/`` oldest first (skipping
names that start with a dot and files modified this very second), says
``+OK`` and answers, as qmail 1.03 does:

- STAT: ``+OK count octets``, the count of all the messages listed at the
  start (deleted ones too, as in qmail 1.03), the octets of those not deleted;
- LIST [n], UIDL [n]: the size in bytes on disk, or the file name up to the
  ``:`` after its subdirectory; RETR n, TOP n lines: the message with LF made
  CRLF and lines starting with ``.`` doubled, then an empty line and ``.``;
- DELE n marks for deletion; LAST gives the highest message number marked;
  RSET unmarks them all; NOOP;
- QUIT: removes the marked messages, moves the rest of ``new/x`` to
  ``cur/x:2,`` and ends.

Errors: ``-ERR unimplemented``, ``-ERR syntax error``, ``-ERR messages are
counted from 1``, ``-ERR not that many messages``, ``-ERR already deleted``,
``-ERR unable to open that message``, ``-ERR unable to unlink all deleted
messages``, ``-ERR unable to scan $HOME/Maildir``.  The session ends, exit 0,
at QUIT, at the end of the input, on a network error, or after 1200 seconds
in which the client sends or takes nothing.

Beyond qmail 1.03: with ``$POP3CAPA`` set, CAPA (RFC 2449) lists TOP, UIDL
and USER (announced in the TRANSACTION state too, as RFC 2449 asks of the
AUTHORIZATION state's capabilities); without it, ``-ERR unimplemented``.
"""
from __future__ import annotations

import os

import _signal

from mta.qmail_popup import MAXLINE, OKAY, capa_enabled, capabilities, connection
from pyqmail import maildir
from pyqmail.scan import scan_ulong
from pyqmail.timeoutio import Closed, Conn, Hangup

ERR_NOMAILDIR = b"-ERR this user has no $HOME/Maildir\r\n"
ERR_SCAN = b"-ERR unable to scan $HOME/Maildir\r\n"
ERR_SYNTAX = b"-ERR syntax error\r\n"
ERR_UNIMPL = b"-ERR unimplemented\r\n"
ERR_DELETED = b"-ERR already deleted\r\n"
ERR_NOZERO = b"-ERR messages are counted from 1\r\n"
ERR_TOOBIG = b"-ERR not that many messages\r\n"
ERR_NOSUCH = b"-ERR unable to open that message\r\n"
ERR_NOUNLINK = b"-ERR unable to unlink all deleted messages\r\n"
#: bytes of a message read at a time
READSIZE = 65536
_MASK = (1 << 64) - 1


class Message:
    """One message: its name under the Maildir, its size, whether it is marked."""

    __slots__ = ("fn", "size", "deleted")

    def __init__(self, fn: str, size: int) -> None:
        self.fn = fn
        self.size = size
        self.deleted = False


def getlist(directory: str = ".") -> list[Message]:
    """Clean ``tmp/`` and list the messages (raises :class:`maildir.ScanError`)."""
    maildir.clean(directory)
    messages = []
    for _, fn in maildir.scan(directory):
        try:
            size = os.stat(os.path.join(directory, fn)).st_size
        except OSError:
            size = 0
        messages.append(Message(fn, size))
    return messages


def lines(fd: int):
    """``(line, ended)`` for each line of ``fd``, without its LF."""
    buf = b""
    while True:
        try:
            data = os.read(fd, READSIZE)
        except OSError:
            raise Closed from None
        if not data:
            if buf:
                yield buf, False
            return
        buf += data
        parts = buf.split(b"\n")
        buf = parts.pop()
        for part in parts:
            yield part, True


class Pop3d:
    """The transaction state of one session."""

    def __init__(self, chan: Conn, messages: list[Message]) -> None:
        self.chan = chan
        self.m = messages
        self.last = 0
        self.commands = {
            b"quit": self.quit, b"stat": self.stat, b"list": self.list,
            b"uidl": self.uidl, b"dele": self.dele, b"retr": self.top,
            b"rset": self.rset, b"last": self.last_, b"top": self.top,
            b"noop": self.noop,
        }
        if capa_enabled():
            self.commands[b"capa"] = self.capa

    def serve(self) -> None:
        """Answer commands until QUIT (or :class:`Hangup`)."""
        while True:
            verb, arg = self.chan.command(MAXLINE)
            fun = self.commands.get(verb)
            if fun is None:
                self.chan.reply(ERR_UNIMPL)
            elif fun(arg):
                return

    def msgno(self, arg: bytes) -> int | None:
        """The index of the message ``arg`` names, or None after the error reply."""
        u, n = scan_ulong(arg)
        if not n:
            self.chan.reply(ERR_SYNTAX)
            return None
        if not u:
            self.chan.reply(ERR_NOZERO)
            return None
        u -= 1
        if u >= len(self.m):
            self.chan.reply(ERR_TOOBIG)
            return None
        if self.m[u].deleted:
            self.chan.reply(ERR_DELETED)
            return None
        return u

    def noop(self, arg: bytes) -> None:
        self.chan.reply(OKAY)

    def capa(self, arg: bytes) -> None:
        self.chan.reply(capabilities())

    def stat(self, arg: bytes) -> None:
        total = sum(m.size for m in self.m if not m.deleted)
        self.chan.reply(b"+OK %d %d\r\n" % (len(self.m), total))

    def rset(self, arg: bytes) -> None:
        for m in self.m:
            m.deleted = False
        self.last = 0
        self.chan.reply(OKAY)

    def last_(self, arg: bytes) -> None:
        self.chan.reply(b"+OK %d\r\n" % self.last)

    def dele(self, arg: bytes) -> None:
        i = self.msgno(arg)
        if i is None:
            return
        self.m[i].deleted = True
        self.last = max(self.last, i + 1)
        self.chan.reply(OKAY)

    def quit(self, arg: bytes) -> bool:
        for m in self.m:
            if m.deleted:
                try:
                    os.unlink(m.fn)
                except OSError:
                    self.chan.reply(ERR_NOUNLINK)
            elif m.fn.startswith("new/"):
                try:
                    os.rename(m.fn, "cur/" + m.fn[4:] + ":2,")
                except OSError:  # as qmail: "if it fails, bummer"
                    pass
        self.chan.reply(OKAY)
        return True

    def entry(self, i: int, uidl: bool) -> bytes:
        if uidl:
            what = os.fsencode(self.m[i].fn)[4:].split(b":", 1)[0]
        else:
            what = b"%d" % self.m[i].size
        return b"%d %s\r\n" % (i + 1, what)

    def listing(self, arg: bytes, uidl: bool) -> None:
        if arg:
            i = self.msgno(arg)
            if i is None:
                return
            self.chan.put(b"+OK " + self.entry(i, uidl))
        else:
            self.chan.put(OKAY)
            for i, m in enumerate(self.m):
                if not m.deleted:
                    self.chan.put(self.entry(i, uidl))
            self.chan.put(b".\r\n")
        self.chan.flush()

    def list(self, arg: bytes) -> None:
        self.listing(arg, False)

    def uidl(self, arg: bytes) -> None:
        self.listing(arg, True)

    def top(self, arg: bytes) -> None:
        """RETR n and TOP n lines (RETR takes a line count too, as in qmail)."""
        i = self.msgno(arg)
        if i is None:
            return
        rest = arg[scan_ulong(arg)[1]:].lstrip(b" ")
        limit, n = scan_ulong(rest)
        limit = (limit + 1) & _MASK if n else 0
        try:
            fd = os.open(self.m[i].fn, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError:
            self.chan.reply(ERR_NOSUCH)
            return
        try:
            self.chan.reply(OKAY)
            self.blast(fd, limit)
        finally:
            os.close(fd)

    def blast(self, fd: int, limit: int) -> None:
        """The message on ``fd``, dot-stuffed, in CRLF lines, then ``\\r\\n.\\r\\n``;
        with ``limit``, the header, the empty line and ``limit - 1`` body lines."""
        put = self.chan.put
        if not limit:
            started = ended = False
            at_start = True
            while True:
                try:
                    data = os.read(fd, READSIZE)
                except OSError:
                    raise Closed from None
                if not data:
                    break
                started = True
                if at_start and data[:1] == b".":
                    put(b".")
                put(data.replace(b"\n.", b"\n..").replace(b"\n", b"\r\n"))
                at_start = ended = data.endswith(b"\n")
            if started and not ended:
                put(b"\r\n")
        else:
            inheaders = True
            for line, _ in lines(fd):
                if not inheaders:
                    limit -= 1
                    if not limit:
                        break
                if not line:
                    inheaders = False
                elif line[:1] == b".":
                    put(b".")
                put(line + b"\r\n")
        put(b"\r\n.\r\n")
        self.chan.flush()


def main(argv: list[str]) -> int:
    _signal.signal(_signal.SIGPIPE, _signal.SIG_IGN)
    chan = connection()
    try:
        if len(argv) < 2:
            chan.reply(ERR_NOMAILDIR)
            return 0
        try:
            os.chdir(argv[1])
        except OSError:
            chan.reply(ERR_NOMAILDIR)
            return 0
        try:
            messages = getlist()
        except maildir.ScanError:
            chan.reply(ERR_SCAN)
            return 0
        chan.reply(OKAY)
        Pop3d(chan, messages).serve()
    except Hangup:
        pass
    return 0


def cli() -> None:
    from pyqmail.strerr import run

    run(main)


if __name__ == "__main__":
    cli()
