"""qmail-getpw: find the account for a local part (qmail-getpw(8)).

Usage: ``qmail-getpw local``.  As qmail 1.03's qmail-getpw, tries ``local``
itself and then each prefix of it ending before a ``-`` (conf-break), longest
first and at most 31 characters, lower-cased, as an account name; an account
qualifies if its uid is not 0 and its home directory exists and is owned by
it.  It prints ``user\\0uid\\0gid\\0home\\0dash\\0ext\\0``: ``dash`` is ``-`` if
there was an extension, and ``ext`` is what followed the ``-`` in ``local``.
If no account qualifies, the answer is the ``alias`` account with dash ``-``
and all of ``local`` as the extension.

Exits 0; 100 without an argument; 116 (QLX_NOALIAS) if there is no alias
account; 115 (QLX_NFS) if a home directory cannot be checked for a
temporary reason.  qmail-getpw prints no messages.
"""
from __future__ import annotations

import os
import pwd

from pyqmail.errstr import error_temp
from pyqmail.fsutil import write_all
from pyqmail.strerr import run
from pyqmail.users import QLX_NFS, QLX_NOALIAS

BREAK = b"-"  # conf-break
ALIAS = "alias"  # conf-users: the user of last resort
USERLEN = 32  # qmail-getpw's username buffer, NUL included


def _getpwnam(name: bytes) -> pwd.struct_passwd | None:
    try:
        return pwd.getpwnam(os.fsdecode(name))
    except (KeyError, ValueError):
        return None


class NfsFailure(Exception):
    """A home directory could not be checked, for a temporary reason (QLX_NFS)."""


def userext(local: bytes) -> tuple[pwd.struct_passwd, bytes, bytes] | None:
    """(account, dash, extension) for ``local``, or None if no account fits.

    Raises :class:`NfsFailure` when a home directory's stat fails temporarily.
    """
    ext = len(local)
    while True:
        if ext < USERLEN and (ext == len(local) or local[ext:ext + 1] == BREAK):
            pw = _getpwnam(local[:ext].lower())
            if pw is not None and pw.pw_uid:
                try:
                    st = os.stat(pw.pw_dir)
                except OSError as e:
                    if error_temp(e.errno):
                        raise NfsFailure from None
                else:
                    if st.st_uid == pw.pw_uid:
                        if ext < len(local):
                            return pw, b"-", local[ext + 1:]
                        return pw, b"", b""
        if ext == 0:
            return None
        ext -= 1


def answer(local: bytes) -> bytes | int:
    """qmail-getpw's answer for ``local``, or its exit code (QLX_NOALIAS, QLX_NFS)."""
    try:
        found = userext(local)
    except NfsFailure:
        return QLX_NFS
    if found is None:
        pw = _getpwnam(ALIAS.encode())
        if pw is None:
            return QLX_NOALIAS
        dash, ext = b"-", local
    else:
        pw, dash, ext = found
    return b"\0".join([os.fsencode(pw.pw_name), str(pw.pw_uid).encode(),
                       str(pw.pw_gid).encode(), os.fsencode(pw.pw_dir), dash, ext, b""])


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        return 100
    out = answer(os.fsencode(argv[1]))
    if isinstance(out, int):
        return out
    try:
        write_all(1, out)
    except OSError:
        pass  # qmail-getpw does not check its flush
    return 0


def cli() -> None:
    run(main)


if __name__ == "__main__":
    cli()
