"""addcr: insert a CR before each LF.

Usage: ``addcr`` (arguments are ignored).  Copies stdin to stdout with ``\\r``
put in front of every ``\\n``; a partial final line gets no CR.  Exits 0 at end
of input and 111, silently, on a read or write error.

Each read is converted with one ``bytes.replace`` and written at once, as the
original flushes its output before every read.
"""
from __future__ import annotations

import os

from pyqmail.fsutil import write_all
from pyqmail.strerr import run

#: bytes asked of each read(); a pipe gives at most its 64 KiB anyway
BUFSIZE = 64 * 1024


def main(argv: list[str]) -> int:
    """Copy stdin to stdout adding CRs; 0 at end of input, 111 on errors."""
    try:
        while True:
            data = os.read(0, BUFSIZE)
            if not data:
                return 0
            write_all(1, data.replace(b"\n", b"\r\n"))
    except OSError:
        return 111


def cli() -> None:
    run(main)


if __name__ == "__main__":
    cli()
