"""setuidgid: run a child as another account, with only that account's group.

Usage: ``setuidgid account child``.  Looks ``account`` up in the password
database, drops supplementary groups (``setgroups([gid])``), sets the gid,
then the uid, and execs ``child``.  Only root can use it.
"""
from __future__ import annotations

import os

from pyqmail import pathexec
from pyqmail.accounts import getpw
from pyqmail.strerr import die, run

FATAL = "setuidgid: fatal: "
USAGE = "setuidgid: usage: setuidgid account child"


def main(argv: list[str]) -> int:
    """Become ``argv[1]`` and exec ``argv[2:]``."""
    if len(argv) < 3:
        die(100, USAGE)
    account, child = argv[1], argv[2:]
    pw = getpw(account, FATAL)
    try:
        os.setgroups([pw.pw_gid])
        os.setgid(pw.pw_gid)
    except OSError as e:
        die(111, FATAL, "unable to setgid: ", exc=e)
    try:
        os.setuid(pw.pw_uid)
    except OSError as e:
        die(111, FATAL, "unable to setuid: ", exc=e)
    pathexec.chain(FATAL, child)


def cli() -> None:
    run(main)


if __name__ == "__main__":
    cli()
