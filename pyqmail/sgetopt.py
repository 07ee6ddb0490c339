"""Option parsing with djb's sgetopt behaviour and messages.

Options end at the first argument that does not start with ``-``, at a lone
``-`` (kept as an argument) or after ``--`` (dropped), as in sgetopt and POSIX
getopt.  Errors print sgetopt's diagnostics (``prog: illegal option -- x``).
This is a few lines of our own rather than ``getopt.getopt``: that module
imports gettext and re, 4 ms of start-up for every svc, and words its errors
differently.
"""
from __future__ import annotations

from pyqmail.strerr import write2


class OptError(Exception):
    """An unknown option or a missing argument; the message is already printed."""


def progname(argv: list[str]) -> str:
    """``argv[0]`` without its directory, as sgetopt names the program."""
    return argv[0].rsplit("/", 1)[-1] if argv and argv[0] else ""


def sgetopt(argv: list[str], optstring: str) -> tuple[list[tuple[str, str]], list[str]]:
    """Parse ``argv[1:]`` with ``optstring``; return ``(options, rest)``.

    Options come back as ``("x", value)`` pairs without the dash, value ``""``
    for a flag.  On an error sgetopt's message goes to stderr and
    :class:`OptError` is raised.
    """
    opts: list[tuple[str, str]] = []
    i = 1
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            i += 1
            break
        if len(arg) < 2 or arg[0] != "-":
            break
        i += 1
        pos = 1
        while pos < len(arg):
            c = arg[pos]
            pos += 1
            where = optstring.find(c) if c != ":" else -1
            if where < 0:
                write2(f"{progname(argv)}: illegal option -- {c}\n")
                raise OptError(c)
            if optstring[where + 1:where + 2] != ":":
                opts.append((c, ""))
                continue
            if pos < len(arg):
                opts.append((c, arg[pos:]))
            elif i < len(argv):
                opts.append((c, argv[i]))
                i += 1
            else:
                write2(f"{progname(argv)}: option requires an argument -- {c}\n")
                raise OptError(c)
            break
    return opts, argv[i:]
