"""qmail-lspawn's delivery workers: one process per account, reused.

Forking a Python process per delivery costs more than the delivery itself
(page tables, copy-on-write faults, interpreter bookkeeping).  So
qmail-lspawn forks, for each uid/gid it delivers to, a worker that gives up
root for that account once and then runs qmail-local for each delivery it
is sent: the message and the report pipe come over a Unix socket
(SCM_RIGHTS) with qmail-local's argv, and the worker answers with
qmail-local's exit code.  Each delivery still runs as the recipient's ids,
with the message on fd 0 and the report pipe on fds 1 and 2, in the
environment qmail-lspawn has; a worker that dies mid-delivery (kill -9)
reports as a crashed qmail-local.  Workers idle for :data:`IDLE` seconds,
or past :data:`LIFETIME` deliveries, are let go.
"""
from __future__ import annotations

import os
import signal
import socket
import time

from pyqmail import qmailids
from pyqmail.users import QLX_ROOT, QLX_USAGE
from pyqmail.proctitle import set_title

IDLE = 120
LIFETIME = 10000


class Worker:
    __slots__ = ("sock", "pid", "ids", "token", "count", "last")

    def __init__(self, sock: socket.socket, pid: int, ids: tuple[int, int]) -> None:
        self.sock, self.pid, self.ids = sock, pid, ids
        self.token = 0  # the delivery it is running, 0 if idle
        self.count = 0
        self.last = time.monotonic()


def _serve(sock: socket.socket, local_main) -> None:
    """The worker's loop (as the account): deliveries until the socket ends."""
    from pyqmail import maildir
    from pyqmail.strerr import Die, write2

    maildir.multi = True
    null = os.open("/dev/null", os.O_RDWR)
    while True:
        try:
            msg, fds, _, _ = socket.recv_fds(sock, 65536, 2)
        except OSError:
            os._exit(0)
        if not msg or len(fds) != 2:
            os._exit(0)
        argv = [os.fsdecode(a) for a in msg.split(b"\0")]
        os.dup2(fds[0], 0)
        os.dup2(fds[1], 1)
        os.dup2(fds[1], 2)
        os.close(fds[0])
        os.close(fds[1])
        set_title(argv)
        try:
            code = local_main(argv)
        except Die as d:
            write2(d.message + "\n")
            code = d.code
        except Exception:  # noqa: BLE001 - as a crash of qmail-local
            code = -1
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        if code < 0:
            os._exit(111)  # the parent sees a crash
        try:
            sock.send(bytes([code & 255]))
        except OSError:
            os._exit(0)


def _refuse(sock: socket.socket, code: int) -> None:
    """Answer the first delivery with ``code``, as qmail's child would have exited."""
    try:
        _, fds, _, _ = socket.recv_fds(sock, 65536, 2)
        for fd in fds:
            os.close(fd)
        sock.send(bytes([code]))
    finally:
        os._exit(0)


def _only(keep: int) -> None:
    """In a new worker: nothing of qmail-lspawn's open but ``keep`` (its socket);
    0, 1 and 2 on /dev/null until a delivery brings its own."""
    null = os.open("/dev/null", os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd > 2 and fd != keep:
            try:
                os.close(fd)
            except OSError:
                pass


class Workers:
    """The workers of one qmail-lspawn, by (uid, gid)."""

    def __init__(self, local_main, on_done, watch: dict) -> None:
        self.local_main = local_main
        self.on_done = on_done  # on_done(token, wstat)
        self.watch = watch  # the spawner's: descriptor -> what to call when readable
        self.by_fd: dict[int, Worker] = {}

    def _start(self, ids: tuple[int, int]) -> Worker:
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        pid = os.fork()
        if pid == 0:
            try:
                _only(child.fileno())
                signal.set_wakeup_fd(-1)
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                signal.signal(signal.SIGPIPE, signal.SIG_IGN)
                try:
                    qmailids.become(ids[0], ids[1])
                except OSError:
                    _refuse(child, QLX_USAGE)  # qmail's child: prot_uid failed
                if os.getuid() == 0:
                    _refuse(child, QLX_ROOT)
                _serve(child, self.local_main)
            finally:
                os._exit(0)
        child.close()
        w = Worker(parent, pid, ids)
        fd = parent.fileno()
        self.by_fd[fd] = w
        self.watch[fd] = lambda: self.ready(fd)
        return w

    def deliver(self, ids: tuple[int, int], token: int, argv: list[bytes],
                fdmess: int, fdout: int) -> None:
        """Send one delivery to an idle worker for ``ids`` (started if none)."""
        worker = None
        for w in self.by_fd.values():
            if w.ids == ids and not w.token and w.count < LIFETIME:
                worker = w
                break
        if worker is None:
            worker = self._start(ids)
        worker.token = token
        worker.count += 1
        try:
            socket.send_fds(worker.sock, [b"\0".join(argv)], [fdmess, fdout])
        except OSError:
            self._lost(worker)

    def ready(self, fd: int) -> None:
        """A worker has answered (or died)."""
        w = self.by_fd[fd]
        try:
            data = w.sock.recv(16)
        except OSError:
            data = b""
        if not data:
            self._lost(w)
            return
        token, w.token = w.token, 0
        w.last = time.monotonic()
        if token:
            self.on_done(token, data[0] << 8)

    def _forget(self, w: Worker) -> None:
        fd = w.sock.fileno()
        del self.by_fd[fd]
        del self.watch[fd]
        w.sock.close()  # a live worker exits at end of file; the spawner reaps it

    def _lost(self, w: Worker) -> None:
        self._forget(w)
        try:
            os.waitpid(w.pid, os.WNOHANG)
        except ChildProcessError:
            pass
        if w.token:
            self.on_done(w.token, signal.SIGKILL)  # as a crashed qmail-local

    def stop(self) -> None:
        """Let every worker go and wait for them (qmail-lspawn is ending)."""
        workers = list(self.by_fd.values())
        for w in workers:
            self._forget(w)
        for w in workers:
            try:
                os.waitpid(w.pid, 0)
            except ChildProcessError:
                pass  # the spawner reaped it already

    def retire(self) -> None:
        """Let idle workers past their time go."""
        now = time.monotonic()
        for w in list(self.by_fd.values()):
            if not w.token and (now - w.last > IDLE or w.count >= LIFETIME):
                self._forget(w)
