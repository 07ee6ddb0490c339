"""Sendmail-style address lines, as newaliases, newinclude and dot-forward read them.

These programs tokenize a line as an RFC 822 header with qmail's token822
(:mod:`mta.token822`, which qmail-inject uses too: atoms, quoted strings,
domain literals, comments, specials) and walk the tokens from right to left,
cutting them into addresses at commas, at ``<...>`` and between two words;
:func:`walk` is that walk, simpler than qmail-inject's (no groups, and
``:include:`` understood).  newaliases' alias name is simply the leftmost
"address" of its line, which is why a missing colon does not matter to it.
:func:`read_controls` and :func:`qualify` give addresses without a full
domain the defaulthost, plusdomain and defaultdomain of qmail-header(5).

Everything is bytes; a line that does not tokenize, or a ``<`` without its
``>``, raises :class:`ParseError`.
"""
from __future__ import annotations

import os

from mta import token822 as tk
from pyqmail import control

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable

    from mta.token822 import Token

_PHRASE = (tk.COMMENT, tk.ATOM, tk.QUOTE, tk.AT, tk.DOT)


class ParseError(ValueError):
    """The line cannot be tokenized or an address list in it is malformed."""


def tokenize(line: bytes) -> list[Token]:
    """The tokens of ``line`` (:func:`mta.token822.parse`); :class:`ParseError`
    if it has an unbalanced ``)`` or ``]``, or an unterminated comment, quote
    or literal."""
    toks = tk.parse(line)
    if toks is None:
        raise ParseError("unbalanced")
    return toks


def has_at(toks: list[Token]) -> bool:
    """True if an unquoted ``@`` is among the tokens."""
    return any(kind == tk.AT for kind, _ in toks)


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
        if kind in (tk.SEMI, tk.COMMENT):
            continue
        if kind == tk.COLON:
            if (gotincl is not None and t >= 2 and toks[t - 2][0] == tk.COLON
                    and toks[t - 1] == (tk.ATOM, b"include")):
                gotincl(flush())
                t -= 2
            continue
        if kind == tk.RIGHT:
            if addr:
                gotaddr(flush())
            while t > 0 and toks[t - 1][0] != tk.LEFT:
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
        if kind in (tk.ATOM, tk.QUOTE, tk.LITERAL):
            if not wordok and addr:
                gotaddr(flush())
            wordok = False
            addr.append(toks[t])
            continue
        if kind == tk.COMMA:
            if addr:
                gotaddr(flush())
            wordok = True
            continue
        wordok = True  # < @ .
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


def read_controls(fatal: str, home: str, *, environ: bool = False) -> Controls:
    """Read the controls under ``home`` as the originals do (chdir there and
    back), dying with their messages: ``unable to chdir to HOME: reason``,
    ``unable to read controls: reason``.  With ``environ`` (newinclude),
    ``$QMAILDEFAULTDOMAIN``, ``$QMAILDEFAULTHOST`` and ``$QMAILPLUSDOMAIN``,
    when set, win over the files."""
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
            me = control.firstline("control/me")
            if me is None:
                me = b"me"
            values = []
            for name in ("defaultdomain", "defaulthost", "plusdomain"):
                value = control.firstline("control/" + name)
                if environ:
                    value = os.environb.get(b"QMAIL" + name.upper().encode(), value)
                values.append(me if value is None else value)
        except OSError as e:
            die(111, fatal, "unable to read controls: ", exc=e)
        try:
            os.fchdir(here)
        except OSError as e:
            die(111, fatal, "unable to set current directory: ", exc=e)
    finally:
        os.close(here)
    return Controls(me, *values)


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
