"""printmaillist: print the contents of a binary mailing list (printmaillist(1)).

Usage: ``printmaillist < bin``.  Prints each entry of the list on its own
line, in setmaillist's format.  Exit 0; 100 with ``bad mailing list format``
for an entry that is not an address or list name, or holds a newline, or a
list not ended by a NUL; 111 if stdin cannot be read or stdout written.
"""
from __future__ import annotations

from mta.ffio import read_all, write_out
from mta.forwardcdb import FormatError, format_maillist
from pyqmail.strerr import die, run

FATAL = "printmaillist: fatal: "


def main(argv: list[str]) -> int:
    try:
        text = format_maillist(read_all(0, FATAL, "unable to read input: "))
    except FormatError as e:
        die(e.code, FATAL, e.text)
    write_out(FATAL, text)
    return 0


def cli() -> None:
    run(main)


if __name__ == "__main__":
    cli()
