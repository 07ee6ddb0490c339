"""RFC 822 header tokens as qmail's token822.c sees them, for qmail-inject (and,
through :mod:`mta.addrparse`, for newaliases, newinclude and dot-forward).

A token is a ``(type, text)`` pair.  :func:`parse` splits a header field
(its name included) into tokens, :func:`addrlist` finds the addresses in an
address list and lets a callback rewrite each one, :func:`unparse` writes the
field back, folding long lists after commas at 80 columns, and
:func:`unquote` gives an address as it goes into the envelope.

qmail's quirks are kept on purpose, because they decide what a user's
headers turn into: nested parentheses vanish from comments, an atom may hold
a backslashed character, words not separated by commas become separate
addresses, address lists are read from right to left.
"""
from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable

ATOM, QUOTE, LITERAL, COMMENT = 1, 2, 3, 4
COMMA, AT, DOT, LEFT, RIGHT, SEMI, COLON = 5, 6, 7, 8, 9, 10, 11

Token = tuple  # (type, bytes)

_SINGLE = {ord(","): COMMA, ord("@"): AT, ord("."): DOT, ord("<"): LEFT,
           ord(">"): RIGHT, ord(";"): SEMI, ord(":"): COLON}
_SPECIAL_TEXT = {COMMA: b",", AT: b"@", DOT: b".", LEFT: b"<", RIGHT: b">",
                 SEMI: b";", COLON: b":"}
_SPACE = frozenset(b" \t\r\n")
#: bytes that end an atom (``)`` and ``]`` do not)
_NOT_ATOM = frozenset(b" \t\r\n([\"<>;:@,.")
#: an atom holding one of these is written as a quoted string
_UNSAFE = frozenset(list(range(32)) + list(range(127, 256)) + list(b")]\\"))
_WORDS = frozenset((ATOM, LITERAL, QUOTE, COMMENT))
_ESCAPE = b'"[]()\\\r\n'
_WRAP = {ATOM: (b"", b""), QUOTE: (b'"', b'"'), LITERAL: (b"[", b"]"), COMMENT: (b"(", b")")}


def parse(s: bytes) -> list[Token] | None:
    """The tokens of ``s``, or None for a syntax error (a stray ``)`` or ``]``,
    or an unfinished comment, quoted string or domain literal)."""
    toks: list[Token] = []
    append = toks.append
    n = len(s)
    i = 0
    while i < n:
        c = s[i]
        if c in _SINGLE:
            append((_SINGLE[c], b""))
            i += 1
        elif c in _SPACE:
            i += 1
        elif c == 0x29 or c == 0x5D:  # ) ]
            return None
        elif c == 0x28 or c == 0x22 or c == 0x5B:  # ( " [
            typ, close = {0x28: (COMMENT, 0x29), 0x22: (QUOTE, 0x22), 0x5B: (LITERAL, 0x5D)}[c]
            buf = bytearray()
            level = 1
            while level:
                i += 1
                if i >= n:
                    return None
                ch = s[i]
                if ch == close:
                    level -= 1
                elif ch == 0x28 and typ == COMMENT:
                    level += 1
                else:
                    if ch == 0x5C:  # backslash
                        i += 1
                        if i >= n:
                            return None
                        ch = s[i]
                    buf.append(ch)
            append((typ, bytes(buf)))
            i += 1
        else:
            buf = bytearray()
            while True:
                if s[i] == 0x5C:
                    i += 1
                    if i >= n:
                        break
                buf.append(s[i])
                i += 1
                if i >= n or s[i] in _NOT_ATOM:
                    break
            text = bytes(buf)
            append((QUOTE if any(ch in _UNSAFE for ch in text) else ATOM, text))
    return toks


def unquote(toks: list[Token]) -> bytes:
    """The address as plain text: quoted strings bare, comments dropped."""
    out = []
    for typ, text in toks:
        if typ in _SPECIAL_TEXT:
            out.append(_SPECIAL_TEXT[typ])
        elif typ == LITERAL:
            out.append(b"[" + text + b"]")
        elif typ != COMMENT:
            out.append(text)
    return b"".join(out)


def _needspace(t1: int, t2: int) -> bool:
    if not t1:
        return False
    if t1 == COLON or t1 == COMMA or t2 == LEFT:
        return True
    return t1 in _WORDS and t2 in _WORDS


def _escape(text: bytes) -> bytes:
    if len(text.translate(None, _ESCAPE)) == len(text):
        return text
    out = bytearray()
    for ch in text:
        if ch in _ESCAPE:
            out.append(0x5C)
        out.append(ch)
    return bytes(out)


def unparse(toks: list[Token], linelen: int = 80) -> bytes:
    """The tokens written out as a header field ending in a newline.

    Each comma is followed by a line break unless the line, with what comes up
    to the next comma, still fits in ``linelen`` columns (token822_unparse).
    """
    buf = bytearray()
    lineb = 0
    linee = -1  # where the last pending break after a comma is

    def newline_or_space() -> None:
        nonlocal lineb, linee
        s = len(buf)
        buf.extend(b"\n ")
        if linee >= 0 and (not linelen or s - lineb <= linelen):
            del buf[linee:linee + 2]
            linee = s - 2
        else:
            if linee >= 0:
                lineb = linee + 1
            linee = s

    last = 0
    for typ, text in toks:
        if _needspace(last, typ):
            buf.append(0x20)
        last = typ
        if typ == COMMA:
            buf.append(0x2C)
            newline_or_space()
        elif typ in _SPECIAL_TEXT:
            buf.extend(_SPECIAL_TEXT[typ])
        else:
            left, right = _WRAP[typ]
            buf.extend(left + _escape(text) + right)
    newline_or_space()
    del buf[-1]
    return bytes(buf)


def addrlist(toks: list[Token], callback: Callable[[list[Token]], list[Token]]) -> list[Token] | None:
    """``toks`` (a field: name, colon, address list) with each address replaced
    by ``callback(address)``; None if the list is malformed.

    Addresses are found from right to left, as token822_addrlist does, so the
    callback sees the last address of the field first.  ``<>`` is an (empty)
    address; words without commas between them are taken as separate
    addresses and a comma is put between them.
    """
    out: list[Token] = []  # built backwards
    addr: list[Token] = []  # backwards too
    comma = (COMMA, b"")

    def gotaddr() -> None:
        new = callback(addr[::-1])
        out.extend(reversed(new))
        addr.clear()

    ingroup = False
    wordok = True
    beginning = 2
    t = len(toks) - 1
    while t >= beginning:
        typ = toks[t][0]
        if typ == SEMI:
            if addr:
                gotaddr()
                out.append(comma)
            if ingroup:
                return None
            ingroup = True
            wordok = True
        elif typ == COLON:
            if addr:
                gotaddr()
            if not ingroup:
                return None
            ingroup = False
            while t >= beginning and toks[t][0] != COMMA:
                out.append(toks[t])
                t -= 1
            if t >= beginning:
                out.append(toks[t])
                t -= 1
            wordok = True
            continue
        elif typ == RIGHT:
            if addr:
                gotaddr()
                out.append(comma)
            out.append(toks[t])
            t -= 1
            while t >= beginning and toks[t][0] != LEFT:
                addr.append(toks[t])
                t -= 1
            gotaddr()  # even an empty one: <>
            if t < beginning:
                return None
            out.append(toks[t])
            t -= 1
            while t >= beginning and toks[t][0] in (COMMENT, ATOM, QUOTE, AT, DOT):
                out.append(toks[t])
                t -= 1
            wordok = False
            continue
        elif typ == ATOM or typ == QUOTE or typ == LITERAL:
            if not wordok and addr:
                gotaddr()
                out.append(comma)
            wordok = False
            addr.append(toks[t])
            t -= 1
            continue
        elif typ == COMMENT:
            pass  # lexically a space: leaves wordok alone
        elif typ == COMMA:
            if addr:
                gotaddr()
            wordok = True
        else:  # @ . <
            wordok = True
            addr.append(toks[t])
            t -= 1
            continue
        out.append(toks[t])
        t -= 1
    if addr:
        gotaddr()
    out.extend(toks[t::-1] if t >= 0 else ())
    out.reverse()
    return out
