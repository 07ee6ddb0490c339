"""multilog's patterns and line selection, on one line or on a block of lines at once.

A pattern is matched the way daemontools' ``match()`` does it, against the
first 1000 bytes of a line (timestamp included): a non-star matches itself;
a star followed by ``c`` skips to the FIRST ``c`` (there is no backtracking,
so ``*c`` never looks past it); a star at the end matches anything.  Because
the skip is deterministic, each pattern becomes a regular expression with the
same single path, ``[^c\\n]*`` for ``*c`` (with a look-ahead when ``c`` is
itself a star, which the next round treats as a wildcard).

For speed a block of complete lines is handled in one go: the lines that can
match are found by searching for the pattern's longest literal run (or, when
that run is common, by one regex pass over every line start), and only those
lines are checked.  Selection is then set algebra on line starts: ``-p`` takes
the lines matching ``p`` away, ``+p`` adds them, and every ``e``, ``=`` and
directory action sees the selection as it stands at its place in the script.
"""
from __future__ import annotations

import re

#: multilog looks at no more than this many bytes of a line
HEAD = 1000

#: ``Pattern.kind``: matches every line, no line, or depends on the line
ALL, NEVER, SOME = "all", "never", "some"

#: a selection: ``(complement, starts)``; every line when complement is true
#: and starts is empty, no line when both are false/empty
Selection = tuple  # (bool, frozenset | set)
EVERY: Selection = (True, frozenset())
NONE: Selection = (False, frozenset())

#: more candidate lines than this per KiB and the regex pass is cheaper
_DENSE = 4.0


def translate(pattern: bytes) -> tuple[bytes, bool]:
    """The regex for ``pattern`` (matching from a line start) and whether it ends in a star."""
    out = []
    n = len(pattern)
    i = 0
    while i < n:
        c = pattern[i:i + 1]
        if c == b"*":
            if i + 1 == n:
                return b"".join(out), True
            nxt = pattern[i + 1:i + 2]
            if nxt == b"*":
                out.append(rb"[^*\n]*(?=\*)")
            else:
                out.append(b"[^" + re.escape(nxt) + rb"\n]*")
        else:
            out.append(re.escape(c))
        i += 1
    return b"".join(out), False


class Pattern:
    """One ``+pattern`` or ``-pattern``, compiled."""

    def __init__(self, text: bytes) -> None:
        self.text = text
        self.kind = SOME
        self.dense = False
        if text == b"*":
            self.kind = ALL
        elif b"\n" in text:  # a line never holds a newline
            self.kind = NEVER
        core, self.trailing = translate(text)
        self.rx = re.compile(core)
        self.rx_nl = re.compile(b"\n" + core)
        runs = [r for r in text.split(b"*") if r]
        self.anchor = max(runs, key=len) if runs else (b"*" if len(text) > 1 else b"")

    def match(self, head: bytes) -> bool:
        """Does the pattern match ``head`` (a line's first 1000 bytes, no newline)?"""
        if self.kind is not SOME:
            return self.kind is ALL
        if self.trailing:
            return self.rx.match(head) is not None
        return self.rx.fullmatch(head) is not None

    def block(self, T: bytes, a: int, b: int, ends: dict[int, int]) -> set[int] | str:
        """Starts of the lines of ``T[a:b]`` (whole lines) that match; ALL for ``*``.

        Records each matching line's newline position in ``ends``.
        """
        if self.kind is ALL:
            return ALL
        if self.kind is NEVER:
            return set()
        if self.dense or not self.anchor:
            return self._by_regex(T, a, b, ends)
        return self._by_anchor(T, a, b, ends)

    def _by_anchor(self, T: bytes, a: int, b: int, ends: dict[int, int]) -> set[int]:
        found: set[int] = set()
        anchor = self.anchor
        find, rfind = T.find, T.rfind
        test = self.rx.match if self.trailing else self.rx.fullmatch
        candidates = 0
        k = find(anchor, a, b)
        while k >= 0:
            candidates += 1
            r = rfind(b"\n", a, k)
            ls = a if r < 0 else r + 1
            le = find(b"\n", k, b)
            if test(T, ls, le if le - ls <= HEAD else ls + HEAD) is not None:
                found.add(ls)
                ends[ls] = le
            k = find(anchor, le + 1, b)
        if candidates * 1024 > _DENSE * (b - a) and b - a > 8192:
            self.dense = True
        return found

    def _by_regex(self, T: bytes, a: int, b: int, ends: dict[int, int]) -> set[int]:
        """Try the pattern at every line start: one C-speed pass over the block."""
        found: set[int] = set()
        find = T.find
        trailing = self.trailing
        le = find(b"\n", a, b)
        if self._check(T, a, self.rx.match(T, a, le if le - a <= HEAD else a + HEAD), le):
            found.add(a)
            ends[a] = le
        for m in self.rx_nl.finditer(T, le, b - 1):  # the last newline starts no line
            ls = m.start() + 1
            e = m.end()
            if e - ls > HEAD:
                continue
            if trailing or T[e] == 10 or e - ls == HEAD:
                found.add(ls)
                ends[ls] = find(b"\n", e, b)
        return found

    def _check(self, T: bytes, ls: int, m: re.Match | None, le: int) -> bool:
        if m is None:
            return False
        e = m.end()
        return self.trailing or e == le or e - ls == HEAD


def apply(sel: Selection, sign: str, matched: set[int] | str) -> Selection:
    """The selection after ``+`` (sign ``"+"``) or ``-`` with the lines ``matched``."""
    comp, starts = sel
    if matched is ALL:
        return EVERY if sign == "+" else NONE
    if sign == "+":
        return (True, starts - matched) if comp else (False, starts | matched)
    return (True, starts | matched) if comp else (False, starts - matched)


def needed(sel: Selection, sign: str) -> bool:
    """False where the action cannot change the selection (all in for +, none for -)."""
    comp, starts = sel
    if starts:
        return True
    return not comp if sign == "+" else comp


def lines(sel: Selection, T: bytes, a: int, b: int, ends: dict[int, int]):
    """Yield ``(start, newline position)`` of each selected line of ``T[a:b]`` in order."""
    comp, starts = sel
    if not comp:
        for s in sorted(starts):
            yield s, ends[s]
        return
    find = T.find
    s = a
    while s < b:
        le = find(b"\n", s, b)
        if s not in starts:
            yield s, le
        s = le + 1


def pieces(sel: Selection, T: bytes, a: int, b: int, ends: dict[int, int]) -> list:
    """The selected lines of ``T[a:b]``, newlines included, as a few slices."""
    comp, starts = sel
    if not starts:
        return [T[a:b]] if comp else []
    if not comp:
        return [T[s:ends[s] + 1] for s in sorted(starts)]
    out = []
    prev = a
    for s in sorted(starts):
        if s > prev:
            out.append(T[prev:s])
        prev = ends[s] + 1
    if prev < b:
        out.append(T[prev:b])
    return out


def last(sel: Selection, T: bytes, a: int, b: int, ends: dict[int, int]) -> tuple[int, int] | None:
    """``(start, newline position)`` of the last selected line, or None."""
    comp, starts = sel
    if not comp:
        if not starts:
            return None
        s = max(starts)
        return s, ends[s]
    rfind = T.rfind
    le = b - 1
    while le >= a:
        r = rfind(b"\n", a, le)
        s = a if r < 0 else r + 1
        if s not in starts:
            return s, le
        le = s - 1
    return None
