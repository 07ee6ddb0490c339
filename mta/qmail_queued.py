"""qmail-queued: the queue service that stands in for setuid qmail-queue.

Usage: ``qmail-queued`` (qmail-start runs it as qmailq; it takes no
arguments).  Listens on ``QMAILHOME/run/qmail-queue.sock`` and queues each
message sent there (see :mod:`pyqmail.queueproto`) exactly as qmail-queue
would, recording the caller's uid and pid as the kernel reports them, and
answers with qmail-queue's exit code.  Worker threads take connections in
parallel, so the fsyncs of several messages overlap.

When fd 0 is a pipe (qmail-start gives it one that qmail-send holds), the
service exits when the pipe ends.  A second copy refuses to start (``run/qmail-queued.lock``).  SIGTERM stops
it at once: a message not yet answered is not in the queue (what is left of
it is cleaned up later, as after a crash of qmail-queue).
"""
from __future__ import annotations

import os
import signal
import socket
import stat
import threading

from pyqmail import control, enqueue, queueproto
from pyqmail.fsutil import lock_exnb
from pyqmail.strerr import die, run, warn

FATAL = "qmail-queued: fatal: "
WARNING = "qmail-queued: warning: "
WORKERS = 16


def serve(conn: socket.socket) -> None:
    """Queue what one connection sends and answer with the exit code."""
    conn.settimeout(enqueue.DEATH)
    try:
        pid, uid, _ = queueproto.pid_of_peer(conn)
        reader = conn.makefile("rb")

        def chunks():
            try:
                yield from queueproto.read_frames(reader)
            except (EOFError, OSError):
                raise enqueue.ReadError from None

        def envelope() -> bytes:
            try:
                return reader.read1(4096)
            except OSError:
                raise enqueue.ReadError from None

        code = enqueue.enqueue(chunks(), envelope, uid, pid)
        try:
            conn.sendall(bytes([code]))
        except OSError:
            pass
    except OSError as e:
        warn(WARNING, "trouble with a connection: ", exc=e)
    finally:
        conn.close()


def worker(listener: socket.socket) -> None:
    while True:
        try:
            conn, _ = listener.accept()
        except OSError:
            continue
        serve(conn)


def listen(path: str) -> socket.socket:
    """Bind the socket under a temporary name, open it to all, rename it in place."""
    tmp = f"{path}.{os.getpid()}"
    try:
        os.unlink(tmp)
    except FileNotFoundError:
        pass
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(tmp)
    os.chmod(tmp, 0o666)
    s.listen(128)
    os.rename(tmp, path)
    return s


def watch_parent() -> None:
    """Exit when the pipe on fd 0 ends: qmail-send, which holds it, is gone."""
    while True:
        try:
            if not os.read(0, 512):
                break
        except InterruptedError:
            continue
        except OSError:
            break
    os._exit(0)


def main(argv: list[str]) -> int:
    os.umask(0o033)
    # a caller gone before its answer must cost it its answer, not the service its life
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    try:
        if stat.S_ISFIFO(os.fstat(0).st_mode):
            threading.Thread(target=watch_parent, daemon=True).start()
    except OSError:
        pass
    path = queueproto.socket_path()
    try:
        os.chdir(control.path("queue"))
    except OSError as e:
        die(111, FATAL, "unable to switch to queue directory: ", exc=e)
    lockfn = os.path.join(os.path.dirname(path), "qmail-queued.lock")
    try:
        lockfd = os.open(lockfn, os.O_WRONLY | os.O_CREAT, 0o600)
        lock_exnb(lockfd)
    except BlockingIOError:
        die(111, FATAL, "qmail-queued is already running")
    except OSError as e:
        die(111, FATAL, f"unable to lock {lockfn}: ", exc=e)
    try:
        listener = listen(path)
    except OSError as e:
        die(111, FATAL, f"unable to listen on {path}: ", exc=e)
    threads = [threading.Thread(target=worker, args=(listener,), daemon=True)
               for _ in range(WORKERS - 1)]
    for t in threads:
        t.start()
    worker(listener)
    return 0


def cli() -> None:
    run(main)


if __name__ == "__main__":
    cli()
