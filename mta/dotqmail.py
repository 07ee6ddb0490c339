"""The .qmail side of qmail-local (dot-qmail(5)): header lines, the environment,
finding the .qmail file for an extension, the -owner sender, reading the lines.

Everything is bytes: addresses and file names come from the network and may
hold any byte.  Failures raise :class:`pyqmail.strerr.Die` with qmail's texts.
"""
from __future__ import annotations

import os
import stat

from pyqmail.errstr import error_temp, exc_str
from pyqmail.quote import quote2
from pyqmail.strerr import Die

#: conf-patrn: mode bits qmail-local refuses on the home directory and .qmail
PATRN = 0o002

def dtline(recipient: bytes) -> bytes:
    return b"Delivered-To: " + recipient.replace(b"\n", b"_") + b"\n"


def rpline(sender: bytes) -> bytes:
    return b"Return-Path: <" + quote2(sender).replace(b"\n", b"_") + b">\n"


def ext_env(ext: bytes) -> dict[bytes, bytes]:
    """EXT and EXT2-EXT4: the extension and what follows its first three dashes."""
    env = {b"EXT": ext}
    x = ext
    for n in (b"EXT2", b"EXT3", b"EXT4"):
        dash = x.find(b"-")
        x = x[dash + 1:] if dash >= 0 else b""
        env[n] = x
    return env


def host_env(host: bytes) -> dict[bytes, bytes]:
    """HOST2-HOST4: the domain without its last one, two, three components."""
    env = {}
    i = len(host)
    for n in (b"HOST2", b"HOST3", b"HOST4"):
        dot = host.rfind(b".", 0, i)
        i = dot if dot >= 0 else i
        env[n] = host[:i]
    return env


def safe_ext(ext: bytes) -> bytes:
    """The extension as it names a file: ASCII lowercase, dots made colons."""
    return bytes(c + 32 if 65 <= c <= 90 else c for c in ext).replace(b".", b":")


def _qme_open(name: bytes) -> tuple[int, bool] | None:
    """qmeexists(): the open .qmail file and whether it is executable, or None."""
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as e:
        if error_temp(e.errno) or isinstance(e, PermissionError):
            raise Die(111, f"Unable to open {os.fsdecode(name)}: {exc_str(e)}. (#4.3.0)") from None
        return None
    try:
        st = os.fstat(fd)
    except OSError as e:
        os.close(fd)
        raise Die(111, f"Unable to open {os.fsdecode(name)}: {exc_str(e)}. (#4.3.0)") from None
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        return None
    if st.st_mode & PATRN:
        os.close(fd)
        raise Die(111, "Uh-oh: .qmail file is writable. (#4.7.0)")
    return fd, bool(st.st_mode & 0o100)


def search(dash: bytes, ext: bytes) -> tuple[int | None, bool, bytes | None]:
    """qmesearch(): ``(fd, executable, DEFAULT)`` for the .qmail file that controls
    ``dash``+``ext``: the exact name, then each ``-default`` from longest to
    ``.qmail-default``.  fd is None when there is none."""
    safe = safe_ext(ext)
    found = _qme_open(b".qmail" + dash + safe)
    if found:
        default = None
        if len(safe) >= 7 and safe.endswith(b"default") and len(safe) - 7 <= len(ext):
            default = ext[len(safe) - 7:]
        return found[0], found[1], default
    for i in range(len(safe), -1, -1):
        if i == 0 or safe[i - 1] == 0x2D:  # '-'
            found = _qme_open(b".qmail" + dash + safe[:i] + b"default")
            if found:
                return found[0], found[1], ext[i:] if i <= len(ext) else None
    return None, False, None


def _qme_exists(name: bytes) -> bool:
    """qmeox(): does this .qmail name exist at all (any type)?"""
    try:
        os.stat(name)
        return True
    except OSError as e:
        if error_temp(e.errno):
            raise Die(111, f"Unable to open {os.fsdecode(name)}: {exc_str(e)}. (#4.3.0)") from None
        return False


def new_sender(sender: bytes, local: bytes, host: bytes, dash: bytes, ext: bytes) -> bytes:
    """NEWSENDER: ``local-owner@host`` if ``.qmail-ext-owner`` exists (VERP form
    ``local-owner-@host-@[]`` with ``-owner-default`` too); bounces keep theirs."""
    if not sender or sender == b"#@[]":
        return sender
    base = b".qmail" + dash + safe_ext(ext)
    if not _qme_exists(base + b"-owner"):
        return sender
    if _qme_exists(base + b"-owner-default"):
        return local + b"-owner-@" + host + b"-@[]"
    return local + b"-owner@" + host


def read_all(fd: int) -> bytes:
    """The whole .qmail file (the descriptor is closed)."""
    chunks = []
    try:
        while True:
            data = os.read(fd, 65536)
            if not data:
                break
            chunks.append(data)
    except OSError:
        raise Die(111, "Out of memory. (#4.3.0)") from None  # slurpclose's only failure text
    finally:
        os.close(fd)
    return b"".join(chunks)


def lines(cmds: bytes) -> list[bytes]:
    """The instruction lines, trailing blanks and tabs removed; a missing final
    newline is supplied."""
    if not cmds.endswith(b"\n"):
        cmds += b"\n"
    return [line.rstrip(b" \t") for line in cmds.split(b"\n")[:-1]]
