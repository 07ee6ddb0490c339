"""supervise: start ./run in a service directory and keep it running.

Usage: ``supervise dir``.  Keeps ``supervise/lock`` (flock), the ``control``
and ``ok`` FIFOs and the 18-byte ``status`` file as daemontools 0.76 does, and
obeys svc's control letters u d o p c h a i t k x.
"""
from __future__ import annotations

import errno
import os
import select
import signal
import subprocess
import time

from pyqmail import fsutil, tai64
from pyqmail.errstr import exc_str
from pyqmail.proctitle import set_title
from pyqmail.spawn import inherited_fds
from pyqmail.strerr import Die, die, run, warn, write2
from svtools.status import Status

FATAL = "supervise: fatal: "
WARNING = "supervise: warning: "

#: control letters that only send a signal to a running service
_SIGNALS = {
    b"a": signal.SIGALRM,
    b"h": signal.SIGHUP,
    b"k": signal.SIGKILL,
    b"t": signal.SIGTERM,
    b"i": signal.SIGINT,
}


class Supervisor:
    """The state of one supervise process, driven by :meth:`loop`."""

    def __init__(self, dir: str) -> None:
        self.dir = dir
        self.flagexit = False
        self.flagwant = True
        self.flagwantup = True
        self.pid = 0
        self.flagpaused = False
        self.stamp = tai64.now_pack()
        self.selfpipe = (-1, -1)
        self.fdcontrol = -1
        #: the last start failed: no child to wait for, retry as if it had exited
        self.failed = False
        #: descriptors above 2 that supervise inherited open: ./run gets them too
        self.inherited = inherited_fds()
        self._keep: list[int] = []

    # -- status ---------------------------------------------------------
    def pidchange(self) -> None:
        self.stamp = tai64.now_pack()

    def announce(self) -> None:
        """Write supervise/status.new and rename it over supervise/status."""
        want = (b"u" if self.flagwantup else b"d") if self.flagwant else b"\0"
        data = Status(self.stamp, self.pid, bool(self.pid and self.flagpaused), want).pack()
        try:
            fd = os.open("supervise/status.new", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        except OSError as e:
            warn(WARNING, "unable to open ", self.dir, "/supervise/status.new: ", exc=e)
            return
        try:
            n = os.write(fd, data)
        except OSError as e:
            warn(WARNING, "unable to write ", self.dir, "/supervise/status.new: ", exc=e)
            os.close(fd)
            return
        os.close(fd)
        if n < len(data):
            warn(WARNING, "unable to write ", self.dir, "/supervise/status.new: partial write")
            return
        try:
            os.rename("supervise/status.new", "supervise/status")
        except OSError as e:
            warn(WARNING, "unable to rename ", self.dir, "/supervise/status.new to status: ", exc=e)

    # -- the child ------------------------------------------------------
    def trystart(self) -> None:
        """Start ./run, then pause a second so a failing run cannot spin.

        subprocess's vfork and exec rather than os.fork: a Python process is
        slow to fork and the child needs no Python code before exec.  (Not
        os.posix_spawn: glibc 2.36's leaves signals 32 and 33 ignored in the
        child.)  Popen gives ./run the default SIGPIPE and SIGXFSZ, no blocked
        signals, and the descriptors supervise itself inherited.  (close_fds
        keeps Popen off posix_spawn; pass_fds keeps what exec would.)  An exec
        failure surfaces here, not in a child: we say what the C child would
        have said and count it as a start whose child died at once.
        """
        try:
            proc = subprocess.Popen(["./run"], close_fds=True, pass_fds=self.inherited,
                                    restore_signals=True)
            # we reap it ourselves with waitpid; tell Popen not to track it
            proc.returncode = 0
            pid = proc.pid
        except OSError as e:
            if e.errno == errno.EAGAIN:
                warn(WARNING, "unable to fork for ", self.dir, ", sleeping 60 seconds: ", exc=e)
                time.sleep(60)
            else:
                write2(f"{FATAL}unable to start {self.dir}/run: {exc_str(e)}\n")
                self.flagpaused = False
                self.pidchange()
                self.announce()
                time.sleep(1)
            self.failed = True
            return
        self.flagpaused = False
        self.pid = pid
        self.pidchange()
        self.announce()
        time.sleep(1)

    def child_gone(self) -> None:
        """./run exited (or never started): record it and start it again if wanted."""
        self.pid = 0
        self.pidchange()
        self.announce()
        if not self.flagexit and self.flagwant and self.flagwantup:
            self.trystart()

    # -- control --------------------------------------------------------
    def control(self, ch: bytes) -> None:
        """Act on one control byte written by svc."""
        pid = self.pid
        if ch == b"d":
            self.flagwant, self.flagwantup = True, False
            if pid:
                _kill(pid, signal.SIGTERM)
                _kill(pid, signal.SIGCONT)
                self.flagpaused = False
            self.announce()
        elif ch == b"u":
            self.flagwant, self.flagwantup = True, True
            self.announce()
            if not pid:
                self.trystart()
        elif ch == b"o":
            self.flagwant = False
            self.announce()
            if not pid:
                self.trystart()
        elif ch in _SIGNALS:
            if pid:
                _kill(pid, _SIGNALS[ch])
        elif ch == b"p":
            self.flagpaused = True
            self.announce()
            if pid:
                _kill(pid, signal.SIGSTOP)
        elif ch == b"c":
            self.flagpaused = False
            self.announce()
            if pid:
                _kill(pid, signal.SIGCONT)
        elif ch == b"x":
            self.flagexit = True
            self.announce()

    def reap(self) -> None:
        """Collect exited children; restart ./run if it was ours and is wanted up."""
        while True:
            try:
                r, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            except InterruptedError:
                continue
            if r == 0:
                return
            if r == self.pid:
                self.child_gone()
                return

    def loop(self) -> None:
        """Wait for children and control bytes until told to exit and down."""
        self.announce()
        rfds = [self.selfpipe[0], self.fdcontrol]
        while True:
            if self.flagexit and not self.pid:
                return
            if self.failed:
                self.failed = False
                self.child_gone()
                if self.flagexit and not self.pid:
                    return
            select.select(rfds, [], [], 0 if self.failed else 3600)
            try:
                while os.read(self.selfpipe[0], 128):
                    pass
            except BlockingIOError:
                pass
            self.reap()
            if self.flagexit and not self.pid:
                return
            try:
                ch = os.read(self.fdcontrol, 1)
            except BlockingIOError:
                ch = b""
            if ch:
                self.control(ch)

    # -- start-up -------------------------------------------------------
    def setup(self) -> None:
        """Everything supervise does before it first starts ./run."""
        r, w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.selfpipe = (r, w)
        signal.signal(signal.SIGCHLD, _noop)
        signal.set_wakeup_fd(w, warn_on_full_buffer=False)
        d = self.dir
        try:
            os.chdir(d)
        except OSError as e:
            die(111, FATAL, "unable to chdir to ", d, ": ", exc=e)
        try:
            os.stat("down")
            self.flagwantup = False
        except FileNotFoundError:
            pass
        except OSError as e:
            die(111, FATAL, "unable to stat ", d, "/down: ", exc=e)
        _make_supervise_dir(d)
        try:
            fdlock = fsutil.open_append("supervise/lock")
            fsutil.lock_exnb(fdlock)
        except OSError as e:
            die(111, FATAL, "unable to acquire ", d, "/supervise/lock: ", exc=e)
        fsutil.fifo_make("supervise/control", 0o600)
        try:
            self.fdcontrol = fsutil.open_read("supervise/control")
        except OSError as e:
            die(111, FATAL, "unable to read ", d, "/supervise/control: ", exc=e)
        try:
            fdcontrolwrite = fsutil.open_write("supervise/control")
        except OSError as e:
            die(111, FATAL, "unable to write ", d, "/supervise/control: ", exc=e)
        self.pidchange()
        self.announce()
        fsutil.fifo_make("supervise/ok", 0o600)
        try:
            fdok = fsutil.open_read("supervise/ok")
        except OSError as e:
            die(111, FATAL, "unable to read ", d, "/supervise/ok: ", exc=e)
        self._keep = [fdlock, fdcontrolwrite, fdok]


def _make_supervise_dir(d: str) -> None:
    """mkdir supervise; if it is a dangling symlink, make its target (Debian's rule)."""
    try:
        target = os.readlink("supervise")
    except FileNotFoundError:
        target = None
    except OSError as e:
        if e.errno != errno.EINVAL:  # EINVAL: not a symlink
            die(111, FATAL, "unable to readlink ./supervise: ", exc=e)
        target = None
    try:
        os.mkdir(target if target else "supervise", 0o700)
    except OSError:
        pass


def _kill(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except OSError:
        pass


def _noop(signum: int, frame: object) -> None:
    pass


def main(argv: list[str]) -> int:
    """Supervise the service directory ``argv[1]`` until told to exit."""
    if len(argv) != 2:
        raise Die(100, "supervise: usage: supervise dir")
    set_title(argv)
    sup = Supervisor(argv[1])
    sup.setup()
    if not sup.flagwant or sup.flagwantup:
        sup.trystart()
    sup.loop()
    sup.announce()
    return 0


def cli() -> None:
    run(main)


if __name__ == "__main__":
    cli()
