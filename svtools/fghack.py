"""fghack: an anti-backgrounding tool.

Usage: ``fghack child``.  Runs ``child`` with 31 extra descriptors writing to a
pipe, reads and discards whatever comes through it, and, once the child has
exited and every descendant has closed the pipe, exits with the child's exit
code (111 with ``child crashed`` if a signal killed it).
"""
from __future__ import annotations

import os

from pyqmail import pathexec
from pyqmail.strerr import die, run, warn

FATAL = "fghack: fatal: "
USAGE = "fghack: usage: fghack child"


def main(argv: list[str]) -> int:
    """Fork and exec ``argv[1:]``, then wait for the pipe to close and the child."""
    if len(argv) < 2:
        die(100, USAGE)
    try:
        rd, wr = os.pipe()
    except OSError as e:
        die(111, FATAL, "unable to create pipe: ", exc=e)
    try:
        pid = os.fork()
    except OSError as e:
        die(111, FATAL, "unable to fork: ", exc=e)
    if pid == 0:
        os.close(rd)
        os.set_inheritable(wr, True)
        for _ in range(30):
            try:
                os.set_inheritable(os.dup(wr), True)
            except OSError:
                break
        err = pathexec.run(argv[1:])
        warn(FATAL, "unable to run ", argv[1], ": ", exc=err)
        os._exit(111)
    os.close(wr)
    while True:
        try:
            if not os.read(rd, 1024):
                break
        except OSError:
            break
    try:
        _, wstat = os.waitpid(pid, 0)
    except OSError as e:
        die(111, FATAL, "wait failed: ", exc=e)
    if os.WIFSIGNALED(wstat):
        die(111, FATAL, "child crashed")
    return os.WEXITSTATUS(wstat)


def cli() -> None:
    run(main)


if __name__ == "__main__":
    cli()
