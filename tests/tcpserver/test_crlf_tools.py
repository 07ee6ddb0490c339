"""addcr, delcr, fixcrio, recordio and argv0: ours and Debian's on the same input.

Every case runs our program and the C original with the very same argv (after
argv[0]), environment and input, and compares stdout and stderr byte for byte
(recordio's pids masked) and the exit code.  A few literal expectations per
program make sure a case cannot pass by both sides doing nothing.
"""
from __future__ import annotations

import os
import random
import re
import select
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers import OURS


@dataclass
class Run:
    """What one command did, in bytes."""

    rc: int
    out: bytes
    err: bytes


def run(prog: str, args: list[str], input: bytes = b"", **kw) -> Run:
    p = subprocess.run([prog, *args], input=input, capture_output=True, timeout=30, **kw)
    return Run(p.returncode, p.stdout, p.stderr)


def both(ref: Path, name: str, args: list[str], input: bytes = b"", **kw) -> Run:
    """Run ours and Debian's ``name``; assert they agree; return ours."""
    mine = run(str(OURS / name), args, input, **kw)
    theirs = run(str(ref / name), args, input, **kw)
    assert mine == theirs
    return mine


def _mixed(n: int, seed: int) -> bytes:
    """``n`` bytes thick with CRs and LFs, so reads split them every way."""
    rnd = random.Random(seed)
    return bytes(rnd.choice(b"\r\n\r\nab\x00\xff") for _ in range(n))


CR_INPUTS = [
    b"",
    b"a",
    b"a\n",
    b"a\r\n",
    b"a\r",
    b"\r",
    b"\n",
    b"\r\r\n",
    b"\r\n\r\n",
    b"a\n\r\nb\r",
    b"line one\nline two\r\nthree\r\r\n\n\rfour",
    b"\x00\xff\r\x00\n",
    b"x" * 100_000 + b"\r\n" + b"y" * 100_000 + b"\n",
    _mixed(300_000, 1),
]


# -- addcr and delcr ----------------------------------------------------------

@pytest.mark.parametrize("data", CR_INPUTS, ids=range(len(CR_INPUTS)))
@pytest.mark.parametrize("name", ["addcr", "delcr"])
def test_filters_match_debian(ref, name, data):
    r = both(ref, name, [], data)
    assert r.rc == 0 and r.err == b""
    if name == "addcr":
        assert r.out == data.replace(b"\n", b"\r\n")
    else:
        assert r.out == data.replace(b"\r\n", b"\n")


def test_literal_semantics(ref):
    assert both(ref, "addcr", [], b"a\nb").out == b"a\r\nb"
    # delcr: only a CR before an LF goes, a final lone CR stays
    assert both(ref, "delcr", [], b"a\r\nb\rc\r\r\nd\r").out == b"a\nb\rc\r\nd\r"
    # arguments are ignored
    assert both(ref, "addcr", ["-x", "y"], b"q\n").out == b"q\r\n"


def _read_some(fd: int, want: bytes, timeout: float = 10.0) -> bytes:
    """Read from ``fd`` until ``want`` has arrived (or the deadline passes)."""
    got = b""
    deadline = time.monotonic() + timeout
    while got != want and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        if ready:
            chunk = os.read(fd, 100)
            if not chunk:
                break
            got += chunk
    return got


@pytest.mark.parametrize("side", ["ours", "theirs"])
def test_delcr_cr_at_end_of_a_read(ref, side):
    """A CR that ends one read and the LF that starts the next are one line end."""
    prog = str((OURS if side == "ours" else ref) / "delcr")
    p = subprocess.Popen([prog], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        p.stdin.write(b"a\r")
        p.stdin.flush()
        # "a" comes out only once that read is done; the CR waits for what follows
        assert _read_some(p.stdout.fileno(), b"a") == b"a"
        p.stdin.write(b"\nb\r")
        p.stdin.close()
        rest = p.stdout.read()
        assert p.wait(10) == 0
    finally:
        p.kill()
        p.wait()
        p.stdout.close()
    assert rest == b"\nb\r"


@pytest.mark.parametrize("name", ["addcr", "delcr"])
def test_read_error_is_111(ref, tmp_path, name):
    # read() of a write-only descriptor: EBADF (a directory, EISDIR, would do
    # too, but Python refuses to start with a directory on stdin)
    fd = os.open(tmp_path / "f", os.O_WRONLY | os.O_CREAT)
    try:
        r = both(ref, name, [], stdin=fd, input=None)
    finally:
        os.close(fd)
    assert (r.rc, r.out, r.err) == (111, b"", b"")


@pytest.mark.parametrize("name", ["addcr", "delcr"])
def test_write_error_is_111(ref, name):
    fd = os.open("/dev/null", os.O_RDONLY)  # write(): EBADF
    try:
        mine = subprocess.run([str(OURS / name)], input=b"a\r\nb\n", stdout=fd,
                              stderr=subprocess.PIPE, timeout=30)
        theirs = subprocess.run([str(ref / name)], input=b"a\r\nb\n", stdout=fd,
                                stderr=subprocess.PIPE, timeout=30)
    finally:
        os.close(fd)
    assert (mine.returncode, mine.stderr) == (theirs.returncode, theirs.stderr) == (111, b"")


# -- fixcrio ------------------------------------------------------------------

FIX_INPUTS = [
    b"",
    b"a\nb\r\nc\r\r\nd",
    b"\n\n\r\n",
    b"x" * 255 + b"\r" + b"\n" + b"y" * 300 + b"\n",  # a CR and its LF in two reads
    _mixed(5000, 2),
]


@pytest.mark.parametrize("data", FIX_INPUTS, ids=range(len(FIX_INPUTS)))
def test_fixcrio_both_ways(ref, data):
    # the program gets the input with CRs added and prints it back with bare
    # LFs of its own, which get theirs on the way out
    script = 'cat; printf "out\\nmore\\r\\nend\\n"; exit 3'
    r = both(ref, "fixcrio", ["sh", "-c", script], data)
    assert r.rc == 3 and r.err == b""
    fixed = data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    assert r.out == fixed + b"out\r\nmore\r\nend\r\n"


def test_fixcrio_program_sees_crlf(ref):
    r = both(ref, "fixcrio", ["od", "-An", "-c"], b"a\nb\r\n")
    assert b"a  \\r  \\n   b  \\r  \\n" in r.out


# -- recordio -----------------------------------------------------------------

def masked(err: bytes) -> bytes:
    return re.sub(rb"(?m)^\d+ ", b"PID ", err)


def both_recordio(ref: Path, args: list[str], input: bytes) -> Run:
    mine = run(str(OURS / "recordio"), args, input)
    theirs = run(str(ref / "recordio"), args, input)
    assert (mine.rc, mine.out, masked(mine.err)) == (theirs.rc, theirs.out, masked(theirs.err))
    return mine


def test_recordio_lines(ref):
    r = both_recordio(ref, ["sort"], b"pear\napple\nfig")
    assert r.out == b"apple\nfig\npear\n"
    assert masked(r.err) == (b"PID < pear \nPID < apple \nPID < fig+\nPID < [EOF]\n"
                             b"PID > apple \nPID > fig \nPID > pear \nPID > [EOF]\n")


def test_recordio_long_packets_and_partial_lines(ref):
    data = b"z" * 600
    # one write of the whole output (atomic on a pipe), so the reads are the same each run
    script = 'cat >/dev/null; printf "%600s\\n\\nlast" x'
    r = both_recordio(ref, ["sh", "-c", script], data)
    err = masked(r.err)
    # reads of 256 bytes: each piece of a long packet is a line ending in +
    assert err.startswith(b"PID < " + b"z" * 256 + b"+\nPID < " + b"z" * 256 + b"+\nPID < "
                          + b"z" * 88 + b"+\nPID < [EOF]\n")
    assert err.endswith(b"PID > [EOF]\n")
    assert r.out == b" " * 599 + b"x\n\nlast"


def test_recordio_empty_input(ref):
    r = both_recordio(ref, ["sh", "-c", "cat >/dev/null; exit 4"], b"")
    assert r.rc == 4
    assert masked(r.err) == b"PID < [EOF]\nPID > [EOF]\n"


def test_recordio_pid_is_the_programs(ref):
    p = subprocess.Popen([str(OURS / "recordio"), "sh", "-c", 'cat >/dev/null; echo "$$"'],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = p.communicate(b"hi\n", timeout=30)
    assert out == b"%d\n" % p.pid
    assert err.startswith(b"%d < hi \n" % p.pid)


# -- usage and failures, shared by the wrappers -----------------------------

@pytest.mark.parametrize("name,args", [
    ("fixcrio", []),
    ("fixcrio", ["/nonexistent/prog"]),
    ("fixcrio", ["no-such-program-here"]),
    ("recordio", []),
    ("recordio", ["no-such-program-here"]),
    ("argv0", []),
    ("argv0", ["cat"]),
    ("argv0", ["no-such-program-here", "x"]),
    ("argv0", ["/nonexistent/prog", "x", "y"]),
    ("argv0", ["/etc", "x"]),
    ("argv0", ["", ""]),
    ("argv0", ["", "x"]),
])
def test_errors_match_debian(ref, name, args):
    mine = run(str(OURS / name), args)
    theirs = run(str(ref / name), args)

    def said(r: Run) -> list[bytes]:
        # recordio's child may or may not see the end of the input before the
        # (failed) program's output ends: its records are a race in both
        return [line for line in r.err.splitlines() if not re.match(rb"\d+ [<>] ", line)]

    assert (mine.rc, mine.out, said(mine)) == (theirs.rc, theirs.out, said(theirs))
    assert mine.rc in (100, 111) and said(mine)[0].startswith(name.encode() + b": ")


# -- argv0 --------------------------------------------------------------------

@pytest.mark.parametrize("args", [
    ["cat", "myname", "/proc/self/cmdline"],
    ["/bin/cat", "-cat", "/proc/self/cmdline"],
    ["cat", "", "/proc/self/cmdline"],
    ["cat", "only-zero"],
    ["sh", "zero", "-c", "exit 5"],
])
def test_argv0_matches_debian(ref, args):
    r = both(ref, "argv0", args, b"from stdin\n")
    if args[-1] == "/proc/self/cmdline":
        assert r.out == b"\0".join(a.encode() for a in args[1:]) + b"\0"
    elif args[0] == "sh":
        assert r.rc == 5
    else:
        assert r.out == b"from stdin\n"
