"""Sendmail-style address lines, read as fastforward's newaliases and dot-forward read them.

Both programs tokenize a line as an RFC 822 header (qmail's token822: atoms,
quoted strings, domain literals, comments, specials) and walk the tokens from
right to left, cutting them into addresses at commas, at ``<...>`` and
between two words; :func:`walk` is that walk.  newaliases' alias name is
simply the leftmost "address" of its line, which is why a missing colon does
not matter to it.  :func:`read_controls` and :func:`qualify` give addresses
without a full domain the defaulthost, plusdomain and defaultdomain of
qmail-header(5).

Everything is bytes; a line that does not tokenize, or a ``<`` without its
``>``, raises :class:`ParseError`.
"""
from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable

# token types, numbered as in token822.h
ATOM, QUOTE, LITERAL, COMMENT, LEFT, RIGHT, AT, COMMA, SEMI, COLON, DOT = range(1, 12)

Token = tuple  # (type, bytes)

_SPECIAL = {ord("."): DOT, ord(","): COMMA, ord("@"): AT, ord("<"): LEFT, ord(">"): RIGHT,
            ord(":"): COLON, ord(";"): SEMI}
_SPACE = frozenset(b" \t\r\n")
#: bytes that end an atom (atomok() is false for them)
_NOTATOM = frozenset(b" \t\r\n([\"<>;:@,.")
_PHRASE = (COMMENT, ATOM, QUOTE, AT, DOT)


class ParseError(ValueError):
    """The line cannot be tokenized or an address list in it is malformed."""


def _bracketed(line: bytes, i: int, close: int, nests: bool) -> tuple[bytes, int]:
    """The contents of a comment, quoted string or literal opened at ``i``, and
    the index of its closing byte; backslash quotes the byte after it."""
    out = bytearray()
    level = 1
    n = len(line)
    while True:
        i += 1
        if i >= n:
            raise ParseError("unterminated")
        c = line[i]
        if c == close:
            level -= 1
            if not level:
                return bytes(out), i
        elif nests and c == 0x28:  # (
            level += 1
        else:
            if c == 0x5C:  # backslash
                i += 1
                if i >= n:
                    raise ParseError("unterminated")
                c = line[i]
            out.append(c)


def tokenize(line: bytes) -> list[Token]:
    """token822_parse: the tokens of ``line``; :class:`ParseError` if it has an
    unbalanced ``)`` or ``]``, or an unterminated comment, quote or literal."""
    toks: list[Token] = []
    n = len(line)
    i = 0
    while i < n:
        c = line[i]
        if c in _SPECIAL:
            toks.append((_SPECIAL[c], b""))
        elif c in _SPACE:
            pass
        elif c in b")]":
            raise ParseError("unbalanced")
        elif c == 0x28:  # (
            s, i = _bracketed(line, i, 0x29, True)
            toks.append((COMMENT, s))
        elif c == 0x22:  # "
            s, i = _bracketed(line, i, 0x22, False)
            toks.append((QUOTE, s))
        elif c == 0x5B:  # [
            s, i = _bracketed(line, i, 0x5D, False)
            toks.append((LITERAL, s))
        else:
            atom = bytearray()
            while True:
                if line[i] == 0x5C:
                    i += 1
                    if i >= n:
                        break
                atom.append(line[i])
                i += 1
                if i >= n or line[i] in _NOTATOM:
                    break
            i -= 1
            # atomcheck: an atom holding odd bytes is really a quoted string
            kind = QUOTE if any(b < 32 or b > 126 or b in b")]\\" for b in atom) else ATOM
            toks.append((kind, bytes(atom)))
        i += 1
    return toks


_TEXT = {COMMA: b",", AT: b"@", DOT: b".", LEFT: b"<", RIGHT: b">", SEMI: b";", COLON: b":"}


def unquote(toks: list[Token]) -> bytes:
    """token822_unquote: the tokens as one string, quotes and comments dropped."""
    out = []
    for kind, s in toks:
        if kind in (ATOM, QUOTE):
            out.append(s)
        elif kind == LITERAL:
            out.append(b"[" + s + b"]")
        elif kind != COMMENT:
            out.append(_TEXT[kind])
    return b"".join(out)


def has_at(toks: list[Token]) -> bool:
    """True if an unquoted ``@`` is among the tokens."""
    return any(kind == AT for kind, _ in toks)


def walk(toks: list[Token], gotaddr: Callable[[list[Token]], None],
         gotincl: Callable[[list[Token]], None] | None = None) -> None:
    """Cut ``toks`` into addresses from right to left, calling ``gotaddr`` with
    the tokens of each (in their order on the line).

    With ``gotincl``, ``:include:`` followed by tokens calls it with those
    tokens instead.  Semicolons and other colons are skipped; a ``>`` without
    its ``<`` raises :class:`ParseError` (after ``gotaddr`` has seen what
    preceded it, as the original does).
    """
    addr: list[Token] = []  # built leftwards: reversed

    def flush() -> list[Token]:
        got = addr[::-1]
        addr.clear()
        return got

    wordok = True
    t = len(toks)
    while t > 0:
        t -= 1
        kind = toks[t][0]
        if kind in (SEMI, COMMENT):
            continue
        if kind == COLON:
            if (gotincl is not None and t >= 2 and toks[t - 2][0] == COLON
                    and toks[t - 1] == (ATOM, b"include")):
                gotincl(flush())
                t -= 2
            continue
        if kind == RIGHT:
            if addr:
                gotaddr(flush())
            while t > 0 and toks[t - 1][0] != LEFT:
                t -= 1
                addr.append(toks[t])
            gotaddr(flush())
            if t <= 0:
                raise ParseError("< missing")
            t -= 1
            while t > 0 and toks[t - 1][0] in _PHRASE:
                t -= 1
            wordok = False
            continue
        if kind in (ATOM, QUOTE, LITERAL):
            if not wordok and addr:
                gotaddr(flush())
            wordok = False
            addr.append(toks[t])
            continue
        if kind == COMMA:
            if addr:
                gotaddr(flush())
            wordok = True
            continue
        wordok = True  # LEFT, AT, DOT
        addr.append(toks[t])
    if addr:
        gotaddr(flush())


def cstr(s: bytes) -> bytes:
    """``s`` up to its first NUL, as C sees a string."""
    nul = s.find(b"\0")
    return s if nul < 0 else s[:nul]


class Controls:
    """control/me, defaultdomain, defaulthost and plusdomain (the last three
    default to me, me to the word ``me``)."""

    def __init__(self, me: bytes, defaultdomain: bytes, defaulthost: bytes, plusdomain: bytes) -> None:
        self.me = me
        self.defaultdomain = defaultdomain
        self.defaulthost = defaulthost
        self.plusdomain = plusdomain


def _readline(name: str) -> bytes | None:
    """control_readline: the first line of ``name`` without trailing blanks, or None."""
    try:
        with open(name, "rb") as f:
            line = f.readline()
    except FileNotFoundError:
        return None
    return line.rstrip(b"\n \t")


def read_controls(fatal: str, home: str) -> Controls:
    """Read the controls under ``home`` as the originals do (chdir there and
    back), dying with their messages: ``unable to chdir to HOME: reason``,
    ``unable to read controls: reason``."""
    from pyqmail.strerr import die

    try:
        here = os.open(".", os.O_RDONLY | os.O_CLOEXEC)
    except OSError as e:
        die(111, fatal, "unable to open current directory: ", exc=e)
    try:
        try:
            os.chdir(home)
        except OSError as e:
            die(111, fatal, "unable to chdir to ", home, ": ", exc=e)
        try:
            me = _readline("control/me")
            if me is None:
                me = b"me"
            values = [_readline("control/" + n) for n in ("defaultdomain", "defaulthost", "plusdomain")]
        except OSError as e:
            die(111, fatal, "unable to read controls: ", exc=e)
        try:
            os.fchdir(here)
        except OSError as e:
            die(111, fatal, "unable to set current directory: ", exc=e)
    finally:
        os.close(here)
    dd, dh, pd = (me if v is None else v for v in values)
    return Controls(me, dd, dh, pd)


def qualify(address: bytes, c: Controls, *, fill_host: bool = True) -> bytes:
    """Complete an address that ends in ``@`` (unless not ``fill_host``) or
    ``+``, or whose domain has no dot, with defaulthost, plusdomain and
    defaultdomain (qmail-header(5))."""
    if fill_host and address.endswith(b"@"):
        address += c.defaulthost
    if address.endswith(b"+"):
        address = address[:-1] + b"." + c.plusdomain
    if b"." not in address[max(address.rfind(b"@"), 0):]:
        address += b"." + c.defaultdomain
    return address
