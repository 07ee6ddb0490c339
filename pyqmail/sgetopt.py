"""Option parsing with djb's sgetopt behaviour and messages.

``getopt.getopt`` stops at the first non-option as sgetopt does; this module
adds sgetopt's diagnostics (``prog: illegal option -- x``) so usage errors read
exactly like the originals'.
"""
from __future__ import annotations

import getopt as _getopt
import os

from pyqmail.strerr import write2


class OptError(Exception):
    """An unknown option or a missing argument; the message is already printed."""


def progname(argv: list[str]) -> str:
    """``argv[0]`` without its directory, as sgetopt names the program."""
    return os.path.basename(argv[0]) if argv and argv[0] else ""


def sgetopt(argv: list[str], optstring: str) -> tuple[list[tuple[str, str]], list[str]]:
    """Parse ``argv[1:]`` with ``optstring``; return ``(options, rest)``.

    Options come back as ``("x", value)`` pairs without the dash.  On an error
    sgetopt's message goes to stderr and :class:`OptError` is raised.
    """
    try:
        opts, rest = _getopt.getopt(argv[1:], optstring)
    except _getopt.GetoptError as e:
        if "requires argument" in e.msg:
            write2(f"{progname(argv)}: option requires an argument -- {e.opt}\n")
        else:
            write2(f"{progname(argv)}: illegal option -- {e.opt}\n")
        raise OptError(e.opt) from None
    return [(o[1:], v) for o, v in opts], rest
