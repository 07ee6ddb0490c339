"""multilog_match: patterns as daemontools' match() reads them, on a line and on a block."""
from __future__ import annotations

import itertools
import random

import pytest

from svtools import multilog_match as mm


def djb_match(pattern: bytes, buf: bytes) -> bool:
    """daemontools' match(), written out a byte at a time: the oracle."""
    i = j = 0
    while True:
        if i == len(pattern):
            return j == len(buf)
        ch = pattern[i]
        i += 1
        if ch == 42:  # '*'
            if i == len(pattern):
                return True
            nxt = pattern[i]
            while True:
                if j == len(buf):
                    return False
                if buf[j] == nxt:
                    break
                j += 1
            continue
        if j == len(buf) or buf[j] != ch:
            return False
        j += 1


EXAMPLES = [
    (b"hello", b"hello", True),
    (b"hello", b"hello world", False),  # the manual's examples
    (b"named[*]: Cleaned cache *", b"named[135]: Cleaned cache of 3121 RRs", True),
    (b"*", b"anything", True),
    (b"*", b"", True),
    (b"", b"", True),
    (b"", b"x", False),
    (b"*level=error*", b"ts=1 level=error x", True),
    (b"*level=error*", b"lalala level=error", False),  # * stops at the FIRST l
    (b"* fatal: *", b"@400000003b4a39c23294b13c fatal: out of memory", True),
    (b"**", b"a*b", True),
    (b"**", b"ab", False),
    (b"*a", b"bba", True),
    (b"*a", b"baa", False),  # no backtracking: the star stops at the first a
    (b"a*", b"a", True),
    (b"*]*", b"x]", True),
    (b"a\nb", b"a\nb", False),  # a line holds no newline, so neither can a match
]


@pytest.mark.parametrize("pattern,line,expected", EXAMPLES)
def test_examples(pattern: bytes, line: bytes, expected: bool) -> None:
    if b"\n" not in line:
        assert djb_match(pattern, line) is expected
    assert mm.Pattern(pattern).match(line) is expected


def test_every_short_pattern_against_every_short_line() -> None:
    """Exhaustive over a small alphabet: the regex path is match()'s path."""
    alphabet = b"ab*^]\\"
    lines = [bytes(t) for n in range(5) for t in itertools.product(b"ab*]^", repeat=n)]
    for n in range(5):
        for t in itertools.product(alphabet, repeat=n):
            pattern = bytes(t)
            p = mm.Pattern(pattern)
            for line in lines:
                assert p.match(line) is djb_match(pattern, line), (pattern, line)


def _block(rng: random.Random) -> list[bytes]:
    out = []
    for _ in range(rng.randint(1, 400)):
        n = rng.choice([0, 1, 5, 30, 200, 999, 1000, 1001, 1500, rng.randint(0, 3000)])
        seed = bytes(rng.choice(b"abc*:] \x00") for _ in range(12))
        out.append((seed * (n // 12 + 1))[:n])
    return out


@pytest.mark.parametrize("seed", range(40))
def test_block_agrees_with_line_by_line(seed: int) -> None:
    """Block matching (by anchor and by regex) = match() on each line's first 1000 bytes."""
    rng = random.Random(seed)
    lines = _block(rng)
    pre = b"junk before\n" if seed % 2 else b""
    T = pre + b"".join(line + b"\n" for line in lines) + b"junk after"
    a, b = len(pre), len(T) - len(b"junk after")
    starts = []
    s = a
    for line in lines:
        starts.append(s)
        s += len(line) + 1
    for pattern in [b"*", b"", b"a*", b"*a", b"*b*", b"**", b"*:*]*", b"ab*", b"*c", b"c*c*c",
                    b"*a*b*c*", b"* *", bytes(rng.choice(b"ab*:") for _ in range(4))]:
        expect = {st for st, line in zip(starts, lines) if djb_match(pattern, line[:1000])}
        for dense in (False, True):
            p = mm.Pattern(pattern)
            p.dense = dense
            ends: dict[int, int] = {}
            got = p.block(T, a, b, ends)
            if got is mm.ALL:
                assert set(starts) == expect
                continue
            assert got == expect, (pattern, dense)
            assert all(ends[st] == T.find(b"\n", st) for st in got)


def test_selection_algebra() -> None:
    """+ adds, - takes away; snapshots give the lines in order, the last, and the pieces."""
    T = b"aa\nbb\ncc\ndd\n"
    starts = [0, 3, 6, 9]
    ends = {s: s + 2 for s in starts}
    sel = mm.apply(mm.EVERY, "-", {3, 6})
    assert list(mm.lines(sel, T, 0, len(T), ends)) == [(0, 2), (9, 11)]
    assert b"".join(mm.pieces(sel, T, 0, len(T), ends)) == b"aa\ndd\n"
    assert mm.last(sel, T, 0, len(T), ends) == (9, 11)
    sel = mm.apply(sel, "-", mm.ALL)
    assert sel == mm.NONE and mm.last(sel, T, 0, len(T), ends) is None
    sel = mm.apply(sel, "+", {6})
    assert b"".join(mm.pieces(sel, T, 0, len(T), ends)) == b"cc\n"
    assert not mm.needed(mm.EVERY, "+") and not mm.needed(mm.NONE, "-")
    assert mm.needed(sel, "+") and mm.needed(sel, "-")
