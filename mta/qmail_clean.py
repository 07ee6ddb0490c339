"""qmail-clean: remove a message's files from the queue, for qmail-send.

Reads requests on fd 0, each a name ending in NUL: ``foop/N`` removes
``intd/N`` and ``mess/<N%23>/N``; ``todo/N`` removes ``intd/N`` and
``todo/N``.  Answers one byte for each: ``+`` done, ``!`` a file could not
be removed, ``x`` a request it does not understand.  Every 30 requests (and
at the start) it also removes ``pid/`` files untouched for 36 hours.
"""
from __future__ import annotations

import os
import signal
import time

from pyqmail import control, queue
from pyqmail.fsutil import write_all
from pyqmail.strerr import run


def cleanup_pid() -> None:
    try:
        names = os.listdir("pid")
    except OSError:
        return
    now = time.time()
    for name in names:
        path = "pid/" + name
        try:
            if now >= os.stat(path).st_atime + queue.OSSIFIED:
                os.unlink(path)
        except OSError:
            pass


def _unlink(path: str) -> bool:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError:
        return False
    return True


def answer(line: bytes) -> bytes:
    """The answer to one request (``line`` without its NUL)."""
    if len(line) + 1 < 7 or len(line) + 1 > 100:
        return b"x"
    digits = line[5:]
    if not digits.isdigit() or not digits.isascii():
        return b"x"
    id_ = int(digits)
    if line.startswith(b"foop/"):
        if not _unlink(queue.fn("intd", id_)) or not _unlink(queue.fn("mess", id_)):
            return b"!"
        return b"+"
    if line.startswith(b"todo/"):
        if not _unlink(queue.fn("intd", id_)) or not _unlink(queue.fn("todo", id_)):
            return b"!"
        return b"+"
    return b"x"


def main(argv: list[str]) -> int:
    try:
        os.chdir(control.path("queue"))
    except OSError:
        return 111
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    loop = 0
    buf = b""
    while True:
        if loop:
            loop -= 1
        else:
            cleanup_pid()
            loop = 30
        while b"\0" not in buf:
            try:
                data = os.read(0, 4096)
            except InterruptedError:
                continue
            except OSError:
                return 0
            if not data:
                return 0
            buf += data
        line, _, buf = buf.partition(b"\0")
        try:
            write_all(1, answer(line))
        except OSError:
            return 100


def cli() -> None:
    run(main)


if __name__ == "__main__":
    cli()
