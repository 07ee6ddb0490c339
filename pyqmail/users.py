"""The users/cdb lookup qmail-lspawn does before it asks qmail-getpw.

qmail-newu writes ``users/cdb`` (see mta/qmail_newu.py).  :func:`lookup`
follows qmail-lspawn's nughde_get: the local part is lower-cased (ASCII, as
case_lowerb); first the exact key ``!local\\0``, then the wildcard keys
``!prefix`` from the longest prefix (all of ``local``) down to the empty one,
trying a non-empty prefix only if its last character is one the empty-key
record lists.  A wildcard hit gets the rest of ``local`` (original case)
appended as its extension.

The answer is qmail-getpw's format, ``user\\0uid\\0gid\\0home\\0dash\\0ext\\0``,
which :func:`parse` splits as qmail-lspawn does.  A missing users/cdb gives
None (ask qmail-getpw); any other trouble, including a cdb without the
empty-key record, raises :class:`UsersCdbError`, which qmail-lspawn turns
into ``Trouble reading users/cdb`` (exit code :data:`QLX_CDB`).
"""
from __future__ import annotations

import errno
import os
from typing import NamedTuple

from pyqmail import cdb, control
from pyqmail.scan import scan_ulong

#: qmail-lspawn's exit codes for its child (qlx.h)
QLX_USAGE = 112
QLX_ROOT = 113
QLX_NFS = 115
QLX_NOALIAS = 116
QLX_CDB = 117
QLX_SYS = 118
QLX_NOMEM = 119
QLX_EXECSOFT = 120
QLX_EXECPW = 121
QLX_EXECHARD = 126


class UsersCdbError(OSError):
    """users/cdb exists but cannot be read or is malformed."""


class Assignment(NamedTuple):
    """Where a local part is delivered: qmail-local's user, uid, gid, home, dash, ext."""

    user: bytes
    uid: int
    gid: int
    home: bytes
    dash: bytes
    ext: bytes


def cdb_path() -> str:
    """``QMAILHOME/users/cdb``."""
    return control.path("users", "cdb")


def lookup(local: bytes | str, path: str | None = None) -> bytes | None:
    """The users/cdb answer for ``local`` (``user\\0uid\\0gid\\0home\\0dash\\0ext\\0``),
    or None if there is no users/cdb or nothing in it matches."""
    if isinstance(local, str):
        local = os.fsencode(local)
    try:
        reader = cdb.Reader(path or cdb_path())
    except FileNotFoundError:
        return None
    except OSError as e:
        raise UsersCdbError(e.errno, e.strerror) from e
    try:
        with reader:
            wildchars = reader.find(b"")
            if wildchars is None:
                raise UsersCdbError(errno.EPROTO, "users/cdb has no wildcard record")
            lower = b"!" + local.lower()
            found = reader.find(lower + b"\0")
            if found is not None:
                return found + b"\0"
            for i in range(len(lower), 0, -1):
                if i == 1 or lower[i - 1] in wildchars:
                    found = reader.find(lower[:i])
                    if found is not None:
                        return found + local[i - 1:] + b"\0"
    except UsersCdbError:
        raise
    except OSError as e:
        raise UsersCdbError(e.errno, e.strerror) from e
    return None


def parse(nughde: bytes) -> Assignment | None:
    """Split a users/cdb or qmail-getpw answer as qmail-lspawn does; None if
    it has fewer than five NULs (qmail-lspawn's "internal bug", QLX_USAGE)."""
    parts = nughde.split(b"\0", 5)
    if len(parts) < 6:
        return None
    user, uid, gid, home, dash, rest = parts
    ext = rest.split(b"\0", 1)[0]
    return Assignment(user, scan_ulong(uid)[0], scan_ulong(gid)[0], home, dash, ext)
