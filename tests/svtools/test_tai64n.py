"""tai64n and tai64nlocal against Debian's, byte for byte where the bytes can agree.

tai64nlocal: the same input, under the same TZ, must give the same output and
the same exit (the original dies of SIGSEGV on a label localtime() cannot
take, after writing what it had buffered; we do too).  tai64n: the stamps
differ by nature, so the output is compared with the stamps taken out, the
stamps are checked to be well formed and now, and each program's stamps are
read by the other one's tai64nlocal.
"""
from __future__ import annotations

import os
import random
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.helpers import OURS

TAI = 2**62 + 10
TZS = ("UTC", "Europe/Berlin", "America/New_York", "right/UTC", "Australia/Lord_Howe",
       "Asia/Kolkata")
STAMP = re.compile(rb"@([0-9a-f]{16})([0-9a-f]{8}) ")


def lab(secs: int, nano: int = 0) -> bytes:
    """The label for Unix ``secs`` (wrapped to 64 bits) and ``nano``."""
    return b"@%016x%08x" % ((secs + TAI) & (2**64 - 1), nano)


def run(prog: str, data: bytes | None = None, *, tz: str = "UTC", stdin=None,
        timeout: float = 60) -> tuple[int, bytes, bytes]:
    p = subprocess.run([prog], input=data, stdin=stdin, capture_output=True,
                       env={"TZ": tz, "PATH": "/usr/bin:/bin"}, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def both(ref: Path, name: str, data: bytes, tz: str = "UTC", **kw) -> tuple:
    theirs = run(str(ref / name), data, tz=tz, **kw)
    ours = run(str(OURS / name), data, tz=tz, **kw)
    return theirs, ours


# -- tai64nlocal: byte-identical ----------------------------------------------------

MARK = b"@4000000037c219bf2ef02e94"  # the manual page's example
LOCAL_INPUTS = {
    "manual-example": MARK + b" mark\n",
    "plain-lines": b"hello\nworld\n",
    "empty": b"",
    "empty-lines": b"\n\n\n",
    "no-final-newline": MARK + b" mark",
    "label-cut-by-eof": MARK,
    "label-then-newline": MARK + b"\n",
    "label-then-tab": MARK + b"\tx\n",
    "terminator-is-at": MARK + b"@" + MARK[1:] + b"\n",
    "at-mid-line": b"x " + MARK + b"\n " + MARK + b"\n",
    "lone-at-at-eof": b"line\n@",
    "long-run-keeps-last-24": b"@" + b"0" * 100 + MARK[1:] + b" x\n",
    "run-of-25": b"@3" + MARK[1:] + b" x\n",
    "nanos-above-a-billion": b"@4000000037c219bfffffffff x\n",
    "epoch": lab(0) + b" 1970\n",
    "negative-year": lab(-2**40, 5) + b" old\n" + lab(-2**55) + b" older\n",
    "far-future": lab(2**40, 123) + b" far\n",
    "year-wraps-int": lab(67767976233532799) + b" a\n" + lab(67767976233316800) + b" b\n"
                      + lab(67768036191676799) + b" c\n",
    "crlf-nul-binary": MARK + b" a\r\n" + MARK + b"\0\n\xff\xfe@\x00\n" + MARK + b"\r\n",
    "dst-changes": b"".join(lab(t) + b" x\n" for t in range(1711846800 - 7200, 1711846800 + 7200,
                                                             1800)),
    "leap-second": b"".join(lab(1483228800 + k, k) + b"\n" for k in range(20, 32)),
    "mixed": b"".join([b"start\n", MARK, b" a\n\n", lab(1700000000, 999999999), b"\n", b"x@\xff\n",
                       b"no label here\n", MARK, b"  two spaces\n", lab(1234567890), b"g\n"]),
}


@pytest.mark.parametrize("name", LOCAL_INPUTS)
def test_tai64nlocal_same_bytes(name: str, ref: Path) -> None:
    data = LOCAL_INPUTS[name]
    for tz in TZS:
        theirs, ours = both(ref, "tai64nlocal", data, tz)
        assert ours == theirs, tz
        if tz == "UTC":
            assert ours[0] == 0


def test_tai64nlocal_manual_example() -> None:
    rc, out, err = run(str(OURS / "tai64nlocal"), MARK + b" mark\n",
                       tz="right/America/Los_Angeles")
    assert (rc, out, err) == (0, b"1999-08-23 21:03:43.787492500 mark\n", b"")


@pytest.mark.parametrize("data", [
    pytest.param(b"@\n", id="empty-label"),
    pytest.param(b"@x\n", id="no-digits"),
    pytest.param(b"@1 short\n", id="short-label"),
    pytest.param(MARK.upper() + b" upper-case\n", id="upper-case-hex"),
    pytest.param(b"@ffffffffffffffffffffffff\n", id="all-ones"),
    pytest.param(b"fine\n" + MARK + b" fine\n@0 crash\nnever\n", id="after-good-lines"),
])
def test_tai64nlocal_crashes_like_the_original(data: bytes, ref: Path) -> None:
    """localtime() returns NULL and tai64nlocal.c dereferences it: SIGSEGV, output lost."""
    theirs, ours = both(ref, "tai64nlocal", data)
    assert ours == theirs
    assert ours[0] == -11


def lines(n: int, seed: int, bad_at: int | None = None) -> bytes:
    """``n`` stamped lines of varied length; line ``bad_at`` has a label that crashes."""
    rnd = random.Random(seed)
    out = []
    t = 1_700_000_000 * 10**9
    for i in range(n):
        t += rnd.randrange(10**6)
        text = b"x" * rnd.randrange(0, 300) if rnd.random() < 0.9 else b""
        line = b"@%016x%08x %d %s\n" % (TAI + t // 10**9, t % 10**9, i, text)
        if i == bad_at:
            line = b"@0000" + line[5:]
        elif rnd.random() < 0.05:
            line = line[25:]  # no label
        out.append(line)
    return b"".join(out)


@pytest.mark.parametrize("bad_at", [None, 3, 40, 61, 1000, 2999])
@pytest.mark.parametrize("how", ["file", "pipe"])
def test_tai64nlocal_large_input(bad_at: int | None, how: str, ref: Path,
                                 tmp_path: Path) -> None:
    """Labels across every read boundary; a crash after many buffers of output."""
    data = lines(3000, seed=7, bad_at=bad_at)
    f = tmp_path / "in"
    f.write_bytes(data)
    got = []
    for prog in (ref / "tai64nlocal", OURS / "tai64nlocal"):
        if how == "file":
            with open(f, "rb") as stdin:
                got.append(run(str(prog), stdin=stdin, tz="Europe/Berlin"))
        else:
            p = subprocess.run(["sh", "-c", f'cat "{f}" | "{prog}"'], capture_output=True,
                               env={"TZ": "Europe/Berlin"})
            got.append((p.returncode, p.stdout, p.stderr))
    assert got[1] == got[0]
    if bad_at is None:
        assert got[1][0] == 0 and len(got[1][1]) > len(data)
    else:
        assert got[1][0] in (-11, 139)


def test_tai64nlocal_long_lines_and_runs(ref: Path) -> None:
    """A 1 MB line, a 300 kB hex run then a label's last 24 digits, then more."""
    data = (MARK + b" " + b"y" * 1_000_000 + b"\n" + b"@" + b"f" * 300_000 + MARK[1:] + b" z\n"
            + b"q" * 200_000 + b"\n" + MARK + b" end")
    theirs, ours = both(ref, "tai64nlocal", data, "Asia/Kolkata")
    assert ours == theirs
    assert ours[0] == 0


@pytest.mark.parametrize("seed", range(6))
def test_tai64nlocal_random(seed: int, ref: Path) -> None:
    rnd = random.Random(seed)
    specials = [-2**40, 2**55, -2**55, 67767976233316800, 67767976233532800, 2**33]

    def piece() -> bytes:
        k = rnd.random()
        if k < 0.5:
            return lab(rnd.randrange(0, 2**33), rnd.randrange(2**32))
        if k < 0.6:
            digits = rnd.randrange(20, 30)
            return b"@" + bytes(rnd.choice(b"0123456789abcdef") for _ in range(digits))
        if k < 0.7:
            return lab(rnd.choice(specials) + rnd.randrange(-10**6, 10**6), rnd.randrange(2**32))
        if k < 0.8:
            return lab(1_700_000_000, 5)[:rnd.randrange(1, 25)]
        return bytes(rnd.choice(b"ab@\n \t\x00\xff0f") for _ in range(rnd.randrange(0, 5)))

    for _ in range(15):
        data = b"".join(piece() + rnd.choice([b" x\n", b"\n", b"\t", b"", b"G\n"])
                        for _ in range(rnd.randrange(1, 60)))
        tz = rnd.choice(TZS)
        theirs, ours = both(ref, "tai64nlocal", data, tz)
        assert ours == theirs, (tz, data)


@pytest.mark.parametrize("name", ["tai64nlocal", "tai64n"])
def test_read_error_exits_111(name: str, ref: Path) -> None:
    for prog in (ref / name, OURS / name):
        # stdin open for writing only: read() fails with EBADF.  (A directory on
        # stdin would do for the C programs, but Python refuses to start with one.)
        p = subprocess.run(["sh", "-c", f'"{prog}" 0>/dev/null'], capture_output=True)
        assert (p.returncode, p.stdout, p.stderr) == (111, b"", b""), prog


@pytest.mark.parametrize("name", ["tai64nlocal", "tai64n"])
def test_write_error_exits_111(name: str, ref: Path) -> None:
    for prog in (ref / name, OURS / name):
        p = subprocess.run(["sh", "-c", f'"{prog}" >&-'], input=MARK + b" x\n",
                           capture_output=True)
        assert (p.returncode, p.stderr) == (111, b""), prog


@pytest.mark.parametrize("name", ["tai64nlocal", "tai64n"])
def test_arguments_are_ignored(name: str, ref: Path) -> None:
    outs = []
    for prog in (ref / name, OURS / name):
        p = subprocess.run([str(prog), "-x", "--help", "y"], input=b"plain\n",
                           capture_output=True)
        outs.append((p.returncode, p.stdout[-6:], p.stderr))
    assert outs[0] == outs[1] == (0, b"plain\n", b"")


def converse(prog: str, writes: list[bytes]) -> list[bytes]:
    """Write each piece, then read what the program has written by then (before EOF)."""
    p = subprocess.Popen([prog], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         env={"TZ": "UTC"})
    os.set_blocking(p.stdout.fileno(), False)
    got = []
    try:
        for w in writes:
            p.stdin.write(w)
            p.stdin.flush()
            time.sleep(0.3)
            try:
                got.append(os.read(p.stdout.fileno(), 65536))
            except BlockingIOError:
                got.append(b"")
    finally:
        p.stdin.close()
        p.wait(timeout=10)
        p.stdout.close()
    return got


def test_tai64nlocal_streams(ref: Path) -> None:
    """A line comes out as soon as it is in; a label waits for the byte that ends it."""
    writes = [MARK + b" one\n", MARK[:10], MARK[10:], b" two\n", b"partial", b" line\n"]
    theirs = converse(str(ref / "tai64nlocal"), writes)
    ours = converse(str(OURS / "tai64nlocal"), writes)
    assert ours == theirs
    assert ours[0] == b"1999-08-24 04:04:05.787492500 one\n"
    assert ours[1] == ours[2] == b""


# -- tai64n: the same lines, well-formed stamps of now -------------------------------

def unstamp(out: bytes) -> tuple[bytes, list[tuple[int, int]]]:
    """The output with the stamps taken out, and the stamps (Unix seconds, nanoseconds)."""
    stamps = []
    text = []
    if not out:
        return out, stamps
    for line in out.split(b"\n")[:-1] if out.endswith(b"\n") else out.split(b"\n"):
        m = STAMP.match(line)
        assert m, line[:60]
        stamps.append((int(m[1], 16) - TAI, int(m[2], 16)))
        text.append(line[26:])
    rest = b"\n".join(text) + (b"\n" if out.endswith(b"\n") else b"")
    return rest, stamps


TAI64N_INPUTS = {
    "lines": b"one\ntwo\nthree\n",
    "empty": b"",
    "only-newlines": b"\n\n\n",
    "no-final-newline": b"one\ntwo",
    "binary": b"\0\xff\r\n@4000 already\r\n\t\n",
    "long-line": b"z" * 500_000 + b"\n" + b"short\n",
    "many-lines": b"".join(b"line %d\n" % i for i in range(50_000)),
}


@pytest.mark.parametrize("name", TAI64N_INPUTS)
def test_tai64n_same_lines(name: str, ref: Path) -> None:
    data = TAI64N_INPUTS[name]
    t0 = time.time()
    theirs, ours = both(ref, "tai64n", data)
    t1 = time.time()
    assert ours[0] == theirs[0] == 0 and ours[2] == theirs[2] == b""
    text_t, stamps_t = unstamp(theirs[1])
    text_o, stamps_o = unstamp(ours[1])
    assert text_o == text_t == data
    assert len(stamps_o) == len(stamps_t) == data.count(b"\n") + (not data.endswith(b"\n")) - (
        not data)
    for stamps in (stamps_o, stamps_t):
        assert stamps == sorted(stamps)
        for sec, nano in stamps:
            assert t0 - 1 <= sec + nano / 1e9 <= t1 + 1
            assert nano % 1000 == 500  # gettimeofday's microseconds, plus 500 ns


def test_tai64n_stamps_each_line_when_read(ref: Path) -> None:
    """Lines written apart get stamps apart; each line comes out before the next is in."""
    writes = [b"first\n", b"second\nthird\n", b"fourth part", b" two\n"]
    for prog in (ref / "tai64n", OURS / "tai64n"):
        got = converse(str(prog), writes)
        assert [unstamp(g)[0] for g in got[:2]] == [b"first\n", b"second\nthird\n"], prog
        assert got[2][25:] == b" fourth part" and got[3] == b" two\n", prog
        s = [unstamp(g)[1] for g in got[:3]]
        assert s[0][0] < s[1][0] <= s[1][1] < s[2][0], prog


@pytest.mark.parametrize("stamper, reader", [("ours", "theirs"), ("theirs", "ours")])
def test_tai64n_read_by_the_other_tai64nlocal(stamper: str, reader: str, ref: Path) -> None:
    progs = {"ours": OURS, "theirs": ref}
    data = b"".join(b"line %d\n" % i for i in range(2000)) + b"last"
    rc, stamped, _ = run(str(progs[stamper] / "tai64n"), data)
    assert rc == 0
    for tz in ("UTC", "Europe/Berlin"):
        local = run(str(progs[reader] / "tai64nlocal"), stamped, tz=tz)
        same = run(str(progs[stamper] / "tai64nlocal"), stamped, tz=tz)
        assert local == same
        assert local[0] == 0
        out = local[1].split(b"\n")
        assert len(out) == 2001 and out[-1].endswith(b" last")
        first = re.fullmatch(rb"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)\.(\d{9}) line 0", out[0])
        assert first, out[0]
        if tz == "UTC":  # the stamp is now
            when = time.mktime(time.strptime(first[1].decode(), "%Y-%m-%d %H:%M:%S"))
            assert abs(when - time.mktime(time.gmtime())) < 60


# -- memory stays flat ---------------------------------------------------------------

def peak_rss_kib(prog: str, head: bytes, chunk: bytes, total: int) -> int:
    """Feed ``head`` and ``total`` bytes (``chunk`` repeated) through ``prog``; its peak RSS in KiB.

    ``prog`` is started by a small Python that forks it and reports its
    ru_maxrss: a child of the test process itself would count the test's own
    memory (exec keeps the high-water mark of the process it replaces).
    """
    starter = ("import os, subprocess, sys; p = subprocess.Popen(sys.argv[1:]); "
               "_, st, ru = os.wait4(p.pid, 0); "
               "print(os.waitstatus_to_exitcode(st), ru.ru_maxrss, file=sys.stderr)")
    p = subprocess.Popen([sys.executable, "-c", starter, prog], stdin=subprocess.PIPE,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={"TZ": "UTC"})

    def feed() -> None:
        try:
            p.stdin.write(head)
            for _ in range(total // len(chunk)):
                p.stdin.write(chunk)
        finally:
            p.stdin.close()
    t = threading.Thread(target=feed)
    t.start()
    report = p.stderr.read()
    t.join()
    p.stderr.close()
    assert p.wait() == 0
    rc, maxrss = map(int, report.split())
    assert rc == 0, report
    return maxrss


@pytest.mark.parametrize("name, head, chunk", [
    ("tai64n", b"", b"a" * 65536),  # one 64 MB line
    ("tai64n", b"", b"a line of text\n" * 4000),
    ("tai64nlocal", b"", b"a" * 65536),
    ("tai64nlocal", b"@", b"4" * 65536),  # one label of 64 MB of digits, cut by the end
    ("tai64nlocal", b"", (MARK + b" a line of text\n") * 1600),
])
def test_memory_is_flat(name: str, head: bytes, chunk: bytes) -> None:
    small = peak_rss_kib(ours_path(name), head, chunk, 1 << 20)
    big = peak_rss_kib(ours_path(name), head, chunk, 64 << 20)
    assert big < small + 4096, (small, big)


def ours_path(name: str) -> str:
    return str(OURS / name)
