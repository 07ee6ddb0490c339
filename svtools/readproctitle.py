"""readproctitle: show the last bytes read on stdin in the process title.

Usage: ``readproctitle args ... dots``.  The last argument (at least five
bytes) is a window: its first four bytes stay, and every byte read shifts the
rest left and appears at the end, so ``ps`` shows recent error output.  Exits
100 silently on bad arguments, 0 at end of input, as daemontools' does.
"""
from __future__ import annotations

import os

from setproctitle import setproctitle

from pyqmail.strerr import run


def scroll(window: bytes, data: bytes) -> bytes:
    """``window`` after ``data`` was read byte by byte into it."""
    keep = len(window) - 4
    return window[:4] + (window[4:] + data)[-keep:]


def main(argv: list[str]) -> int:
    """Scroll stdin through the last argument until end of input."""
    if len(argv) < 2:
        return 100
    window = os.fsencode(argv[-1])
    if len(window) < 5:
        return 100
    head = " ".join([os.path.basename(argv[0]), *argv[1:-1]])
    while True:
        try:
            data = os.read(0, 4096)
        except InterruptedError:
            continue
        except OSError:
            return 111
        if not data:
            return 0
        window = scroll(window, data)
        setproctitle(head + " " + window.decode("utf-8", "replace"))


def cli() -> None:
    run(main)


if __name__ == "__main__":
    cli()
