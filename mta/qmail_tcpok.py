"""qmail-tcpok: clear qmail-remote's table of connection timeouts.

Usage: ``qmail-tcpok``.  Writes 1024 zero bytes over ``queue/lock/tcpto``
under its lock, so qmail-remote tries every address again.  Exit 0, or 111
with ``qmail-tcpok: fatal: ...`` on stderr.
"""
from __future__ import annotations

import os

from pyqmail import control, tcpto
from pyqmail.fsutil import lock_ex, write_all
from pyqmail.strerr import die, run

FATAL = "qmail-tcpok: fatal: "


def main(argv: list[str]) -> int:
    """Clear the table."""
    home = control.qmail_home()
    try:
        os.chdir(home)
    except OSError as e:
        die(111, FATAL, "unable to chdir to ", home, ": ", exc=e)
    try:
        os.chdir("queue/lock")
    except OSError as e:
        die(111, FATAL, "unable to chdir to ", home, "/queue/lock: ", exc=e)
    name = home + "/queue/lock/tcpto"
    try:
        fd = os.open("tcpto", os.O_WRONLY)
    except OSError as e:
        die(111, FATAL, "unable to write ", name, ": ", exc=e)
    try:
        lock_ex(fd)
    except OSError as e:
        die(111, FATAL, "unable to lock ", name, ": ", exc=e)
    try:
        write_all(fd, bytes(tcpto.SIZE))
    except OSError as e:
        die(111, FATAL, "unable to clear ", name, ": ", exc=e)
    return 0


def cli() -> None:
    run(main)


if __name__ == "__main__":
    cli()
