"""pgrphack: run a child in a new process group (and session).

Usage: ``pgrphack child``.  Calls setsid() (a failure is ignored, as in
pgrphack.c) and execs ``child``.
"""
from __future__ import annotations

import os

from pyqmail import pathexec
from pyqmail.strerr import die, run

FATAL = "pgrphack: fatal: "
USAGE = "pgrphack: usage: pgrphack child"


def main(argv: list[str]) -> int:
    """Leave the process group and exec ``argv[1:]``."""
    if len(argv) < 2:
        die(100, USAGE)
    try:
        os.setsid()
    except OSError:
        pass  # already a group leader: shouldn't happen, and too bad if it does
    pathexec.chain(FATAL, argv[1:])


def cli() -> None:
    run(main)


if __name__ == "__main__":
    cli()
