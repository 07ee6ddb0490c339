"""The loop shared by qmail-lspawn and qmail-rspawn (qmail's spawn.c).

qmail-send writes commands on fd 0: a delivery number byte, then the
message's ``split/number`` (relative to ``queue/mess``), the sender and the
recipient, each ending in NUL.  For each, the spawner opens the message,
checks it, and starts a delivery with the message on its stdin and a pipe
as its stdout and stderr.  When the delivery has exited and its output has
ended, it writes the delivery number, the report the program-specific
``report`` makes of the exit status and the output, and a NUL.  At start
it writes one byte: how many deliveries it can run at once.

The write end of each delivery's pipe stays open here until the child has
been reaped, so end of file on the pipe means the child is gone and its
status known.  A delivery need not be a child of ours: ``spawn`` returns a
token and, if it already knows, the exit status; else a child's pid (reaped
here) or a token that the caller later passes to :meth:`Spawner.finish`.
Descriptors the caller wants watched go in :attr:`Spawner.watch`.
"""
from __future__ import annotations

import errno
import os
import select
import signal
from typing import Callable

from pyqmail.fsutil import write_all

#: conf-spawn: the most deliveries at once (and the size of the number byte's range)
AUTO_SPAWN = 120


def enter_queue() -> int:
    """Change to ``QMAILHOME/queue/mess``, where the spawners work; the uid that
    owns the queue (qmailq), which every message file must have.  OSError on trouble."""
    from pyqmail import control

    os.chdir(control.qmail_home())
    owner = os.stat("queue").st_uid
    os.chdir("queue/mess")
    return owner


class Delivery:
    __slots__ = ("fdin", "fdout", "pid", "wstat", "output")

    def __init__(self, fdin: int, fdout: int, pid: int) -> None:
        self.fdin, self.fdout, self.pid = fdin, fdout, pid
        self.wstat = 0
        self.output = bytearray()


class Spawner:
    """``spawn(fdmess, fdout, sender, recip, at) -> pid`` starts a delivery;
    ``report(wstat, output) -> bytes`` words its result; ``owner`` is the uid
    every message file must belong to (qmailq)."""

    def __init__(self, spawn: Callable[[int, int, bytes, bytes, int], tuple[int, int | None]],
                 report: Callable[[int, bytes], bytes], truncreport: int, owner: int) -> None:
        self.spawn = spawn
        self.report = report
        self.truncreport = truncreport
        self.owner = owner
        self.d: dict[int, Delivery] = {}
        self.out = bytearray()
        self.writing = True
        #: descriptor -> function called when it is readable
        self.watch: dict[int, Callable[[], None]] = {}
        #: called about every :attr:`every` seconds while there is something to watch
        self.tick: Callable[[], None] | None = None
        self.every = 60.0

    # -- talking to qmail-send ---------------------------------------------------
    def put(self, data: bytes) -> None:
        self.out += data

    def flush(self) -> None:
        if not self.writing:
            self.out.clear()
            return
        try:
            write_all(1, bytes(self.out))
        except OSError:
            self.writing = False  # qmail-send is gone: finish what runs, quietly
        self.out.clear()

    def err(self, delnum: int, text: str) -> None:
        self.put(bytes([delnum]) + text.encode() + b"\0")
        self.flush()

    # -- commands ----------------------------------------------------------------
    def docmd(self, delnum: int, messid: bytes, sender: bytes, recip: bytes) -> None:
        if delnum >= AUTO_SPAWN:
            return self.err(delnum, "ZInternal error: delnum too big. (#4.3.5)\n")
        if delnum in self.d:
            return self.err(delnum, "ZInternal error: delnum in use. (#4.3.5)\n")
        for i, ch in enumerate(messid):
            if not (48 <= ch <= 57) and (i == 0 or ch != 47):
                return self.err(delnum, "DInternal error: messid has nonnumerics. (#5.3.5)\n")
        if len(messid) + 1 > 100:  # spawn.c counts the NUL
            return self.err(delnum, "DInternal error: messid too long. (#5.3.5)\n")
        if not messid:
            return self.err(delnum, "DInternal error: messid too short. (#5.3.5)\n")
        at = recip.rfind(b"@")
        if at < 0:
            return self.err(delnum, "DSorry, address must include host name. (#5.1.3)\n")
        try:
            fdmess = os.open(messid, os.O_RDONLY)
        except OSError:
            return self.err(delnum, "Zqmail-spawn unable to open message. (#4.3.0)\n")
        try:
            try:
                st = os.fstat(fdmess)
            except OSError:
                return self.err(delnum, "Zqmail-spawn unable to fstat message. (#4.3.0)\n")
            if not (st.st_mode & 0o170000) == 0o100000:
                return self.err(delnum, "ZSorry, message has wrong type. (#4.3.5)\n")
            if st.st_uid != self.owner:
                return self.err(delnum, "ZSorry, message has wrong owner. (#4.3.5)\n")
            try:
                fdin, fdout = os.pipe()
            except OSError:
                return self.err(delnum, "Zqmail-spawn unable to create pipe. (#4.3.0)\n")
            try:
                pid, wstat = self.spawn(fdmess, fdout, sender, recip, at)
            except OSError:
                os.close(fdin)
                os.close(fdout)
                return self.err(delnum, "Zqmail-spawn unable to fork. (#4.3.0)\n")
            self.d[delnum] = dl = Delivery(fdin, fdout, pid)
            if wstat is not None:
                self._done(dl, wstat)
        finally:
            os.close(fdmess)

    def reap(self) -> None:
        """Collect dead children: close the write ends so their pipes reach EOF."""
        while True:
            try:
                pid, wstat = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            self.finish(pid, wstat)

    def finish(self, token: int, wstat: int) -> None:
        """The delivery ``token`` has ended with ``wstat``."""
        for dl in self.d.values():
            if dl.pid == token:
                self._done(dl, wstat)
                return

    @staticmethod
    def _done(dl: Delivery, wstat: int) -> None:
        os.close(dl.fdout)
        dl.fdout = -1
        dl.wstat = wstat
        dl.pid = 0

    def finished(self, delnum: int) -> None:
        dl = self.d.pop(delnum)
        os.close(dl.fdin)
        self.put(bytes([delnum]) + self.report(dl.wstat, bytes(dl.output)) + b"\0")
        self.flush()

    def got(self, dl: Delivery, data: bytes) -> None:
        dl.output += data
        limit = self.truncreport
        if limit > 100 and len(dl.output) > limit:
            mess = b"\nError report too long, sorry.\n"
            del dl.output[limit - len(mess) - 3:]
            dl.output += mess

    # -- the loop ----------------------------------------------------------------
    def loop(self) -> int:
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_r, False)
        os.set_blocking(wake_w, False)
        signal.set_wakeup_fd(wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)
        self.put(bytes([AUTO_SPAWN]))
        self.flush()
        reading = True
        cmd = bytearray()
        while True:
            if not reading and not self.d:
                return 0
            fds = [wake_r, *self.watch] + [dl.fdin for dl in self.d.values()]
            if reading:
                fds.append(0)
            timeout = self.every if self.tick is not None and self.watch else None
            try:
                r, _, _ = select.select(fds, [], [], timeout)
            except InterruptedError:
                continue
            if not r and self.tick is not None:
                self.tick()
            if wake_r in r:
                try:
                    os.read(wake_r, 512)
                except BlockingIOError:
                    pass
            self.reap()
            for fd in r:
                if fd in self.watch:
                    self.watch[fd]()
            if reading and 0 in r:
                try:
                    data = os.read(0, 1024)
                except InterruptedError:
                    data = None
                except OSError:
                    data = b""
                if data == b"":
                    reading = False
                elif data:
                    cmd += data
                    self.commands(cmd)
            for delnum, dl in list(self.d.items()):
                if dl.fdin in r:
                    try:
                        data = os.read(dl.fdin, 4096)
                    except OSError as e:
                        if e.errno != errno.EINTR:
                            continue
                        continue
                    if data:
                        self.got(dl, data)
                    elif dl.pid == 0:
                        self.finished(delnum)

    def commands(self, buf: bytearray) -> None:
        """Run every complete command at the front of ``buf``; keep the rest."""
        while True:
            if not buf:
                return
            e1 = buf.find(b"\0", 1)
            if e1 < 0:
                return
            e2 = buf.find(b"\0", e1 + 1)
            if e2 < 0:
                return
            e3 = buf.find(b"\0", e2 + 1)
            if e3 < 0:
                return
            delnum = buf[0]
            messid, sender, recip = bytes(buf[1:e1]), bytes(buf[e1 + 1:e2]), bytes(buf[e2 + 1:e3])
            del buf[:e3 + 1]
            self.docmd(delnum, messid, sender, recip)
