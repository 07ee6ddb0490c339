"""Benchmark tai64n and tai64nlocal: ours against Debian's C daemontools 0.76.

Run from the top of the checkout:  ``.venv/bin/python bench/tai64n.py``
(about half a minute).  It generates, in a temporary directory:

* ``plain``: 1,000,000 lines of about 100 bytes (100 MB), for tai64n;
* ``stamped``: the same lines, each behind its own TAI64N label (a log whose
  lines are a few microseconds apart: every label differs), for tai64nlocal;

then feeds each file to the C program and to ours (stdin the file, stdout
``/dev/null``), best of ``--rounds`` runs each, and prints MB/s of input and
the ratio ours/C.  Memory: the peak RSS (``wait4``) of each run, and ours on a
tenth of the input, which must be the same (flat) within a few MB.
tai64nlocal runs with ``TZ=UTC`` (and once more with TZ unset, where glibc's
localtime() looks at /etc/localtime on every call: much slower in C).
"""
from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as c  # noqa: E402

LINES = 1_000_000
LINE = 100
TAI = 2**62 + 10
#: the C figures measured earlier on this machine, for comparison
NOTED_C = {"tai64n": "376 MB/s", "tai64nlocal": "129 MB/s"}
FLAT_SLACK = 4 * 1024 * c.KiB  # peak RSS on 100 MB may exceed that on 10 MB by this much
TIME = "/usr/bin/time"  # GNU time, for the peak RSS


def make_inputs(tmp: Path) -> tuple[Path, Path]:
    """Write the plain and the stamped input files; return their paths."""
    rnd = random.Random(1)
    words = [b"qmail-send:", b"status:", b"local", b"remote", b"delivery", b"starting",
             b"msg", b"info", b"bytes", b"from", b"qp", b"uid", b"success:", b"did_1+0+0/"]
    plain, stamped = tmp / "plain", tmp / "stamped"
    t = 1_700_000_000 * 10**9
    with open(plain, "wb") as fp, open(stamped, "wb") as fs:
        for block in range(LINES // 10_000):
            lines = []
            for i in range(10_000):
                n = block * 10_000 + i
                text = b"%d " % n + b" ".join(rnd.choice(words) for _ in range(16))
                lines.append((text + b" " + b"." * LINE)[:LINE - 1] + b"\n")
            fp.write(b"".join(lines))
            labels = []
            for line in lines:
                t += rnd.randrange(500, 5000)
                labels.append(b"@%016x%08x " % (TAI + t // 10**9, t % 10**9) + line)
            fs.write(b"".join(labels))
    return plain, stamped


def timed(prog: str, infile: Path, env: dict[str, str], rss_file: Path) -> tuple[float, int]:
    """Run ``prog < infile > /dev/null``; return (seconds, peak RSS in KiB).

    The peak RSS comes from GNU time, which forks the program itself: a child
    forked (vforked) straight from this big process would have our own RSS
    counted in its ru_maxrss, which exec does not reset.
    """
    with open(infile, "rb") as stdin, open(os.devnull, "wb") as out:
        t0 = time.perf_counter()
        p = subprocess.run([TIME, "-f", "%M", "-o", str(rss_file), prog], stdin=stdin,
                           stdout=out, env=env)
        elapsed = time.perf_counter() - t0
    if p.returncode != 0:
        raise SystemExit(f"bench: {prog} exited {p.returncode}")
    return elapsed, int(rss_file.read_text().split()[-1])


def best(prog: str, infile: Path, env: dict[str, str], rounds: int) -> tuple[float, int]:
    """Fastest of ``rounds`` runs, and the largest peak RSS seen."""
    rss_file = infile.parent / "rss"
    runs = [timed(prog, infile, env, rss_file) for _ in range(rounds)]
    return min(r[0] for r in runs), max(r[1] for r in runs)


def head_of(infile: Path, tmp: Path, fraction: int) -> Path:
    """The first 1/``fraction`` of ``infile``, cut at a line end."""
    with open(infile, "rb") as f:
        data = f.read(infile.stat().st_size // fraction)
    small = tmp / (infile.name + ".small")
    small.write_bytes(data[: data.rindex(b"\n") + 1])
    return small


def progress(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=3, help="runs per program, best kept (3)")
    args = ap.parse_args(argv)
    if not os.access(TIME, os.X_OK):
        raise SystemExit(f"bench: {TIME} (GNU time) measures the peak RSS: apt-get install time")
    t_begin = time.perf_counter()
    table = c.Table(f"tai64n benchmark: ours vs C daemontools 0.76 "
                    f"({os.cpu_count()} CPUs, Python {sys.version.split()[0]})")
    base_env = {"PATH": "/usr/bin:/bin", "LANG": "C"}
    mbs = lambda x: f"{x:.0f} MB/s"  # noqa: E731
    with tempfile.TemporaryDirectory(prefix="bench-tai64n-") as tmp:
        tmpdir = Path(tmp)
        progress(f"generating {LINES:,} lines of {LINE} bytes ...")
        plain, stamped = make_inputs(tmpdir)
        jobs = [("tai64n", plain, {}, ""), ("tai64nlocal", stamped, {"TZ": "UTC"}, " TZ=UTC"),
                ("tai64nlocal", stamped, {}, " TZ unset")]
        for name, infile, extra, label in jobs:
            env = {**base_env, **extra}
            size = infile.stat().st_size
            progress(f"{name}{label}: {size / 1e6:.0f} MB, {args.rounds} rounds each ...")
            o_t, o_rss = best(c.ours(name), infile, env, args.rounds)
            c_t, c_rss = best(c.ref(name), infile, env, args.rounds)
            o_mbs, c_mbs = size / o_t / 1e6, size / c_t / 1e6
            small = head_of(infile, tmpdir, 10)
            _, o_rss_small = best(c.ours(name), small, env, 1)
            _, c_rss_small = best(c.ref(name), small, env, 1)
            table.section(f"{name}{label} ({size / 1e6:.0f} MB in, {LINES:,} lines)")
            table.add("throughput", o_mbs, c_mbs, mbs, ">= C", o_mbs >= c_mbs)
            table.add("time", o_t, c_t, c.ms)
            table.add("peak RSS", o_rss * c.KiB, c_rss * c.KiB, c.kib)
            table.add("peak RSS, 1/10 of the input", o_rss_small * c.KiB, c_rss_small * c.KiB,
                      c.kib, "flat", o_rss <= o_rss_small + FLAT_SLACK // c.KiB)
    table.notes.append(f"C figures noted earlier on this machine: tai64n {NOTED_C['tai64n']}, "
                       f"tai64nlocal {NOTED_C['tai64nlocal']}")
    table.notes.append("input from a regular file, output to /dev/null; best of "
                       f"{args.rounds} runs; MB/s of input (10^6 bytes)")
    table.notes.append("every stamped line has its own label (microseconds apart)")
    table.notes.append(f"bench took {time.perf_counter() - t_begin:.0f} s")
    table.print()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
