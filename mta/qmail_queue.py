"""qmail-queue: queue a mail message for delivery (qmail-queue(8)).

The message on fd 0, the envelope on fd 1 (``F``sender\\0, ``T``recip\\0
..., \\0); exit 0 once the message is safely in the queue, else one of
qmail-queue's codes (11 address too long, 51-66 and 81 temporary trouble,
91 bad envelope).  Nothing is printed.

qmail's qmail-queue is setuid qmailq.  Ours writes the queue itself when it
runs as the queue's owner, or as root (it then becomes the owner first, and
records the uid it was started with).  Anyone else's message goes to the
queue service, qmail-queued, which records the caller's uid from the socket;
if the service is not running the exit code is 56 ("qq trouble making
network connection").
"""
from __future__ import annotations

import os
import select
import signal

from pyqmail import control, enqueue, queueproto
from pyqmail.strerr import run


def direct(uid: int, pid: int) -> int:
    """Write the queue ourselves, as qmail-queue.c does."""
    def chunks():
        while True:
            try:
                data = os.read(0, 65536)
            except OSError:
                raise enqueue.ReadError from None
            if not data:
                return
            yield data

    def envelope() -> bytes:
        try:
            return os.read(1, 4096)
        except OSError:
            raise enqueue.ReadError from None

    return enqueue.enqueue(chunks(), envelope, uid, pid)


def via_service() -> int:
    """Hand the message and envelope to qmail-queued and return its answer."""
    try:
        client = queueproto.Client()
    except OSError:
        return queueproto.NOCONNECT
    try:
        while True:
            data = os.read(0, queueproto.FRAME)
            if not data:
                break
            client.put(data)
    except OSError:
        client.sock.close()
        return enqueue.READ
    client.end_message()
    # pass the envelope on until the service answers (it stops at the final NUL)
    while True:
        r, _, _ = select.select([client.sock, 1], [], [])
        if client.sock in r:
            return client.finish()
        try:
            data = os.read(1, 4096)
        except OSError:
            data = b""
        if not data:
            try:
                client.sock.shutdown(1)
            except OSError:
                pass
            return client.finish()
        client.envelope(data)


def main(argv: list[str]) -> int:
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    signal.signal(signal.SIGALRM, lambda *_: os._exit(enqueue.TIMEOUT))
    signal.alarm(enqueue.DEATH)
    os.umask(0o033)
    uid = os.getuid()
    try:
        os.stat(control.qmail_home())
    except OSError:
        return 61
    try:
        owner = queueproto.queue_owner()
    except OSError:
        return 62
    if os.geteuid() not in (owner, 0):
        return via_service()
    try:
        if os.geteuid() != owner:
            os.setuid(owner)
        os.chdir(control.path("queue"))
    except OSError:
        return 62
    return direct(uid, os.getpid())


def cli() -> None:
    run(main)


if __name__ == "__main__":
    cli()
