"""One automatically rotated log directory of multilog, as daemontools 0.76 keeps it.

Files: ``lock`` (flocked while multilog runs), ``current`` (mode 644 while
being written, 744 once safely finished), old logs ``@<tai64n>.s`` (finished)
and ``.u`` (found unfinished after a crash), and for a processor ``previous``,
``processed``, ``state`` and ``newstate``.

Where the original's bytes go is decided by its buffering, and that is what
decides where a log is cut: multilog passes its 512-byte buffer to
``c_write``, which finishes ``current`` after the last newline of the write
that reaches 2000 bytes short of the size.  :meth:`Dir.write_exact` replays
that buffering for one read's worth of output; :meth:`Dir.write_bulk` writes
output that provably cannot reach that point in one go.  Trouble with the
disk is never fatal once input is being read: the original warns, sleeps 5
seconds and tries again, losing nothing, and so does this.
"""
from __future__ import annotations

import errno
import fcntl
import os
import signal
import time

from pyqmail.errstr import error_str, exc_str
from pyqmail.strerr import die, warn, write2

FATAL = "multilog: fatal: "
WARNING = "multilog: warning: "

#: multilog's output buffer per log (buffer_put writes up to 8192 bytes past it at once)
BUFSIZE = 512
#: a log is finished at a newline once it is within this much of its size
SLACK = 2000

_EPOCH = 4611686018427387914  # TAI64 label of 1970, 2**62 + 10
_RD = os.O_RDONLY | os.O_NONBLOCK
_APPEND = os.O_WRONLY | os.O_NONBLOCK | os.O_APPEND | os.O_CREAT
_TRUNC = os.O_WRONLY | os.O_NONBLOCK | os.O_TRUNC | os.O_CREAT

#: the errno the C original would see when it reports one it did not check
#: (its "processor crashed ... pausing: " message prints whatever is left)
last_errno = 0


def stamp() -> bytes:
    """``@`` and 24 hex digits of TAI64N, as daemontools' timestamp() makes it.

    Like taia_now() it reads the clock to the microsecond, so the nanoseconds
    always end in 500.
    """
    us = time.time_ns() // 1000
    sec, usec = divmod(us, 1_000_000)
    return b"@%016x%08x" % (_EPOCH + sec, usec * 1000 + 500)


def deepsleep(seconds: float = 5) -> None:
    time.sleep(seconds)


def pause(*parts: str, exc: BaseException | None = None) -> None:
    """Warn ``multilog: warning: parts: reason`` and sleep 5 seconds.

    Without ``exc`` the reason is whatever errno the original would have left.
    """
    global last_errno
    if exc is not None:
        last_errno = getattr(exc, "errno", 0) or 0
        warn(WARNING, *parts, exc=exc)
    else:
        warn(WARNING, *parts, error_str(last_errno))
    deepsleep()


def _ignore(call, *args) -> None:
    """A call whose failure the original ignores (but whose errno it keeps)."""
    global last_errno
    try:
        call(*args)
    except OSError as e:
        last_errno = e.errno or 0


class Dir:
    """One ``./dir`` action: its settings, its descriptors and its place in ``current``."""

    def __init__(self, name: str, size: int, num: int, processor: str | None) -> None:
        self.name = name
        self.size = size
        self.num = num
        self.processor = processor
        self.fddir = -1
        self.fdlock = -1
        self.fd = -1
        self.bytes = 0
        #: bytes of the unfinished line already given to this log (0: at a line start)
        self.col = 0
        #: output bytes per input byte lately, to size the next block
        self.ratio = 0.0

    # -- start-up ----------------------------------------------------------------
    def restart(self, fdstartdir: int) -> None:
        """Open and lock the directory; finish what a crash left; open ``current``."""
        d = self.name
        try:
            os.fchdir(fdstartdir)
        except OSError as e:
            die(111, FATAL, "unable to switch to starting directory: ", exc=e)
        _ignore(os.mkdir, d, 0o700)
        try:
            self.fddir = os.open(d, _RD)
            os.fchdir(self.fddir)
        except OSError as e:
            die(111, FATAL, "unable to open directory ", d, ": ", exc=e)
        try:
            self.fdlock = os.open("lock", _APPEND, 0o600)
            fcntl.flock(self.fdlock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            die(111, FATAL, "unable to lock directory ", d, ": ", exc=e)
        st = self._stat_or_die("current")
        if st is not None and st.st_mode & 0o100:
            try:
                fd = os.open("current", _APPEND, 0o600)
            except OSError as e:
                die(111, FATAL, "unable to append to ", d, "/current: ", exc=e)
            try:
                os.fchmod(fd, 0o644)
            except OSError as e:
                die(111, FATAL, "unable to set mode of ", d, "/current: ", exc=e)
            self.fd = fd
            self.bytes = st.st_size
            return
        _ignore(os.unlink, "state")
        _ignore(os.unlink, "newstate")
        st = self._stat_or_die("processed")
        if st is not None and st.st_mode & 0o100:
            _ignore(os.unlink, "previous")
            self.finish("processed", "s")
        else:
            _ignore(os.unlink, "processed")
            self.finish("previous", "u")
        self.finish("current", "u")
        try:
            os.close(os.open("state", _TRUNC, 0o644))
        except OSError as e:
            die(111, FATAL, "unable to write to ", d, "/state: ", exc=e)
        try:
            fd = os.open("current", _APPEND, 0o600)
        except OSError as e:
            die(111, FATAL, "unable to write to ", d, "/current: ", exc=e)
        try:
            os.fchmod(fd, 0o644)
        except OSError as e:
            die(111, FATAL, "unable to set mode of ", d, "/current: ", exc=e)
        self.fd = fd
        self.bytes = 0

    def _stat_or_die(self, fn: str) -> os.stat_result | None:
        global last_errno
        try:
            return os.stat(fn)
        except FileNotFoundError:
            last_errno = errno.ENOENT
            return None
        except OSError as e:
            die(111, FATAL, "unable to stat ", self.name, "/", fn, ": ", exc=e)

    # -- writing -----------------------------------------------------------------
    def safe(self, out: bytes) -> bool:
        """True if writing ``out`` cannot finish ``current`` (so buffering does not matter).

        The original finishes ``current`` only inside a write holding a newline
        at or past ``size - 2000 - 1``, or when ``current`` reaches ``size``.
        """
        n = len(out)
        if not n:
            return True
        if self.bytes + n > self.size:
            return False
        k = self.size - SLACK - 1 - self.bytes
        return k >= n or out.find(b"\n", k if k > 0 else 0) < 0

    def write_bulk(self, out: bytes) -> None:
        """Append ``out``, known :meth:`safe`, with the original's pause on errors."""
        view = memoryview(out)
        fd = self.fd
        while view:
            try:
                w = os.write(fd, view)
            except OSError as e:
                pause("unable to write to ", self.name, "/current, pausing: ", exc=e)
                continue
            if w <= 0:
                pause("unable to write to ", self.name, "/current, pausing: ")
                continue
            self.bytes += w
            view = view[w:]
        nl = out.rfind(b"\n")
        self.col = len(out) - 1 - nl if nl >= 0 else self.col + len(out)

    def write_exact(self, out: bytes) -> None:
        """Append one read's output through a replica of the original's buffering.

        Lines are given to the buffer as multilog gives them: the first 1000
        bytes (or the whole line) at once, the rest of a long line and every
        newline byte by byte; the buffer is flushed when full and at the end.
        """
        n = len(out)
        find = out.find
        cw = self._allwrite
        p = 0  # bytes in the buffer, which holds out[start:start + p]
        start = 0
        i = 0
        col = self.col
        while i < n:
            if col == 0:  # a line's first 1000 bytes, or all of a short line
                j = find(b"\n", i)
                long_line = j < 0 or j - i > 1000
                end = i + 1000 if long_line else j
                ln = end - i
                if ln > BUFSIZE - p:
                    if p:
                        cw(out, start, start + p)
                    if ln > BUFSIZE:
                        cw(out, i, end)  # ln <= 1000 < 8192: one write
                        p, start = 0, end
                    else:
                        p, start = ln, i
                else:
                    if not p:
                        start = i
                    p += ln
                i = end
                if long_line:
                    col = 1000
                    continue
            else:  # the rest of a long line, byte by byte
                j = find(b"\n", i)
                end = n if j < 0 else j
                k = end - i
                col += k
                while k:
                    if p == BUFSIZE:
                        cw(out, start, start + p)
                        p = 0
                    if not p:
                        start = i
                    take = min(k, BUFSIZE - p)
                    p += take
                    i += take
                    k -= take
                if j < 0:
                    break
            # the newline, one byte
            if p == BUFSIZE:
                cw(out, start, start + p)
                p = 0
            if not p:
                start = i
            p += 1
            i += 1
            col = 0
        if p:
            cw(out, start, start + p)
        self.col = col

    def _allwrite(self, out: bytes, a: int, b: int) -> None:
        while a < b:
            a += self._c_write(out, a, b)

    def _c_write(self, out: bytes, a: int, b: int) -> int:
        """The original's c_write: cap at size, cut at the last newline near the end."""
        if self.bytes >= self.size:
            self.fullcurrent()
        ln = b - a
        if ln >= self.size - self.bytes:
            ln = self.size - self.bytes
        if self.bytes + ln >= self.size - SLACK:
            r = out.rfind(b"\n", a, a + ln)
            if r >= 0:
                ln = r - a + 1
        view = memoryview(out)[a:a + ln]
        while True:
            try:
                w = os.write(self.fd, view)
            except OSError as e:
                pause("unable to write to ", self.name, "/current, pausing: ", exc=e)
                continue
            if w > 0:
                break
            pause("unable to write to ", self.name, "/current, pausing: ")
        self.bytes += w
        if self.bytes >= self.size - SLACK and out[a + w - 1] == 10:
            self.fullcurrent()
        return w

    # -- finishing ----------------------------------------------------------------
    def fullcurrent(self) -> None:
        """Sync and close ``current``, start a new one, and turn the old into an old log."""
        d = self.name
        _retry(os.fchdir, self.fddir, what=("unable to switch to ", d, ", pausing: "))
        _retry(os.fsync, self.fd, what=("unable to write ", d, "/current to disk, pausing: "))
        _ignore(os.close, self.fd)
        _retry(os.rename, "current", "previous",
               what=("unable to rename current to previous in directory ", d, ", pausing: "))
        self.fd = _retry(os.open, "current", _APPEND, 0o600,
                         what=("unable to create ", d, "/current, pausing: "))
        self.bytes = 0
        _retry(os.fchmod, self.fd, 0o644, what=("unable to set mode of ", d, "/current, pausing: "))
        _retry(os.chmod, "previous", 0o744,
               what=("unable to set mode of ", d, "/previous, pausing: "))
        if self.processor is None:
            self.finish("previous", "s")
            return
        self.run_processor()
        fd = _retry(os.open, "processed", _APPEND, 0o600,
                    what=("unable to create ", d, "/processed, pausing: "))
        _retry(os.fsync, fd, what=("unable to write ", d, "/processed to disk, pausing: "))
        _retry(os.fchmod, fd, 0o744, what=("unable to set mode of ", d, "/processed, pausing: "))
        _ignore(os.close, fd)
        fd = _retry(os.open, "newstate", _APPEND, 0o600,
                    what=("unable to create ", d, "/newstate, pausing: "))
        _retry(os.fsync, fd, what=("unable to write ", d, "/newstate to disk, pausing: "))
        _ignore(os.close, fd)
        _retry(os.unlink, "previous", what=("unable to remove ", d, "/previous, pausing: "))
        _retry(os.rename, "newstate", "state",
               what=("unable to rename newstate to state in directory ", d, ", pausing: "))
        self.finish("processed", "s")

    def run_processor(self) -> None:
        """Run the processor on ``previous`` until it exits 0, as the original does."""
        d = self.name
        while True:
            while True:
                try:
                    pid = os.fork()
                    break
                except OSError as e:
                    pause("unable to fork for processor in ", d, ", pausing: ", exc=e)
            if pid == 0:
                self._exec_processor()
            try:
                _, wstat = os.waitpid(pid, 0)
            except OSError as e:
                pause("wait failed for processor in ", d, ", pausing: ", exc=e)
            else:
                if os.WIFSIGNALED(wstat):
                    pause("processor crashed in ", d, ", pausing: ")
                elif os.waitstatus_to_exitcode(wstat) == 0:
                    return
            warn(WARNING, "processor failed in ", d, ", pausing")
            deepsleep()

    def _exec_processor(self) -> None:
        """In the child: previous on 0, processed on 1, state on 4, newstate on 5; sh -c."""
        try:
            signal.set_wakeup_fd(-1)
            for sig in (signal.SIGTERM, signal.SIGALRM):
                signal.signal(sig, signal.SIG_DFL)
            for fn, flags, target in (("previous", _RD, 0), ("processed", _TRUNC, 1),
                                      ("state", _RD, 4), ("newstate", _TRUNC, 5)):
                fd = os.open(fn, flags, 0o644)
                if fd != target:
                    os.dup2(fd, target)
                    os.close(fd)
                os.set_inheritable(target, True)
            os.execve("/bin/sh", ["sh", "-c", self.processor], os.environ)
        except OSError as e:
            write2(f"{FATAL}unable to run {self.processor}: {exc_str(e)}\n")
        except BaseException:
            pass
        os._exit(111)

    def finish(self, fn: str, code: str) -> None:
        """Turn ``fn`` into ``@<now>.<code>`` (if not already linked) and prune old logs."""
        global last_errno
        d = self.name
        while True:
            try:
                st = os.stat(fn)
                break
            except FileNotFoundError:
                last_errno = errno.ENOENT
                return
            except OSError as e:
                pause("unable to stat ", d, "/", fn, ", pausing: ", exc=e)
        if st.st_nlink == 1:
            while True:
                name = stamp().decode() + "." + code[0]
                try:
                    os.link(fn, name, follow_symlinks=False)
                    break
                except OSError as e:
                    pause("unable to link to ", d, "/", name, ", pausing: ", exc=e)
        _retry(os.unlink, fn, what=("unable to remove ", d, "/", fn, ", pausing: "))
        while True:
            r = self.filesfit()
            if r == 1:
                return
            if r == -1:
                pause("unable to read ", d, ", pausing: ")

    def filesfit(self) -> int:
        """1 if fewer than ``num`` old logs; else remove the oldest and return 0; -1 on error."""
        global last_errno
        oldest = b"@z"
        count = 0
        try:
            names = os.listdir(b".")
        except OSError as e:
            last_errno = e.errno or 0
            return -1
        for x in names:
            if x[:1] == b"@" and len(x) >= 25:
                count += 1
                if x < oldest:
                    oldest = x[:25]
        last_errno = 0
        if count < self.num:
            return 1
        try:
            names = os.listdir(b".")
        except OSError as e:
            last_errno = e.errno or 0
            return -1
        for x in names:
            if x[:1] == b"@" and len(x) >= 25 and x.startswith(oldest):
                try:
                    os.unlink(x)
                except OSError as e:
                    # the original reads errno after the loop: a failed unlink
                    # reports as a failed read of the directory
                    last_errno = e.errno or 0
                    return -1
                break
        return 0

    def quit(self) -> None:
        """At the end of input: ``current`` safely on disk, and mode 744 to say so."""
        d = self.name
        _retry(os.fsync, self.fd, what=("unable to write ", d, "/current to disk, pausing: "))
        _retry(os.fchmod, self.fd, 0o744, what=("unable to set mode of ", d, "/current, pausing: "))


def _retry(call, *args, what: tuple[str, ...]):
    """``call(*args)`` until it succeeds, pausing with the message ``what`` on each failure."""
    while True:
        try:
            return call(*args)
        except OSError as e:
            pause(*what, exc=e)
