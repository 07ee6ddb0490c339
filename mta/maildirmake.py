"""maildirmake: create a Maildir (maildirmake(1)).

Usage: ``maildirmake name``.  Creates ``name`` and its ``tmp``, ``new`` and
``cur`` subdirectories, mode 0700.  Exits 0; 100 for usage; 111 if a
directory cannot be made (``maildirmake: fatal: unable to mkdir name/new: ...``).
"""
from __future__ import annotations

import os

from pyqmail.strerr import die, run

FATAL = "maildirmake: fatal: "


def main(argv: list[str]) -> int:
    os.umask(0o077)
    if len(argv) < 2:
        die(100, "maildirmake: usage: maildirmake name")
    name = argv[1]
    try:
        os.mkdir(name, 0o700)
    except OSError as e:
        die(111, FATAL, "unable to mkdir ", name, ": ", exc=e)
    try:
        os.chdir(name)
    except OSError as e:
        die(111, FATAL, "unable to chdir to ", name, ": ", exc=e)
    for sub in ("tmp", "new", "cur"):
        try:
            os.mkdir(sub, 0o700)
        except OSError as e:
            die(111, FATAL, "unable to mkdir ", name, "/", sub, ": ", exc=e)
    return 0


def cli() -> None:
    run(main)


if __name__ == "__main__":
    cli()
