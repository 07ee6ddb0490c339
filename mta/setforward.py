"""setforward: create a forwarding database (setforward(1) of fastforward 0.51).

Usage: ``setforward cdb tmp`` with the instructions on stdin (the format is
in :mod:`mta.forwardcdb`).  Writes the database to tmp, fsyncs it and renames
it to cdb; if anything goes wrong cdb is left alone.  Exit 0; 100 for usage
and syntax errors (``final instruction must end with semicolon``, ``double
colons are not permitted``, ``commas are not permitted before colons``,
``NUL bytes are not permitted``, ``addresses over 800 bytes are not
permitted``); 111 for a system error.
"""
from __future__ import annotations

from mta.ffio import read_all
from mta.forwardcdb import FormatError, TmpFile, parse_setforward, write_cdb
from pyqmail.strerr import die, run

FATAL = "setforward: fatal: "
USAGE = "setforward: usage: setforward data.cdb data.tmp"


def main(argv: list[str]) -> int:
    if len(argv) < 3:
        die(100, USAGE)
    fncdb, fntmp = argv[1], argv[2]
    out = TmpFile(FATAL, fntmp, fncdb)
    try:
        records = parse_setforward(read_all(0, FATAL, "unable to read input: "))
    except FormatError as e:
        die(e.code, FATAL, e.text)
    write_cdb(out, records)
    return 0


def cli() -> None:
    run(main)


if __name__ == "__main__":
    cli()
