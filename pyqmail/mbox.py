"""mbox files (mbox(5)) as qmail writes them: delivery, the From_ line, quoting.

Each message is a ``From sender date`` line, the message with every line that
matches ``^>*From `` given one more ``>`` (mboxrd), a newline added if the
last line lacks one, and a blank line.  Delivery appends under an flock,
fsyncs, and on a write error truncates the file back to its old length.
Failures raise :class:`pyqmail.strerr.Die` with qmail-local's texts.
"""
from __future__ import annotations

import _signal
import fcntl
import os
import time

from pyqmail.date822 import MONTHS
from pyqmail.errstr import exc_str
from pyqmail.fsutil import write_all
from pyqmail.strerr import Die

_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
#: how long qmail-local waits for the lock
LOCK_TIMEOUT = 30
BUFSIZE = 64 * 1024


def myctime(t: float) -> str:
    """qmail's myctime(): ``Wed Nov 25 15:03:11 2026\\n`` in UTC."""
    tm = time.gmtime(int(t))
    return (f"{_DAYS[tm.tm_wday]} {MONTHS[tm.tm_mon - 1]} {tm.tm_mday:02d} "
            f"{tm.tm_hour:02d}:{tm.tm_min:02d}:{tm.tm_sec:02d} {tm.tm_year}\n")


def ufline(sender: bytes, t: float) -> bytes:
    """The ``From_`` line qmail-local writes: blanks in the sender become ``-``,
    an empty sender is MAILER-DAEMON."""
    if sender:
        who = sender.replace(b" ", b"-").replace(b"\t", b"-").replace(b"\n", b"-")
    else:
        who = b"MAILER-DAEMON"
    return b"From " + who + b" " + myctime(t).encode()


def gfrom(line: bytes) -> bool:
    """True if ``line`` needs a ``>``: zero or more ``>`` then ``From ``."""
    return line.lstrip(b">").startswith(b"From ")


class Quoter:
    """Turns a message, fed in pieces, into its mbox body (quoted, newline-ended)."""

    def __init__(self) -> None:
        self.partial = b""

    def feed(self, data: bytes) -> bytes:
        data = self.partial + data
        cut = data.rfind(b"\n") + 1
        self.partial = data[cut:]
        return quote(data[:cut])

    def end(self) -> bytes:
        """What remains: the last line, with the newline it lacked."""
        last, self.partial = self.partial, b""
        return quote(last + b"\n") if last else b""


def quote(lines: bytes) -> bytes:
    """``>``-quote the complete lines in ``lines``."""
    if b"From " not in lines:
        return lines
    return b"\n".join(b">" + line if gfrom(line) else line for line in lines.split(b"\n"))


class _Slow(Exception):
    pass


def _slow(signum, frame):
    raise _Slow()


def lock(fd: int) -> bool:
    """flock ``fd``, waiting at most 30 s; False if locking is not possible."""
    old = _signal.signal(_signal.SIGALRM, _slow)
    _signal.alarm(LOCK_TIMEOUT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        return True
    except _Slow:
        raise Die(111, "File has been locked for 30 seconds straight. (#4.3.0)") from None
    except OSError:
        return False
    finally:
        _signal.alarm(0)
        _signal.signal(_signal.SIGALRM, old)


def deliver(path: str, msgfd: int, head: bytes) -> None:
    """Append ``head`` (From_, Return-Path, Delivered-To lines) and the message
    on ``msgfd`` (from its start) to the mbox ``path``, as qmail-local does."""
    try:
        os.lseek(msgfd, 0, os.SEEK_SET)
    except OSError:
        raise Die(111, "Unable to rewind message. (#4.3.0)") from None
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC,
                     0o600)
    except OSError as e:
        raise Die(111, f"Unable to open {path}: {exc_str(e)}. (#4.2.1)") from None
    try:
        locked = lock(fd)
        pos = os.lseek(fd, 0, os.SEEK_END)
        try:
            _append(fd, msgfd, head)
        except _ReadError as r:
            if locked:
                _truncate(fd, pos)
            raise Die(111, f"Unable to read message: {exc_str(r.exc)}. (#4.3.0)") from None
        except _WriteError as w:
            if locked:
                _truncate(fd, pos)
            raise Die(111, f"Unable to write {path}: {exc_str(w.exc)}. (#4.3.0)") from None
    finally:
        os.close(fd)


class _WriteError(Exception):
    def __init__(self, exc: OSError) -> None:
        self.exc = exc


class _ReadError(_WriteError):
    pass


def _truncate(fd: int, pos: int) -> None:
    try:
        os.ftruncate(fd, pos)
    except OSError:
        pass


def _append(fd: int, msgfd: int, head: bytes) -> None:
    quoter = Quoter()
    pending = [head]
    size = len(head)
    while True:
        try:
            data = os.read(msgfd, BUFSIZE)
        except OSError as e:
            raise _ReadError(e) from None
        if not data:
            break
        out = quoter.feed(data)
        pending.append(out)
        size += len(out)
        if size >= BUFSIZE:
            _write(fd, b"".join(pending))
            pending, size = [], 0
    pending.append(quoter.end())
    pending.append(b"\n")
    _write(fd, b"".join(pending))
    try:
        os.fsync(fd)
    except OSError as e:
        raise _WriteError(e) from None


def _write(fd: int, data: bytes) -> None:
    try:
        write_all(fd, data)
    except OSError as e:
        raise _WriteError(e) from None
