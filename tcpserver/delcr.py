"""delcr: remove the CR at the end of each line.

Usage: ``delcr`` (arguments are ignored).  Copies stdin to stdout, dropping a
``\\r`` that comes right before a ``\\n``; every other CR stays, including one
at the very end of the input.  Exits 0 at end of input and 111, silently, on a
read error or a write error before the end.

Each read is converted with one ``bytes.replace``; a CR that ends a read is
held back until the next read shows whether an LF follows it.
"""
from __future__ import annotations

import os

from pyqmail.fsutil import write_all
from pyqmail.strerr import run

#: bytes asked of each read(); a pipe gives at most its 64 KiB anyway
BUFSIZE = 64 * 1024


def main(argv: list[str]) -> int:
    """Copy stdin to stdout without CRs before LFs; 0 at end of input, 111 on errors."""
    held = False  # the last read ended in a CR not yet written
    try:
        while True:
            data = os.read(0, BUFSIZE)
            if not data:
                break
            if held:
                data = b"\r" + data
            held = data[-1] == 13
            if held:
                data = data[:-1]
            write_all(1, data.replace(b"\r\n", b"\n"))
    except OSError:
        return 111
    if held:
        try:  # as the original: the last flush's failure goes unreported
            write_all(1, b"\r")
        except OSError:
            pass
    return 0


def cli() -> None:
    run(main)


if __name__ == "__main__":
    cli()
