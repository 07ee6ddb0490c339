"""tai64n: put a precise TAI64N timestamp in front of each line.

Usage: ``tai64n`` (arguments are ignored).  Each line of stdin goes to stdout
after ``@``, 24 lowercase hex digits and a space: the moment the line's first
byte was read, with the microsecond precision (plus 500 ns) of the original's
gettimeofday().  Exits 0 at end of input and 111, silently, on a read or write
error.

Whole buffers are stamped at once: every line that starts in one read gets
that read's stamp, inserted after each newline with one ``bytes.replace``.
"""
from __future__ import annotations

import os
import time

from pyqmail.strerr import run
from pyqmail.tai64 import EPOCH

#: bytes asked of each read(); a pipe gives at most its 64 KiB anyway
BUFSIZE = 128 * 1024


def stamp() -> bytes:
    """``@`` + 24 hex digits + space for now, as taia_now() makes it."""
    usec = time.time_ns() // 1000
    return b"@%016x%08x " % (EPOCH + usec // 1_000_000, usec % 1_000_000 * 1000 + 500)


def write_all(fd: int, parts: list) -> None:
    """Write every byte of ``parts`` (bytes or memoryviews) to ``fd``."""
    total = sum(len(p) for p in parts)
    n = os.writev(fd, parts)
    if n < total:  # short write: finish what is left, part by part
        for p in parts:
            if n >= len(p):
                n -= len(p)
                continue
            view = memoryview(p)[n:]
            n = 0
            while view:
                view = view[os.write(fd, view):]


def main(argv: list[str]) -> int:
    """Copy stdin to stdout, stamping each line; 0 at end of input, 111 on errors."""
    at_start = True
    try:
        while True:
            data = os.read(0, BUFSIZE)
            if not data:
                return 0
            s = stamp()
            body = data.replace(b"\n", b"\n" + s)
            parts = [s] if at_start else []
            if data[-1] == 10:  # the next line starts in a later read, with its own stamp
                parts.append(memoryview(body)[:-len(s)])
                at_start = True
            else:
                parts.append(body)
                at_start = False
            write_all(1, parts)
    except OSError:
        return 111


def cli() -> None:
    run(main)


if __name__ == "__main__":
    cli()
