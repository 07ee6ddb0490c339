"""printforward: print the instructions in a forwarding database (printforward(1)).

Usage: ``printforward < cdb``.  Reads the database from stdin, front to back
(it need not be seekable), and prints each record in setforward's format: an
owner as ``target: ?owner;``, instructions as ``target:``, one ``, command``
line each, and ``;``.  Exit 0; 100 with ``bad database format`` for a file
that is not a forwarding database; 111 if stdin cannot be read.  As in the
original, its messages start ``printmaillist: fatal:``.
"""
from __future__ import annotations

import struct

from mta.ffio import read_all, write_out
from mta.forwardcdb import FormatError, format_record
from pyqmail.strerr import die, run

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Iterator

# the original shares its prefix with printmaillist (a slip in fastforward 0.51)
FATAL = "printmaillist: fatal: "


def records(db: bytes) -> Iterator[tuple[bytes, bytes]]:
    """(key, data) of each record, checked as printforward checks them."""
    bad = FormatError(100, "bad database format")
    if len(db) < 2048:
        raise bad
    eod = struct.unpack_from("<L", db)[0]
    pos = 2048
    while pos < eod:
        if eod - pos < 8 or len(db) < pos + 8:
            raise bad
        klen, dlen = struct.unpack_from("<LL", db, pos)
        pos += 8
        if eod - pos < klen or len(db) < pos + klen:
            raise bad
        key = db[pos:pos + klen]
        pos += klen
        if eod - pos < dlen or len(db) < pos + dlen:
            raise bad
        data = db[pos:pos + dlen]
        pos += dlen
        if not key:
            raise bad
        yield key, data


def main(argv: list[str]) -> int:
    db = read_all(0, FATAL, "unable to read input: ")
    out = []
    try:
        for key, data in records(db):
            out.append(format_record(key, data))
    except FormatError as e:
        write_out(FATAL, b"".join(out))
        die(e.code, FATAL, e.text)
    write_out(FATAL, b"".join(out))
    return 0


def cli() -> None:
    run(main)


if __name__ == "__main__":
    cli()
