"""config-fast: set up qmail's control files for a host name (qmail's INSTALL).

Usage: ``config-fast host.name``.  As qmail 1.03's config-fast script:
writes the name into control/me, the name less its first label into
control/defaultdomain (only if it has at least three labels), its last two
labels into control/plusdomain, and appends it to control/locals and
control/rcpthosts; every file is made mode 0644.  The files live under
``$QMAILHOME`` (default /var/qmail).  The messages on stdout are the
script's.  Unlike the script, a missing argument is a usage error (exit 100)
and a file that cannot be written stops it (exit 111).
"""
from __future__ import annotations

import os
import re

from pyqmail import control
from pyqmail.fsutil import write_all
from pyqmail.strerr import die, run

FATAL = "config-fast: fatal: "


def default_domain(fqdn: str) -> str:
    """The script's ``sed 's/^\\([^\\.]*\\)\\.\\([^\\.]*\\)\\./\\2\\./'``, then ``read``."""
    return _read_line(re.sub(r"^([^.\n]*)\.([^.\n]*)\.", r"\2.", fqdn, count=1))


def plus_domain(fqdn: str) -> str:
    """The script's ``sed 's/^.*\\.\\([^\\.]*\\)\\.\\([^\\.]*\\)$/\\1.\\2/'``, then ``read``."""
    line = fqdn.split("\n", 1)[0]
    return _read_line(re.sub(r"^.*\.([^.]*)\.([^.]*)$", r"\1.\2", line, count=1))


def _read_line(text: str) -> str:
    """What sh's ``read var`` keeps of ``text``: its first line, blanks trimmed."""
    return text.split("\n", 1)[0].strip(" \t")


def _put(name: str, value: str, *, append: bool = False) -> None:
    fn = control.path("control", name)
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if append else os.O_TRUNC)
    try:
        fd = os.open(fn, flags, 0o666)
        try:
            write_all(fd, os.fsencode(value + "\n"))
        finally:
            os.close(fd)
        os.chmod(fn, 0o644)
    except OSError as e:
        die(111, FATAL, "unable to write ", fn, ": ", exc=e)


def _say(text: str) -> None:
    print(text, flush=True)


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        die(100, "config-fast: usage: config-fast fqdn")
    fqdn = argv[1]
    _say(f"Your fully qualified host name is {fqdn}.")
    _say(f"Putting {fqdn} into control/me...")
    _put("me", fqdn)
    ddom = default_domain(fqdn)
    _say(f"Putting {ddom} into control/defaultdomain...")
    _put("defaultdomain", ddom)
    pdom = plus_domain(fqdn)
    _say(f"Putting {pdom} into control/plusdomain...")
    _put("plusdomain", pdom)
    _say(f"Putting {fqdn} into control/locals...")
    _put("locals", fqdn, append=True)
    _say(f"Putting {fqdn} into control/rcpthosts...")
    _put("rcpthosts", fqdn, append=True)
    _say(f"Now qmail will refuse to accept SMTP messages except to {fqdn}.")
    _say("Make sure to change rcpthosts if you add hosts to locals or virtualdomains!")
    return 0


def cli() -> None:
    run(main)


if __name__ == "__main__":
    cli()
