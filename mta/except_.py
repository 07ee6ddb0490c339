"""except: reverse the exit code of a program (except(1)).

Usage: ``except program [ arg ... ]``.  Exits 100 if the program exits 0,
111 if it exits 111, and 0 otherwise (also if it cannot be run).
"""
from __future__ import annotations

from pyqmail.spawn import run_judged
from pyqmail.strerr import die, run

FATAL = "except: fatal: "


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        die(100, "except: usage: except program [ arg ... ]")
    return 100 if run_judged(argv[1:], FATAL) == 0 else 0


def cli() -> None:
    run(main)


if __name__ == "__main__":
    cli()
