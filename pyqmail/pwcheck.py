"""Checking the password of a system account, as checkpassword does.

The account comes from ``getpwnam`` (``pwd``: /etc/passwd and whatever else
nsswitch.conf names), its hash from /etc/shadow when the account has a line
there (what ``getspnam`` gives with ``shadow: files``; the ``spwd`` module is
gone in Python 3.13), else from the passwd entry.  The password is hashed
with the system's own ``crypt()`` from libcrypt (libxcrypt on Debian: yescrypt
``$y$``, sha512 ``$6$``, sha256 ``$5$``, bcrypt ``$2b$``, md5 ``$1$`` and
traditional DES, whatever the library supports), called through ctypes, and
the result compared with the stored hash in constant time.

An empty stored hash never matches, and neither does a locked one (``!...``,
``*``): crypt() refuses such a setting.  An unknown account costs a hash too,
so the time taken does not tell which accounts exist.
"""
from __future__ import annotations

import ctypes
import errno
import os
import pwd
from _operator import _compare_digest as compare_digest  # hmac's, without hashlib

#: where getspnam looks (the "files" source of nsswitch.conf)
SHADOW = "/etc/shadow"
#: libxcrypt's current and older sonames, then glibc's own libcrypt
LIBCRYPT = ("libcrypt.so.1", "libcrypt.so.2", "libcrypt.so")
#: a setting hashed when the account is unknown, so a miss takes as long as a hit
DECOY = b"$y$j9T$F5Jx5fExrKuPp53xLKQ..1$"
#: errors reading /etc/shadow that mean "no shadow entry", as getspnam leaves
#: checkpassword to go on with the passwd entry; any other error is temporary
_NO_ENTRY = (errno.ENOENT, errno.EACCES, errno.EPERM)

_crypt = None


class Trouble(Exception):
    """The password could not be checked now (checkpassword exits 111)."""


def _function():
    global _crypt
    if _crypt is None:
        last: OSError | None = None
        for name in LIBCRYPT:
            try:
                lib = ctypes.CDLL(name, use_errno=True)
                break
            except OSError as e:
                last = e
        else:
            raise Trouble(f"unable to load libcrypt: {last}")
        fn = lib.crypt
        fn.restype = ctypes.c_char_p
        fn.argtypes = (ctypes.c_char_p, ctypes.c_char_p)
        _crypt = fn
    return _crypt


def crypt(password: bytes, setting: bytes) -> bytes | None:
    """``crypt(password, setting)`` of libcrypt; None when it refuses the setting
    (libxcrypt answers a failure token starting with ``*``, others NULL).

    Like the C function, both strings end at a NUL byte.
    """
    password = password.split(b"\0", 1)[0]
    setting = setting.split(b"\0", 1)[0]
    result = _function()(password, setting)
    if not result or result.startswith(b"*"):
        return None
    return result


def shadow_hash(name: bytes, path: str = SHADOW) -> bytes | None:
    """The second field of ``name``'s line in the shadow file, None without one.

    A missing or unreadable file counts as no entry (getspnam fails, and
    checkpassword goes on with the passwd entry); another error is :class:`Trouble`.
    """
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        if e.errno in _NO_ENTRY:
            return None
        raise Trouble(f"unable to read {path}: {e}") from None
    key = name + b":"
    for line in data.split(b"\n"):
        if line.startswith(key):
            return line[len(key):].split(b":", 1)[0]
    return None


def account(name: bytes) -> pwd.struct_passwd | None:
    """The passwd entry of ``name`` (None if there is none)."""
    if not name or b"\0" in name:
        return None
    try:
        return pwd.getpwnam(os.fsdecode(name))
    except (KeyError, UnicodeError, ValueError):
        return None


def stored_hash(pw: pwd.struct_passwd, shadow: str = SHADOW) -> bytes:
    """The hash to check against: the shadow file's, else the passwd entry's."""
    name = os.fsencode(pw.pw_name)
    found = shadow_hash(name, shadow)
    return found if found is not None else os.fsencode(pw.pw_passwd)


def matches(password: bytes, stored: bytes) -> bool:
    """True if ``password`` hashes to ``stored`` (never for an empty ``stored``)."""
    if not stored:
        crypt(password, DECOY)
        return False
    result = crypt(password, stored)
    if result is None:
        return False
    return compare_digest(result, stored)


def check(name: bytes, password: bytes, shadow: str = SHADOW) -> pwd.struct_passwd | None:
    """The account ``name`` if ``password`` is its password, else None.

    Raises :class:`Trouble` when the check cannot be made now.
    """
    pw = account(name)
    if pw is None:
        crypt(password, DECOY)
        return None
    return pw if matches(password, stored_hash(pw, shadow)) else None
