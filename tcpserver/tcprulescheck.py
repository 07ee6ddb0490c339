"""tcprulescheck: say what tcpserver would do with a connection, by its rules.

Usage: ``tcprulescheck rules.cdb``.  The connection is described by
``$TCPREMOTEIP`` (default ``0.0.0.0``), ``$TCPREMOTEHOST`` and
``$TCPREMOTEINFO``; the rule is found as tcpserver finds it
(:mod:`tcpserver.rules`).  Prints ``rule KEY:`` and the rule's settings and
verdict, or ``default:`` and ``allow connection`` when no rule applies.
"""
from __future__ import annotations

import os

from pyqmail import cdb
from pyqmail.fsutil import write_all
from pyqmail.strerr import die, run
from tcpserver import rules

FATAL = "tcprulescheck: fatal: "
USAGE = "tcprulescheck: usage: tcprulescheck rules.cdb"


def describe(key: bytes, data: bytes) -> bytes:
    """What tcprulescheck prints for the rule ``key`` with ``data``."""
    out = [b"rule ", key, b":\n"]
    for entry in data.split(b"\0")[:-1]:
        if entry[:1] == b"D":
            out.append(b"deny connection\n")
            return b"".join(out)
        if entry[:1] == b"+":
            out += [b"set environment variable ", entry[1:], b"\n"]
    out.append(b"allow connection\n")
    return b"".join(out)


def main(argv: list[str]) -> int:
    """Look the connection of the environment up in ``argv[1]`` and say what applies."""
    if len(argv) < 2:
        die(100, USAGE)
    fn = argv[1]
    env = os.environb
    ip = env.get(b"TCPREMOTEIP", b"0.0.0.0")
    try:
        with cdb.Reader(fn) as reader:
            found = rules.match(reader, ip, env.get(b"TCPREMOTEINFO"), env.get(b"TCPREMOTEHOST"))
    except OSError as e:  # cdb.FormatError too: "protocol error", as cdb_read says
        die(111, FATAL, "unable to read ", fn, ": ", exc=e)
    try:
        write_all(1, describe(*found) if found else b"default:\nallow connection\n")
    except OSError:  # as buffer_flush: a lost answer is not an error
        pass
    return 0


def cli() -> None:
    run(main)


if __name__ == "__main__":
    cli()
