"""Benchmark multilog: ours against Debian's C daemontools 0.76, on the same input.

Run from the top of the checkout:  ``.venv/bin/python bench/multilog.py``
(about a minute).  It generates 1,000,000 log lines of about 100 bytes (one
in ten has ``level=error``), then feeds that file on stdin to the C multilog
and to ours with each script:

1. ``t s16777215 n10 ./dir``: timestamps, the largest logs;
2. ``t ./dir``: timestamps, the default size (99999 bytes: a rotation, with
   its fsync, every 99999 bytes, about 1,260 of them);
3. ``-* +*level=error* ./dir``: selection, no timestamps;

and prints MB/s of input (the median over ``--rounds`` runs, taking turns),
the ratio ours/C, and the peak RSS.  Then it feeds a ~1 GB input through
both with the first script, to show that memory stays flat.  Every run's
log directory is checked against the other implementation's (timestamps
masked), so a fast wrong answer cannot pass.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as c  # noqa: E402

LINES = 1_000_000
MB = 1_000_000
#: the C original's figures measured on this machine, for comparison
NOTED_C = {"t s16777215 n10": "186 MB/s", "t (default size)": "90 MB/s", "selection": "289 MB/s"}
SCRIPTS = [
    ("t s16777215 n10", ["t", "s16777215", "n10"]),
    ("t (default size)", ["t"]),
    ("selection", ["-*", "+*level=error*"]),
]
_STAMP = re.compile(rb"@[0-9a-f]{24}")


def generate(path: Path, lines: int) -> int:
    """Write ``lines`` log lines of about 100 bytes; every tenth has level=error."""
    levels = [b"info", b"info", b"debug", b"info", b"warn", b"info", b"info", b"debug", b"info",
              b"error"]
    paths = [b"/api/v1/items", b"/api/v1/users", b"/healthz", b"/static/app.js"]
    chunk = []
    size = 0
    with open(path, "wb") as f:
        for i in range(lines):
            chunk.append(b"2025-11-25T13:%02d:%02d.%06dZ web-%d app[%d]: level=%s msg=\"served\" "
                         b"path=%s/%d status=%d\n"
                         % (i // 60000 % 60, i // 1000 % 60, i % 1000000, i % 7, 4000 + i % 97,
                            levels[i % 10], paths[i % 4], i % 100000, 200 + (i % 10 == 9) * 300))
            if len(chunk) == 10000:
                data = b"".join(chunk)
                size += len(data)
                f.write(data)
                chunk = []
        data = b"".join(chunk)
        size += len(data)
        f.write(data)
    return size


def run_one(prog: str, script: list[str], infile: Path, workdir: Path) -> tuple[float, int]:
    """Run ``prog script ./dir`` with stdin from ``infile``; (seconds, peak RSS bytes)."""
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    errfile = workdir.parent / f"{workdir.name}.err"
    with open(infile, "rb") as f, open(errfile, "wb") as err:
        t0 = time.perf_counter()
        p = subprocess.Popen([prog, *script, "./dir"], stdin=f, cwd=workdir,
                             stdout=subprocess.DEVNULL, stderr=err)
        # ru_maxrss would count the parent's pages the child had before exec:
        # sample the child's own high-water mark instead, until it exits
        peak = 0
        while True:
            peak = max(peak, _hwm(p.pid))
            pid, status = os.waitpid(p.pid, os.WNOHANG)
            if pid:
                break
            time.sleep(0.002)
        dt = time.perf_counter() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
    text = errfile.read_bytes()
    if p.returncode != 0 or text:
        raise RuntimeError(f"{prog} {' '.join(script)} exited {p.returncode}: {text[:300]!r}")
    return dt, peak


def _hwm(pid: int) -> int:
    """VmHWM (peak resident set) of ``pid`` in bytes, 0 if it cannot be read."""
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            for line in f:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0


def snapshot(d: Path) -> list[tuple[str, int, bytes]]:
    """(masked name, mode, masked contents) of each file, old logs in timestamp order."""
    out = []
    olds = sorted(n for n in os.listdir(d) if n.startswith("@"))
    for n in sorted(os.listdir(d)):
        masked = f"@{olds.index(n)}{n[25:]}" if n in olds else n
        data = (d / n).read_bytes()
        out.append((masked, (d / n).stat().st_mode, _STAMP.sub(b"@", data)))
    return out


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=3, help="runs per script and program (3)")
    ap.add_argument("--lines", type=int, default=LINES, help="lines of input (1,000,000)")
    ap.add_argument("--big-gb", type=float, default=1.0,
                    help="size of the memory run's input in GB (1; 0 to skip)")
    args = ap.parse_args(argv)
    progs = {"ours": c.ours("multilog"), "C": c.ref("multilog")}
    t_begin = time.perf_counter()
    table = c.Table(f"multilog benchmark: ours vs C daemontools 0.76 "
                    f"({os.cpu_count()} CPUs, Python {sys.version.split()[0]})")
    bad = 0
    with tempfile.TemporaryDirectory(prefix="bench-multilog-") as tmp:
        tmpdir = Path(tmp)
        infile = tmpdir / "input"
        size = generate(infile, args.lines)
        print(f"input: {args.lines:,} lines, {size / MB:.1f} MB", file=sys.stderr)
        for name, script in SCRIPTS:
            times: dict[str, list[float]] = {"ours": [], "C": []}
            rss: dict[str, int] = {"ours": 0, "C": 0}
            for r in range(args.rounds):
                for key in (("ours", "C") if r % 2 else ("C", "ours")):
                    dt, peak = run_one(progs[key], script, infile, tmpdir / key)
                    times[key].append(dt)
                    rss[key] = max(rss[key], peak)
                    print(f"  {name:18} {key:4} {size / MB / dt:7.1f} MB/s", file=sys.stderr)
            same = snapshot(tmpdir / "ours" / "dir") == snapshot(tmpdir / "C" / "dir")
            bad += not same
            ours_v = size / MB / c.median(times["ours"])
            c_v = size / MB / c.median(times["C"])
            table.section(f"{' '.join(script)} ./dir" + ("" if same else "  OUTPUT DIFFERS"))
            table.add("throughput", ours_v, c_v, lambda v: f"{v:.0f} MB/s", ">= C", ours_v >= c_v)
            table.add("peak RSS", rss["ours"], rss["C"], c.kib)
        if args.big_gb > 0:
            big = tmpdir / "big"
            reps = max(1, int(args.big_gb * 1e9 / size))
            with open(big, "wb") as f:
                for _ in range(reps):
                    with open(infile, "rb") as src:
                        shutil.copyfileobj(src, f, 1 << 20)
            infile.unlink()
            bsize = size * reps
            table.section(f"memory: {bsize / 1e9:.2f} GB through t s16777215 n10 ./dir")
            res = {}
            for key in ("C", "ours"):
                res[key] = run_one(progs[key], ["t", "s16777215", "n10"], big, tmpdir / key)
                print(f"  big input        {key:4} {bsize / MB / res[key][0]:7.1f} MB/s",
                      file=sys.stderr)
            table.add("throughput", bsize / MB / res["ours"][0], bsize / MB / res["C"][0],
                      lambda v: f"{v:.0f} MB/s")
            table.add("peak RSS", res["ours"][1], res["C"][1], c.kib, "flat",
                      res["ours"][1] < 64 << 20)
    table.notes.append("MB/s = MB (10^6 bytes) of input / wall time from Popen to exit, stdin a "
                       "file in the page cache, logs on " + _fstype(tmpdir.parent))
    table.notes.append("C figures noted earlier on this machine: "
                       + ", ".join(f"{k} {v}" for k, v in NOTED_C.items()))
    table.notes.append("each script's log directory compared between ours and C, stamps masked: "
                       + ("identical" if not bad else f"{bad} DIFFER"))
    table.notes.append(f"bench took {time.perf_counter() - t_begin:.0f} s")
    table.print()
    return 1 if bad else 0


def _fstype(path: Path) -> str:
    best, fstype = "", "?"
    try:
        with open("/proc/mounts") as f:
            for line in f:
                parts = line.split()
                if len(parts) > 2 and str(path).startswith(parts[1]) and len(parts[1]) > len(best):
                    best, fstype = parts[1], parts[2]
    except OSError:
        pass
    return fstype


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
