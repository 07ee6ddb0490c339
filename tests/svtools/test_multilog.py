"""multilog against Debian's C original: same script, same input, same files.

Each case runs the C multilog and ours on the same input (a file on stdin)
and compares the exit code, stderr and everything left in the working
directory: log directories, old logs in time order, modes, contents, status
files, with TAI64N stamps masked (see multilog_util).
"""
from __future__ import annotations

import random
from pathlib import Path

import pytest

from tests.svtools.multilog_util import diff, lines_of, run_both

PROC = "cat <&4 >&5; echo run >&5; tr a-z A-Z; echo end"


def levels(n: int) -> bytes:
    """Lines where every 7th has level=error, some trick the no-backtracking star."""
    out = []
    for i in range(n):
        if i % 7 == 0:
            out.append(b"ts=%d level=error msg=bad thing %d" % (i, i))
        elif i % 7 == 3:
            out.append(b"lalala level=error %d (first l is not level: no match)" % i)
        elif i % 11 == 0:
            out.append(b"ts=%d level=warn msg=careful fatal: %d" % (i, i))
        else:
            out.append(b"ts=%d level=info msg=fine %d" % (i, i))
    return b"\n".join(out) + b"\n"


def long_lines() -> bytes:
    return b"".join([
        b"a" * 998 + b"\n", b"b" * 999 + b"\n", b"c" * 1000 + b"\n", b"d" * 1001 + b"\n",
        b"e" * 973 + b"\n", b"f" * 974 + b"\n", b"g" * 975 + b"\n",
        b"x" * 1200 + b"MARK after the first 1000 bytes\n",
        b"MARK at the start " + b"y" * 3000 + b"\n",
        b"z" * 5000 + b"\n", b"short\n", b"w" * 70000 + b"\n",
    ])


CASES: dict[str, tuple[list[str], bytes]] = {
    "plain": (["./main"], lines_of(100)),
    "timestamp, empty lines": (["t", "./main"], lines_of(50) + b"\n\n" + lines_of(3)),
    "tfoo first is t": (["tfoo", "./main"], lines_of(5)),
    "t not first is ignored": (["./main", "t"], lines_of(5)),
    "unknown actions ignored": (["x", "ignored", "./main", "zz"], lines_of(5)),
    "no final newline": (["t", "./main"], b"one\ntwo\nthree without newline"),
    "no final newline, no t": (["./main"], b"x" * 5000),
    "empty input": (["t", "./main"], b""),
    "NUL bytes": (["t", "=st", "./main"], b"a\0b\n\0\n\0\0\0" + b"\0" * 2000 + b"\nend\0"),
    "rotation s4096": (["s4096", "./main"], lines_of(2000)),
    "rotation t s4096 n3": (["t", "s4096", "n3", "./main"], lines_of(3000, 40)),
    "n1 means 2": (["s4096", "n1", "./main"], lines_of(1500)),
    "s1 means 4096": (["s1", "n20", "./main"], lines_of(1000)),
    "s without digits": (["s", "n20", "./main"], lines_of(1000)),
    "default size 99999": (["./main"], lines_of(6000, 100)),
    "lines around the buffer": (["t", "s4096", "./main"],
                                b"".join(b"q" * n + b"\n" for n in range(480, 530)) * 8),
    "only newlines with t": (["t", "s4096", "n5", "./main"], b"\n" * 6000),
    "long lines": (["t", "s5000", "n30", "./main"], long_lines()),
    "long lines, patterns see 1000 bytes": (["-*", "+*MARK*", "./mark", "-*", "+c*", "./c",
                                             "-*", "+*", "-*y", "./y"], long_lines()),
    "huge line": (["s4096", "n4", "./main"], b"start\n" + b"h" * 3_000_000 + b"\nend\n"),
    "huge line with t, several sizes": (["t", "n50", "./a", "s4096", "./b", "s7000", "./c"],
                                        b"L" * 300_000 + b"\n" + lines_of(200) + b"M" * 200_000),
    "processor": (["s4096", "n3", "!" + PROC, "./main"], lines_of(500)),
    "empty processor": (["s4096", "!", "./main"], lines_of(300)),
    "selection": (["-*", "+*level=error*", "./main"], levels(3000)),
    "selection with t": (["t", "-*", "+* level=error*", "./main"], levels(3000)),
    "selection per dir": (["./all", "-*", "+*error*", "./err", "+*warn*", "-*lalala*", "./warn",
                           "-*", "./none", "+", "./emptylines"], levels(2000) + b"\n\n"),
    "pattern forms": (["-*", "+**", "./star", "-*", "+ts=1*", "./ts1", "-*", "+*=*=*", "./two",
                       "-*", "+*fine 7", "./exact", "-*", "+*]*", "./bracket"],
                      levels(300) + b"a*b\n]x\n*\n**\n"),
    "alerts": (["e", "-*", "+*fatal*", "e", "./main"],
               levels(200) + b"fatal: " + b"k" * 300 + b"\nfatal: short\n"),
    "status files": (["=st1", "-*", "+*level=warn*", "=st2", "e", "=st3", "./main"], levels(500)),
    "status file twice": (["=st", "-*a*", "=st", "./main"], b"abc\nxyz\nqqq\n"),
    "status with a long line": (["t", "=st", "./main"], b"x" * 5000 + b"\n"),
    "several dirs, settings in order": (["t", "s5000", "n3", "./a", "s6000", "n4", "!tr a-z A-Z",
                                         "./b", "!", "s4096", "./c"], lines_of(1500)),
    "no actions": ([], lines_of(10)),
    "size above the maximum": (["s99999999", "n2", "./main"], lines_of(290_000, 60)),
}


@pytest.mark.parametrize("name", list(CASES))
def test_same_as_c(name: str, ref: Path, tmp_path: Path) -> None:
    script, data = CASES[name]
    c, o = run_both(ref, script, data, tmp_path)
    assert not diff(c, o), diff(c, o)


ERRORS: dict[str, tuple[list[str], object]] = {
    "same dir twice": (["./a", "./a"], None),
    "missing parent": (["./nope/sub"], None),
    "dir is a file": (["./f"], lambda d: (d / "f").write_bytes(b"")),
    "status in a missing dir": (["=nope/st", "./a"], None),
    "status is a directory": (["=sub"], lambda d: (d / "sub").mkdir()),
    "status error comes before dirs": (["./nope/sub", "=nope/st"], None),
}


@pytest.mark.parametrize("name", list(ERRORS))
def test_errors_same_as_c(name: str, ref: Path, tmp_path: Path) -> None:
    script, setup = ERRORS[name]
    c, o = run_both(ref, script, b"data\n", tmp_path, setup=setup)
    assert c.rc == 111
    assert not diff(c, o), diff(c, o)


def _state(files: dict[str, tuple[bytes, int]]):
    def setup(d: Path) -> None:
        (d / "log").mkdir(mode=0o700)
        for name, (data, mode) in files.items():
            p = d / "log" / name
            p.write_bytes(data)
            p.chmod(mode)
    return setup


#: what a log directory can look like after a crash, and what restarting does with it
CRASHED = {
    "current unfinished (644)": {"current": (b"cut off\n", 0o644), "state": (b"", 0o644)},
    "current finished (744): appended to": {"current": (b"old\n", 0o744), "state": (b"", 0o644)},
    "current 744 bigger than the size": {"current": (b"o" * 9000 + b"\n", 0o744),
                                         "state": (b"st\n", 0o644)},
    "processor interrupted": {"current": (b"c\n", 0o644), "previous": (b"p\n", 0o744),
                              "processed": (b"half", 0o644), "state": (b"s", 0o644),
                              "newstate": (b"ns", 0o644)},
    "processor done, not renamed": {"current": (b"c\n", 0o644), "previous": (b"p\n", 0o744),
                                    "processed": (b"P\n", 0o744), "newstate": (b"ns", 0o644)},
    "too many old logs": {f"@40000000{i:016x}.s": (b"%d\n" % i, 0o744) for i in range(12)}
    | {"current": (b"c\n", 0o644)},
    "odd names in the directory": {"@z": (b"", 0o644), "@zzzzzzzzzzzzzzzzzzzzzzzzzzz": (b"", 0o644),
                                   "@400000000000000000000000.s": (b"x\n", 0o744),
                                   "@4000000000000000000000001.u": (b"y\n", 0o744),
                                   "current": (b"c\n", 0o644)},
}


@pytest.mark.parametrize("name", list(CRASHED))
def test_restart_after_crash_same_as_c(name: str, ref: Path, tmp_path: Path) -> None:
    c, o = run_both(ref, ["s4096", "n3", "!" + PROC, "./log"], lines_of(150),
                    tmp_path, setup=_state(CRASHED[name]))
    assert not diff(c, o), diff(c, o)


def test_absolute_path(ref: Path, tmp_path: Path) -> None:
    """A log named by absolute path: the C run's and ours, each in its own place."""
    from tests.svtools.multilog_util import prog, run_in

    runs = [run_in(prog(impl, ref), ["t", "s4096", str(tmp_path / impl / "log")],
                   lines_of(500), tmp_path / impl) for impl in ("C", "ours")]
    assert {"log/", "log/current", "log/@1.s"} <= runs[0].files.keys()
    assert not diff(*runs), diff(*runs)


def _random_input(rng: random.Random) -> bytes:
    kind = rng.randrange(4)
    if kind == 0:
        base = rng.choice([485, 486, 511, 512, 513, 973, 974, 999, 1000, 1001, 1023, 1025, 60])
        lens = [base + rng.randint(-1, 1) for _ in range(rng.randint(10, 2500))]
    elif kind == 1:
        lens = [rng.choice([0, 1, 2, 511, 512, 999, 1000, 1001, 5000])
                for _ in range(rng.randint(50, 3000))]
    elif kind == 2:
        lens = [rng.choice([1, 3000, 70000, 300000]) for _ in range(rng.randint(1, 10))]
    else:
        lens = [rng.randint(0, 2100) for _ in range(rng.randint(10, 1500))]
    chars = b"abcxyz :*]l=error\0"
    parts = []
    for n in lens:
        seed = bytes(rng.choice(chars) for _ in range(min(n, 48)))
        parts.append((seed * (n // 48 + 1))[:n])
    data = b"\n".join(parts)
    return data + b"\n" if rng.random() < 0.7 else data


def _random_script(rng: random.Random) -> list[str]:
    script = ["t"] if rng.random() < 0.5 else []
    # with t a pattern sees the hex stamp, which differs between two runs: keep clear of it
    pats = ["*", "**", "*l=error*", "l*", "", "*:*", "*x*z", "* *", "*]*", "*z", "*:*a*"]
    for k in range(rng.randint(1, 3)):
        for _ in range(rng.randint(0, 3)):
            r = rng.random()
            if r < 0.35:
                script.append(rng.choice("+-") + rng.choice(pats))
            elif r < 0.6:
                script.append(f"s{rng.choice([4096, 4500, 5000, 6000, 9999, 20000])}")
            elif r < 0.7:
                script.append(f"n{rng.choice([2, 3, 5])}")
            elif r < 0.8:
                script.append("e")
            else:
                script.append(f"=st{rng.randint(0, 2)}")
        script.append(f"./d{k}")
    return script


@pytest.mark.parametrize("seed", range(24))
def test_random_scripts_same_as_c(seed: int, ref: Path, tmp_path: Path) -> None:
    """Random inputs (line lengths around every boundary) and scripts, seeded."""
    rng = random.Random(seed)
    data = _random_input(rng)
    script = _random_script(rng)
    c, o = run_both(ref, script, data, tmp_path)
    assert not diff(c, o), f"script {script}, {len(data)} bytes\n" + diff(c, o)
