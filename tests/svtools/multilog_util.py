"""Helpers for the multilog tests: run ours and the C original alike, compare what they leave.

A run happens in a directory of its own with stdin from a file (so the C
original reads it 1024 bytes at a time, deterministically).  What it leaves is
compared as a snapshot: every file and directory under the run's directory
with its mode and contents, where old logs ``@<tai64n>.s`` are renamed by
their rank in time order and every TAI64N stamp in a file becomes ``@S``.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.helpers import ours

STAMP = re.compile(rb"@[0-9a-fA-F]{24}")
_NAME = re.compile(r"@[0-9a-f]{24}")
INPUT = "input"


def prog(impl: str, ref: Path) -> str:
    """The multilog of ``impl`` ("ours" or "C")."""
    return ours("multilog") if impl == "ours" else str(ref / "multilog")


def mask(data: bytes) -> bytes:
    """``data`` with every TAI64N label replaced by ``@S``."""
    return STAMP.sub(b"@S", data)


def snapshot(root: Path, skip: tuple[str, ...] = (INPUT,)) -> dict[str, tuple[str, bytes]]:
    """{masked relative path: (octal mode, masked contents)} of everything under ``root``."""
    raw: dict[str, tuple[str, bytes]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames:
            p = Path(dirpath, name)
            raw[str(p.relative_to(root)) + "/"] = (oct(p.lstat().st_mode), b"")
        for name in filenames:
            p = Path(dirpath, name)
            rel = str(p.relative_to(root))
            if rel in skip:
                continue
            raw[rel] = (oct(p.lstat().st_mode), p.read_bytes())
    out: dict[str, tuple[str, bytes]] = {}
    rank: dict[str, int] = {}
    for rel in sorted(raw):  # stamps sort in time order
        mode, data = raw[rel]
        if _NAME.search(os.path.basename(rel)):
            d = os.path.dirname(rel)
            rank[d] = rank.get(d, 0) + 1
            rel = _NAME.sub(f"@{rank[d]}", rel)
        out[rel] = (mode, mask(data))
    return out


@dataclass
class Run:
    """One program's run: exit code, masked stderr, and the snapshot it left."""

    rc: int
    err: bytes
    files: dict[str, tuple[str, bytes]]


def run_in(exe: str, script: list[str], data: bytes, workdir: Path, *,
           setup=None, timeout: float = 120) -> Run:
    """Run ``exe script`` in a fresh ``workdir`` with ``data`` on stdin (a file)."""
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    if setup is not None:
        setup(workdir)
    infile = workdir / INPUT
    infile.write_bytes(data)
    with open(infile, "rb") as f:
        p = subprocess.run([exe, *script], stdin=f, cwd=workdir, capture_output=True,
                           timeout=timeout)
    return Run(p.returncode, mask(p.stderr), snapshot(workdir))


def run_both(ref: Path, script: list[str], data: bytes, tmp: Path, **kw) -> tuple[Run, Run]:
    """The C original's run and ours, on the same input and script."""
    return (run_in(prog("C", ref), script, data, tmp / "c", **kw),
            run_in(prog("ours", ref), script, data, tmp / "ours", **kw))


def diff(c: Run, o: Run) -> str:
    """A short description of how two runs differ ("" if they do not)."""
    lines = []
    if c.rc != o.rc:
        lines.append(f"exit code: C {c.rc}, ours {o.rc}")
    if c.err != o.err:
        lines.append(f"stderr: C {c.err[:300]!r}\n        ours {o.err[:300]!r}")
    for k in sorted(set(c.files) | set(o.files)):
        a, b = c.files.get(k), o.files.get(k)
        if a != b:
            lines.append(f"{k}: C {_short(a)}, ours {_short(b)}")
    return "\n".join(lines)


def _short(v: tuple[str, bytes] | None) -> str:
    if v is None:
        return "missing"
    mode, data = v
    return f"mode {mode}, {len(data)} bytes {data[:60]!r}"


def lines_of(n: int, width: int = 60, tag: bytes = b"line") -> bytes:
    """``n`` numbered lines of exactly ``width`` bytes each (newline excluded)."""
    return b"".join((b"%s %07d " % (tag, i)).ljust(width, b"x") + b"\n" for i in range(n))
