"""svok: exit 0 if supervise is running in a directory, 100 if not, 111 on error."""
from __future__ import annotations

import errno
import os

from pyqmail import fsutil
from pyqmail.exitcodes import SVOK_NOT_RUNNING
from pyqmail.strerr import Die, die, run

FATAL = "svok: fatal: "


def main(argv: list[str]) -> int:
    """Check ``argv[1]/supervise/ok`` for a reader."""
    if len(argv) < 2:
        raise Die(100, "svok: usage: svok dir")
    d = argv[1]
    try:
        os.chdir(d)
    except OSError as e:
        die(111, FATAL, "unable to chdir to ", d, ": ", exc=e)
    try:
        fd = fsutil.open_write("supervise/ok")
    except OSError as e:
        if e.errno in (errno.ENOENT, errno.ENXIO):
            return SVOK_NOT_RUNNING
        die(111, FATAL, "unable to open ", d, "/supervise/ok: ", exc=e)
    os.close(fd)
    return 0


def cli() -> None:
    run(main)


if __name__ == "__main__":
    cli()
