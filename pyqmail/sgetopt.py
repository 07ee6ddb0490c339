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
    parser = Options(argv, optstring)
    opts = list(parser)
    return opts, parser.rest


class Options:
    """sgetopt one option at a time, for programs that act on each option as
    it comes (softlimit sets a limit before it reads the next option, so a bad
    value stops it before a later option's diagnostic is printed).

    Iterate for ``(option, value)`` pairs, as :func:`sgetopt` returns them; an
    error prints sgetopt's message and raises :class:`OptError` at its place.
    Afterwards :attr:`rest` holds the arguments after the options.
    """

    def __init__(self, argv: list[str], optstring: str) -> None:
        self.argv = argv
        self.optstring = optstring
        self.rest: list[str] = []

    def __iter__(self):
        argv, optstring = self.argv, self.optstring
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
                    yield c, ""
                    continue
                if pos < len(arg):
                    value = arg[pos:]
                elif i < len(argv):
                    value = argv[i]
                    i += 1
                else:
                    write2(f"{progname(argv)}: option requires an argument -- {c}\n")
                    raise OptError(c)
                yield c, value
                break
        self.rest = argv[i:]
