"""setmaillist: create a binary mailing list (setmaillist(1) of fastforward 0.51).

Usage: ``setmaillist bin tmp`` with the list on stdin, one entry a line.  A
line starting with ``.`` or ``/`` names another binary list; any other line
is an address (``&`` in front is optional).  Blank lines and lines starting
with ``#`` are skipped, spaces and tabs at line ends dropped.  Writes tmp
(world-readable), fsyncs it and renames it to bin.  Exit 0; 100 for usage;
111 for ``NUL in input``, ``addresses must be under 800 bytes`` or a system
error.
"""
from __future__ import annotations

import os

from mta.ffio import read_all
from mta.forwardcdb import FormatError, TmpFile, maillist_entry
from pyqmail.strerr import die, run

FATAL = "setmaillist: fatal: "
USAGE = "setmaillist: usage: setmaillist list.bin list.tmp"


def main(argv: list[str]) -> int:
    os.umask(0o033)
    if len(argv) < 3:
        die(100, USAGE)
    fnbin, fntmp = argv[1], argv[2]
    out = TmpFile(FATAL, fntmp, fnbin)
    text = read_all(0, FATAL, "unable to read input: ")
    entries = []
    try:
        for line in text.split(b"\n"):
            entry = maillist_entry(line)
            if entry is not None:
                entries.append(entry)
    except FormatError as e:
        die(e.code, FATAL, e.text)
    out.write(b"".join(entries))
    out.commit()
    return 0


def cli() -> None:
    run(main)


if __name__ == "__main__":
    cli()
