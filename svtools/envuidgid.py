"""envuidgid: run a child with $UID and $GID set to an account's uid and gid.

Usage: ``envuidgid account child``.  Nothing else changes: the child runs as
the caller (``setuidgid`` is the one that switches).
"""
from __future__ import annotations


from pyqmail import pathexec
from pyqmail.accounts import getpw
from pyqmail.strerr import die, run

FATAL = "envuidgid: fatal: "
USAGE = "envuidgid: usage: envuidgid account child"


def main(argv: list[str]) -> int:
    """Put ``argv[1]``'s gid and uid into the environment and exec ``argv[2:]``."""
    if len(argv) < 3:
        die(100, USAGE)
    account, child = argv[1], argv[2:]
    pw = getpw(account, FATAL)
    env = pathexec.environ_with([b"GID=%d" % pw.pw_gid, b"UID=%d" % pw.pw_uid])
    pathexec.chain(FATAL, child, env)


def cli() -> None:
    run(main)


if __name__ == "__main__":
    cli()
