"""except: reverse the exit code of a program (except(1)).

Usage: ``except program [ arg ... ]``.  Exits 100 if the program exits 0,
111 if it exits 111, and 0 otherwise (also if it cannot be run).
"""
from __future__ import annotations

from pyqmail.spawn import CRASHED, run_status
from pyqmail.strerr import die, run

FATAL = "except: fatal: "


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        die(100, "except: usage: except program [ arg ... ]")
    try:
        code = run_status(argv[1:])
    except OSError:
        die(111, FATAL, "wait failed")
    if code == CRASHED:
        die(111, FATAL, "child crashed")
    if code == 0:
        return 100
    if code == 111:
        die(111, FATAL, "temporary child error")
    return 0


def cli() -> None:
    run(main)


if __name__ == "__main__":
    cli()
