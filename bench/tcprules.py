"""Benchmark tcprules, tcprulescheck and pyqmail.cdb: ours against Debian's C ucspi-tcp 0.88.

Run from the top of the checkout:  ``.venv/bin/python bench/tcprules.py``
(about half a minute).  It generates, in a temporary directory:

* ``plain``: 100,000 rule lines of the usual kinds (addresses, prefixes,
  ``=host``, ``info@``, a few small ranges, settings such as
  ``RELAYCLIENT=""``), about 110,000 records;
* ``ranges``: 2,000 lines ``a.b.c.0-255``, 512,000 records;

compiles each with the C tcprules and with ours (best of ``--rounds``),
checks that the two CDBs are the same bytes, and times one tcprulescheck
run (median) and in-process lookups through ``tcpserver.rules`` (what a
preloaded tcpserver child pays per connection).
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

LINES = 100_000


def plain_rules(n: int) -> bytes:
    rnd = random.Random(1)
    lines = [b"# generated rules"]
    for i in range(n):
        a, b, cc, d = (rnd.randrange(256) for _ in range(4))
        kind = rnd.randrange(20)
        if kind < 11:
            addr = b"%d.%d.%d.%d" % (a, b, cc, d)
        elif kind < 15:
            addr = b"%d.%d.%d." % (a, b, cc)
        elif kind < 17:
            addr = b"=h%d.example%d.com" % (i, rnd.randrange(100))
        elif kind < 18:
            addr = b"user%d@%d.%d.%d.%d" % (rnd.randrange(50), a, b, cc, d)
        else:
            addr = b"%d.%d.%d.%d-%d" % (a, b, cc, d, d + rnd.randrange(3))
        instr = rnd.choice((b"allow", b"deny", b'allow,RELAYCLIENT=""',
                            b'allow,RBLSMTPD="",GREETDELAY="5"'))
        lines.append(addr + b":" + instr)
    lines.append(b':allow,X="default"')
    return b"\n".join(lines) + b"\n"


def range_rules(n: int) -> bytes:
    rnd = random.Random(2)
    return b"".join(b"%d.%d.%d.0-255:allow,RELAYCLIENT=\"\"\n"
                    % (rnd.randrange(256), rnd.randrange(256), rnd.randrange(256)) for _ in range(n))


def compile_time(prog: str, rules: Path, out: Path, rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        with open(rules, "rb") as stdin:
            t0 = time.perf_counter()
            subprocess.run([prog, str(out), str(out) + ".tmp"], stdin=stdin, check=True)
            best = min(best, time.perf_counter() - t0)
    return best


def check_time(prog: str, rules_cdb: Path, runs: int) -> float:
    env = {"PATH": "/usr/bin:/bin", "TCPREMOTEIP": "10.20.30.40", "TCPREMOTEHOST": "x.example.com",
           "TCPREMOTEINFO": "nobody"}
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run([prog, str(rules_cdb)], env=env, stdout=subprocess.DEVNULL, check=True)
        times.append(time.perf_counter() - t0)
    return c.median(times)


def lookups_per_second(rules_cdb: Path, n: int) -> float:
    from pyqmail import cdb
    from tcpserver import rules

    rnd = random.Random(3)
    ips = ["%d.%d.%d.%d" % tuple(rnd.randrange(256) for _ in range(4)) for _ in range(n)]
    t0 = time.perf_counter()
    for ip in ips:
        with cdb.Reader(rules_cdb) as r:  # opened per connection, as tcpserver does
            rules.parse(rules.lookup(r, ip, "nobody", "x.example.com") or b"")
    return n / (time.perf_counter() - t0)


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=3, help="runs per program, best kept (3)")
    args = ap.parse_args(argv)
    from pyqmail import cdb

    t_begin = time.perf_counter()
    table = c.Table(f"tcprules benchmark: ours vs C ucspi-tcp 0.88 "
                    f"({os.cpu_count()} CPUs, Python {sys.version.split()[0]})")
    with tempfile.TemporaryDirectory(prefix="bench-tcprules-") as tmp:
        d = Path(tmp)
        inputs = {"plain": plain_rules(LINES), "ranges": range_rules(2000)}
        for name, text in inputs.items():
            rules = d / f"{name}.rules"
            rules.write_bytes(text)
            o_t = compile_time(c.ours("tcprules"), rules, d / f"{name}.ours.cdb", args.rounds)
            c_t = compile_time(c.ref("tcprules"), rules, d / f"{name}.c.cdb", args.rounds)
            same = (d / f"{name}.ours.cdb").read_bytes() == (d / f"{name}.c.cdb").read_bytes()
            with cdb.Reader(d / f"{name}.c.cdb") as r:
                records = sum(1 for _ in r)
            lines = text.count(b"\n")
            table.section(f"tcprules, {name}: {lines:,} lines, {records:,} records")
            table.add("compile time", o_t, c_t, c.ms, "< 2 s", o_t < 2)
            table.rows.append(("same CDB bytes", "yes" if same else "NO", "", "", "yes",
                               "ok" if same else "MISSED"))
        plain_cdb = d / "plain.c.cdb"
        table.section("tcprulescheck, one run on the plain CDB (median of 20)")
        o_t = check_time(c.ours("tcprulescheck"), plain_cdb, 20)
        c_t = check_time(c.ref("tcprulescheck"), plain_cdb, 20)
        table.add("time", o_t, c_t, c.ms)
        rate = lookups_per_second(plain_cdb, 20_000)
        table.notes.append(f"in-process: open the CDB, look a connection up (info, host, "
                           f"address, prefixes: 9 keys) and parse the rule: {rate:,.0f}/s")
    table.notes.append(f"best of {args.rounds} runs for tcprules; bench took "
                       f"{time.perf_counter() - t_begin:.0f} s")
    table.print()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
