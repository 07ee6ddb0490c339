"""qmail's control files (qmail-control(5)) and where qmail lives.

Every qmail path hangs off ``QMAILHOME`` (default ``/var/qmail``), so the
whole system runs unprivileged in a scratch tree.  Reading follows qmail's
control.c: the first line of a file, trailing blanks (spaces, tabs, not
carriage returns) removed; for files of lines, blank lines and ``#``
comments skipped; a missing file means the default (``me`` where qmail says
so); any other error is raised, and the programs turn it into qmail's
temporary failure ("unable to read controls").
"""
from __future__ import annotations

import os

from pyqmail.scan import scan_ulong

DEFAULT_HOME = "/var/qmail"


def qmail_home() -> str:
    """The root of the qmail tree: ``$QMAILHOME`` or /var/qmail."""
    return os.environ.get("QMAILHOME") or DEFAULT_HOME


def path(*parts: str) -> str:
    """A path under the qmail tree, e.g. ``path("control", "me")``."""
    return os.path.join(qmail_home(), *parts)


def _read(fn: str | bytes) -> bytes | None:
    try:
        with open(fn, "rb") as f:
            return f.read()
    except FileNotFoundError:
        return None


def _strip(line: bytes) -> bytes:
    """striptrailingwhitespace: spaces, tabs and newlines off the end (a
    carriage return stays, as in qmail)."""
    return line.rstrip(b" \t\n")


def firstline(fn: str | bytes) -> bytes | None:
    """control_readline on the file ``fn``: its first line without trailing
    blanks, or None if it does not exist."""
    data = _read(fn)
    if data is None:
        return None
    return _strip(data.split(b"\n", 1)[0])


def filelines(fn: str | bytes) -> list[bytes] | None:
    """control_readfile on the file ``fn``: its lines without trailing blanks,
    blank lines and ``#`` comments skipped; None if it does not exist."""
    data = _read(fn)
    if data is None:
        return None
    lines = (_strip(line) for line in data.split(b"\n"))
    return [line for line in lines if line and not line.startswith(b"#")]


def readline(name: str, default: str | None = None, *, flagme: bool = False) -> str | None:
    """The first line of control/``name``; if missing, ``me`` (with ``flagme``) or ``default``."""
    line = firstline(path("control", name))
    if line is None:
        if flagme:
            me = readline("me")
            if me is not None:
                return me
        return default
    return os.fsdecode(line)


def readint(name: str, default: int) -> int:
    """control/``name`` as a number (its leading digits, as scan_ulong), or ``default``.

    As qmail's control_readint, a file that does not start with a digit leaves
    the default.
    """
    text = readline(name)
    if text is None:
        return default
    value, n = scan_ulong(text)
    return value if n else default


def readlines(name: str, *, flagme: bool = False) -> list[str]:
    """The non-blank, non-comment lines of control/``name`` ([] or [me] if missing)."""
    lines = filelines(path("control", name))
    if lines is None:
        if flagme:
            me = readline("me")
            return [me] if me is not None else []
        return []
    return [os.fsdecode(line) for line in lines]
