"""multilog_lines: a read's effect, whatever the reads are cut into.

The original handles a byte at a time, so what each log receives, what goes
to stderr and what ends in a status file cannot depend on where reads end
(only the timing can).  The engine works on whole reads and on blocks of
lines; these tests cut the same input at random places, and at every place,
and check that nothing changes.
"""
from __future__ import annotations

import random

import pytest

from svtools import multilog_match as mm
from svtools.multilog_lines import Lines

STAMP = b"@4000000000000000deadbeef "


def make(script: list[bytes], t: bool) -> Lines:
    actions = []
    ndirs = nstatus = 0
    for a in script:
        c = a[:1]
        if c in (b"+", b"-"):
            actions.append((c.decode(), mm.Pattern(a[1:])))
        elif c == b"e":
            actions.append(("e", None))
        elif c == b"=":
            actions.append(("=", nstatus))
            nstatus += 1
        else:
            actions.append(("d", ndirs))
            ndirs += 1
    return Lines(actions, ndirs, t)


def run(lines: Lines, data: bytes, cuts: list[int]) -> tuple[list[bytes], bytes, dict]:
    outs = [b""] * lines.ndirs
    err = b""
    status: dict[int, bytes] = {}
    for a, b in zip([0, *cuts], [*cuts, len(data)]):
        if b <= a:
            continue
        lines.feed(data[a:b], b"@junk")  # feed alone changes nothing: only take() does
        res = lines.feed(data[a:b], STAMP if lines.flagtimestamp else b"")
        lines.take(res)
        outs = [o + b"".join(p) for o, p in zip(outs, res.outs)]
        err += b"".join(res.err)
        for i, (_, h) in sorted(res.status.items(), key=lambda kv: kv[1][0]):
            status[i] = h
    res = lines.end()
    outs = [o + b"".join(p) for o, p in zip(outs, res.outs)]
    err += b"".join(res.err)
    status.update({i: h for i, (_, h) in res.status.items()})
    return outs, err, status


def sample(rng: random.Random) -> bytes:
    parts = []
    for _ in range(rng.randint(0, 60)):
        n = rng.choice([0, 1, 7, 200, 201, 973, 974, 975, 999, 1000, 1001, 2500])
        parts.append(bytes(rng.choice(b"ab:* \x00") for _ in range(n)))
    data = b"\n".join(parts)
    return data + b"\n" if rng.random() < 0.6 else data


SCRIPTS = [
    [b"./d"],
    [b"e", b"=s", b"./d"],
    [b"-*", b"+*a*", b"./d", b"e", b"=s", b"+*:*", b"-*b", b"./d2", b"e", b"=s2"],
    [b"-a*", b"./d", b"-*", b"=s", b"./none", b"+", b"./empty"],
]


@pytest.mark.parametrize("seed", range(30))
@pytest.mark.parametrize("script", range(len(SCRIPTS)))
@pytest.mark.parametrize("t", [False, True])
def test_cut_anywhere_same_result(seed: int, script: int, t: bool) -> None:
    rng = random.Random(seed * 100 + script)
    data = sample(rng)
    whole = run(make(SCRIPTS[script], t), data, [])
    cuts = sorted(rng.sample(range(len(data) + 1), min(len(data) + 1, rng.randint(1, 40))))
    assert run(make(SCRIPTS[script], t), data, cuts) == whole


def test_byte_at_a_time() -> None:
    rng = random.Random(7)
    data = sample(rng)[:6000]
    for script in SCRIPTS:
        whole = run(make(script, True), data, [])
        assert run(make(script, True), data, list(range(1, len(data)))) == whole


def test_long_line_decided_on_first_1000_bytes() -> None:
    lines = make([b"-*", b"+*MARK*", b"./d", b"e", b"=s"], False)
    data = b"x" * 999 + b"MARK" + b"y" * 5000 + b"\n" + b"MARK" + b"z" * 1500 + b"\n"
    outs, err, status = run(lines, data, [10, 500, 1003, 4000])
    assert outs == [b"MARK" + b"z" * 1500 + b"\n"]
    assert err == b"MARK" + b"z" * 196 + b"...\n"
    assert status == {0: b"MARK" + b"z" * 996}
