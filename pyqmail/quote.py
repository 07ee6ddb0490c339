"""qmail's quote(): a mailbox's local part encoded for SMTP, quoting as little as possible.

A local part made only of atom characters and single inner dots is sent as it
is; anything else goes in double quotes with CR, LF, ``"`` and ``\\``
backslashed.  Bytes above 127 are not specially encoded.
"""
from __future__ import annotations

_OK = frozenset(b"!#$%&'*+-/0123456789=?ABCDEFGHIJKLMNOPQRSTUVWXYZ^_`abcdefghijklmnopqrstuvwxyz{|}~.")


def need(box: bytes) -> bool:
    """True if ``box`` must be quoted."""
    if not box:
        return True
    if any(ch not in _OK for ch in box):
        return True
    return box[:1] == b"." or box[-1:] == b"." or b".." in box


def quote(box: bytes) -> bytes:
    """``box`` as it goes between angle brackets in SMTP."""
    if not need(box):
        return box
    out = bytearray(b'"')
    for ch in box:
        if ch in b'\r\n"\\':
            out += b"\\"
        out.append(ch)
    return bytes(out + b'"')


def quote2(addr: bytes) -> bytes:
    """``addr`` with its local part (before the last ``@``) quoted as needed."""
    if not addr:
        return addr
    box, at, host = addr.rpartition(b"@")
    if not at:
        return quote(addr)
    return quote(box) + b"@" + host
