"""newaliases: create a forwarding database from /etc/aliases (newaliases(1) of fastforward 0.51).

Usage: ``newaliases``.  Reads the controls me, defaultdomain, defaulthost and
plusdomain under QMAILHOME, then /etc/aliases (syntax in
:mod:`mta.aliases`), and writes /etc/aliases.tmp (world-readable), fsyncs it
and renames it to /etc/aliases.cdb for fastforward.  On any error
/etc/aliases.cdb is left alone.

The original has /etc built in.  Here ``$FASTFORWARD_ETC``, when set, names
the directory used instead of /etc (for tests and scratch installs); the
messages name the files actually used, so by default they are the original's.

Exit 0; 100 for ``addresses over 800 bytes are not permitted``; 111 for the
rest: ``unable to parse this line: LINE`` (the logical line, continuations
and newlines included), ``file delivery /x not supported``, ``empty
recipient addresses not permitted``, ``empty :include: filenames not
permitted``, NUL in a name, and system errors.
"""
from __future__ import annotations

import os

from mta.addrparse import read_controls
from mta.aliases import compile_aliases
from mta.forwardcdb import FormatError, TmpFile, write_cdb
from pyqmail import control
from pyqmail.strerr import die, run

FATAL = "newaliases: fatal: "


def etc() -> str:
    """The directory of aliases, aliases.tmp and aliases.cdb."""
    return os.environ.get("FASTFORWARD_ETC") or "/etc"


def main(argv: list[str]) -> int:
    os.umask(0o033)
    controls = read_controls(FATAL, control.qmail_home())
    fn, fntmp, fncdb = (os.path.join(etc(), name) for name in ("aliases", "aliases.tmp", "aliases.cdb"))
    try:
        with open(fn, "rb") as f:
            data = f.read()
    except OSError as e:
        die(111, FATAL, "unable to read ", fn, ": ", exc=e)
    out = TmpFile(FATAL, fntmp, fncdb)
    try:
        write_cdb(out, compile_aliases(data, controls))
    except FormatError as e:
        die(e.code, FATAL, e.text)
    return 0


def cli() -> None:
    run(main)


if __name__ == "__main__":
    cli()
