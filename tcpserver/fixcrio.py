"""fixcrio: insert the missing CRs at the ends of lines, both ways.

Usage: ``fixcrio program [ arg ... ]``.  Runs the program (it keeps fixcrio's
pid) with its input and output passed through a forked child that puts a CR
in front of every LF not already preceded by one, in what goes to the
program and in what comes from it.  Exits 100 on a usage error, 111 if the
program cannot be started, else as the program does.
"""
from __future__ import annotations

from pyqmail.strerr import run
from tcpserver import relay

FATAL = "fixcrio: fatal: "
USAGE = "fixcrio: usage: fixcrio program [ arg ... ]"


class Fixer:
    """Adds CRs to one direction; remembers whether the last byte seen was a CR."""

    def __init__(self) -> None:
        self.flagcr = False

    def __call__(self, data: bytes) -> bytes:
        head = b""
        if self.flagcr and data[0] == 10:  # the CR came at the end of the last read
            head, rest = b"\n", data[1:]
        else:
            rest = data
        self.flagcr = data[-1] == 13
        return head + rest.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def main(argv: list[str]) -> int:
    """Start the program with CRs fixed both ways."""
    relay.spawn(argv, FATAL, USAGE,
                lambda fdleft, fdright: relay.copy(fdleft, fdright, Fixer(), Fixer()))


def cli() -> None:
    run(main)


if __name__ == "__main__":
    cli()
