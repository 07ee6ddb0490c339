"""readproctitle: show the last bytes read on stdin in the process title.

Usage: ``readproctitle args ... dots``.  The last argument (at least five
bytes) is a window: it is shown as dots, its first three bytes stay, and every
byte read (NULs aside) shifts the rest left and appears at the end, so ``ps``
shows recent error output.  Exits 100 silently on bad arguments, 0 at end of
input, as daemontools' does.
"""
from __future__ import annotations

import os

from pyqmail.proctitle import set_title
from pyqmail.strerr import run


def scroll(window: bytes, data: bytes) -> bytes:
    """``window`` after ``data`` was read byte by byte into it, skipping NULs."""
    keep = len(window) - 3
    return window[:3] + (window[3:] + data.replace(b"\0", b""))[-keep:]


def main(argv: list[str]) -> int:
    """Scroll stdin through the last argument until end of input."""
    if len(argv) < 2:
        return 100
    window = b"." * len(os.fsencode(argv[-1]))
    if len(window) < 5:
        return 100
    set_title([*argv[:-1], window.decode()])
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
        # set_title keeps the short name (ps -C, pgrep) ``readproctitle``
        set_title([*argv[:-1], window.decode("utf-8", "replace")])


def cli() -> None:
    run(main)


if __name__ == "__main__":
    cli()
