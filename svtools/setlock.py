"""setlock: run a child with a file locked.

Usage: ``setlock [ -nNxX ] file program [ arg ... ]``.  Opens ``file`` for
appending (creating it, mode 0600), takes an exclusive flock on it and execs
the program, which inherits the locked descriptor: the lock lasts until every
holder of that descriptor has closed it.  ``-n``: give up if the file is
locked; ``-N`` (default): wait.  ``-x``: exit 0 if the file cannot be opened or
locked; ``-X`` (default): say why and exit 111.
"""
from __future__ import annotations

import fcntl
import os

from pyqmail import pathexec
from pyqmail.sgetopt import OptError, sgetopt
from pyqmail.strerr import die, run

FATAL = "setlock: fatal: "
USAGE = "setlock: usage: setlock [ -nNxX ] file program [ arg ... ]"


def main(argv: list[str]) -> int:
    """Lock ``file`` and exec the program with the lock held."""
    try:
        opts, args = sgetopt(argv, "nNxX")
    except OptError:
        die(100, USAGE)
    ndelay = flagx = False
    for opt, _ in opts:
        if opt in "nN":
            ndelay = opt == "n"
        else:
            flagx = opt == "x"
    if len(args) < 2:
        die(100, USAGE)
    file, child = args[0], args[1:]
    try:
        # as open_append(): the child gets the descriptor, non-blocking and all
        fd = os.open(file, os.O_WRONLY | os.O_NONBLOCK | os.O_APPEND | os.O_CREAT, 0o600)
    except OSError as e:
        if flagx:
            return 0
        die(111, FATAL, "unable to open ", file, ": ", exc=e)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (fcntl.LOCK_NB if ndelay else 0))
    except OSError as e:
        if flagx:
            return 0
        die(111, FATAL, "unable to lock ", file, ": ", exc=e)
    os.set_inheritable(fd, True)
    pathexec.chain(FATAL, child)


def cli() -> None:
    run(main)


if __name__ == "__main__":
    cli()
