"""argv0: run a program with a chosen 0th argument.

Usage: ``argv0 realname program [ arg ... ]``.  Execs the program stored as
``realname`` (searched for in PATH unless it holds a ``/``) with argv
``program arg ...``, so that the program sees ``program`` as its name (a login
shell as ``-sh``, tcpd as ``ftpd``).  Exits 100 on a usage error and 111 if
``realname`` cannot be run.
"""
from __future__ import annotations

from pyqmail import pathexec
from pyqmail.strerr import die, run

FATAL = "argv0: fatal: "
USAGE = "argv0: usage: argv0 realname program [ arg ... ]"


def main(argv: list[str]) -> int:
    """Exec ``argv[1]`` with the arguments ``argv[2:]``."""
    if len(argv) < 3:
        die(100, USAGE)
    pathexec.chain(FATAL, argv[2:], file=argv[1])


def cli() -> None:
    run(main)


if __name__ == "__main__":
    cli()
