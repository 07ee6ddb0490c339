"""bouncesaying: perhaps bounce each incoming message (bouncesaying(1)).

Usage: ``bouncesaying error [ program [ arg ... ] ]``.  Without a program,
prints ``error`` and exits 100 (the message bounces with that text).  With
one, runs it on the message: exit 0 bounces, 111 defers (111), anything else
(or a program that cannot be run) exits 0 so the rest of .qmail goes on.
"""
from __future__ import annotations

from pyqmail.spawn import run_judged
from pyqmail.strerr import die, run

FATAL = "bouncesaying: fatal: "


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        die(100, "bouncesaying: usage: bouncesaying error [ program [ arg ... ] ]")
    if len(argv) > 2:
        if run_judged(argv[2:], FATAL) != 0:
            return 0
    die(100, argv[1])


def cli() -> None:
    run(main)


if __name__ == "__main__":
    cli()
