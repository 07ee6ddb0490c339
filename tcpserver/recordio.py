"""recordio: record the input and output of a program on descriptor 2.

Usage: ``recordio program [ arg ... ]``.  Runs the program (it keeps
recordio's pid) with its input and output passed through a forked child,
which prints every packet that goes by on descriptor 2 as lines
``pid < text`` (input) or ``pid > text`` (output), each ending in a space
where the packet had a newline, ``+`` where the packet ended without one, and
``pid < [EOF]`` / ``pid > [EOF]`` at the end of input and output.  Packets are
at most 256 bytes, each line is one write.  Exits 100 on a usage error, 111
if the program cannot be started, else as the program does.
"""
from __future__ import annotations

import os

from pyqmail.strerr import run
from tcpserver import relay

FATAL = "recordio: fatal: "
USAGE = "recordio: usage: recordio program [ arg ... ]"


def _put(line: bytes) -> None:
    try:  # as the original, a record that cannot be written is lost
        os.write(2, line)
    except OSError:
        pass


def record(pid: bytes, data: bytes, direction: bytes) -> None:
    """Print ``data`` as record lines, one write each."""
    head = pid + direction
    lines = data.split(b"\n")
    last = lines.pop()
    for line in lines:
        _put(head + line + b" \n")
    if last:
        _put(head + last + b"+\n")


def main(argv: list[str]) -> int:
    """Start the program with its traffic recorded."""
    pid = b"%d" % os.getpid()

    def left(data: bytes) -> bytes:
        record(pid, data, b" < ")
        return data

    def right(data: bytes) -> bytes:
        record(pid, data, b" > ")
        return data

    def pump(fdleft: int, fdright: int) -> None:
        relay.copy(fdleft, fdright, left, right,
                   lambda: _put(pid + b" < [EOF]\n"), lambda: _put(pid + b" > [EOF]\n"))

    relay.spawn(argv, FATAL, USAGE, pump)


def cli() -> None:
    run(main)


if __name__ == "__main__":
    cli()
