"""Maildir (maildir(5)): delivery as qmail-local does it, and reading helpers.

Delivery writes ``tmp/time.pid.host``, fsyncs and closes it, links it into
``new/`` and unlinks the ``tmp/`` name, under a 24-hour timer, with qmail's
texts for every failure (raised as :class:`pyqmail.strerr.Die`, exit 111).
qmail forks a child per delivery, so each gets a fresh pid; we deliver in
process, so a name this process has already used waits for the next second.
A process that makes many deliveries (qmail-lspawn's delivery workers) sets
:data:`multi`; its names then follow the Maildir specification's form for
such processes, ``time.M<usec>P<pid>Q<n>.host``, unique without waiting.

Readers (qmail-pop3d, maildir2mbox) use :func:`clean` (``tmp/`` files not
accessed for 36 hours) and :func:`scan` (``new/`` and ``cur/`` by mtime).
"""
from __future__ import annotations

import _signal
import os
import time

from pyqmail.errstr import error_temp
from pyqmail.strerr import Die

ERR_CHDIR = "Unable to chdir to maildir. (#4.2.1)"
ERR_TIMEOUT = "Timeout on maildir delivery. (#4.3.0)"
ERR_READ = "Unable to read message. (#4.3.0)"
ERR_TEMP = "Temporary error on maildir delivery. (#4.3.0)"
ERR_REWIND = "Unable to rewind message. (#4.3.0)"
#: maildir(5): the delivery timer
TIMEOUT = 86400
#: maildir(5): tmp/ files not accessed for 36 hours may go
TMP_AGE = 129600
BUFSIZE = 64 * 1024

#: the last name this process delivered under, by Maildir (device, inode)
_used: dict[tuple[int, int], str] = {}
#: set by a process that makes many deliveries: see the module's docstring
multi = False
_count = 0


class _Timeout(Exception):
    pass


class _ReadError(Exception):
    pass


def _alarm(signum, frame):
    raise _Timeout()


def hostname() -> str:
    """The host part of the name: gethostname(), at most 64 bytes, as qmail."""
    host = os.uname().nodename.encode("utf-8", "surrogateescape")[:64]
    return host.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")


def _key() -> tuple[int, int]:
    st = os.stat(".")
    return st.st_dev, st.st_ino


def _tmpname(key: tuple[int, int], sleep=time.sleep) -> str:
    global _count
    pid = os.getpid()
    host = hostname()
    loop = 0
    while True:
        if multi:
            _count += 1
            now = time.time()
            name = f"tmp/{int(now)}.M{int(now % 1 * 1e6)}P{pid}Q{_count}.{host}"
        else:
            name = f"tmp/{int(time.time())}.{pid}.{host}"
        if _used.get(key) != name:
            try:
                os.stat(name)
            except FileNotFoundError:
                return name
            except OSError:
                pass
            if loop == 2:  # "really should never get to this point"
                raise Die(111, ERR_TEMP)
            loop += 1
            sleep(2)
        else:  # qmail's child would have had another pid: wait out the second
            sleep(max(0.0, int(time.time()) + 1 - time.time()))


def deliver(directory: str, msgfd: int, header: bytes = b"") -> str:
    """Deliver ``header`` then the message on ``msgfd`` (from its start) into
    the Maildir ``directory``; return the name under ``new/``.

    Raises :class:`Die` (111) with qmail-local's text on any failure, leaving
    no file behind in ``tmp/``.  The working directory is restored.
    """
    try:
        os.lseek(msgfd, 0, os.SEEK_SET)
    except OSError:
        raise Die(111, ERR_REWIND) from None
    home = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    old = _signal.signal(_signal.SIGALRM, _alarm)
    tmp = None
    try:
        try:
            os.chdir(directory)
        except OSError as e:
            raise Die(111, ERR_TEMP if error_temp(e.errno) else ERR_CHDIR) from None
        try:
            key = _key()
            tmp = _tmpname(key)
            new = "new" + tmp[3:]
            _signal.alarm(TIMEOUT)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
            try:
                _copy(msgfd, fd, header)
                os.fsync(fd)
            finally:
                os.close(fd)
            os.link(tmp, new)
            if len(_used) > 1000:  # names of past seconds can no longer come up
                _used.clear()
            _used[key] = tmp
            return new
        except _Timeout:
            raise Die(111, ERR_TIMEOUT) from None
        except _ReadError:
            raise Die(111, ERR_READ) from None
        except OSError:
            raise Die(111, ERR_TEMP) from None
        finally:
            _signal.alarm(0)
            if tmp is not None:
                try:
                    os.unlink(tmp)
                except OSError:
                    pass
    finally:
        _signal.signal(_signal.SIGALRM, old)
        try:
            os.fchdir(home)
        finally:
            os.close(home)


def _copy(src: int, dst: int, header: bytes) -> None:
    from pyqmail.fsutil import write_all

    if header:
        write_all(dst, header)
    while True:
        try:
            data = os.read(src, BUFSIZE)
        except OSError:
            raise _ReadError() from None
        if not data:
            return
        write_all(dst, data)


def clean(directory: str = ".") -> None:
    """Remove files in ``directory/tmp`` not accessed for 36 hours (errors ignored)."""
    tmpdir = os.path.join(directory, "tmp")
    now = time.time()
    try:
        names = os.listdir(tmpdir)
    except OSError:
        return
    for name in names:
        if name.startswith("."):
            continue
        path = os.path.join(tmpdir, name)
        try:
            if int(now) > os.stat(path).st_atime + TMP_AGE:
                os.unlink(path)
        except OSError:
            pass


class ScanError(Exception):
    """A subdirectory could not be listed; ``what`` is qmail's text before the reason."""

    def __init__(self, what: str, exc: OSError) -> None:
        super().__init__(what)
        self.what = what
        self.exc = exc


def scan(directory: str = ".", new: bool = True, cur: bool = True) -> list[tuple[int, str]]:
    """``(mtime, "new/name")`` for the messages in ``new/`` then ``cur/``, oldest first.

    As qmail's maildir_scan: names starting with a dot are skipped, and so are
    files modified in the current second (a delivery may still be linking).
    """
    now = int(time.time())
    found: list[tuple[int, int, str]] = []
    for sub, wanted in (("new", new), ("cur", cur)):
        if not wanted:
            continue
        try:
            names = os.listdir(os.path.join(directory, sub))
        except OSError as e:
            raise ScanError(f"unable to scan $MAILDIR/{sub}: ", e) from None
        for name in names:
            if name.startswith("."):
                continue
            rel = f"{sub}/{name}"
            try:
                mtime = int(os.stat(os.path.join(directory, rel)).st_mtime)
            except OSError:
                continue
            if mtime < now:
                found.append((mtime, len(found), rel))
    found.sort()
    return [(mtime, rel) for mtime, _, rel in found]
