"""Benchmark supervise/svscan/svc: ours against Debian's C daemontools 0.76.

Run from the top of the checkout:  ``.venv/bin/python bench/supervise.py``
(about a minute and a half).  It measures, for ours and for the C original in
the same run:

1. memory: svscan over 50 services (``run`` = ``exec sleep 1000``); USS and
   PSS per supervise process and of svscan itself;
2. control latency: a control byte ('d', then 'u') written straight into
   ``supervise/control`` until ``supervise/status`` shows the change, and the
   whole ``svc -d`` / ``svc -u`` command (start to exit, start to effect);
3. restart latency: ``kill -9`` of a child up for more than a second until the
   status shows the new pid; and the pace of restarts of a ``run`` that exits
   at once (one a second, no faster).
"""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as c  # noqa: E402

SERVICES = 50
USS_TARGET = 2 * 1024 * c.KiB
LATENCY_FACTOR = 2.0
#: the C original's figures measured earlier on this machine, for comparison
NOTED_C = {"uss": "92 KiB", "d": "2.5 ms", "u": "3.8 ms", "restart": "1.1 ms"}
AFTER_START = 1.15  # supervise sleeps 1 s after every start; wait this long before the next


@dataclass
class Impl:
    key: str
    label: str
    svscan: str
    supervise: str
    svc: str
    env: dict[str, str]


def impls() -> list[Impl]:
    refdir = c.ref_bindir()
    return [
        Impl("ours", "ours", c.ours("svscan"), c.ours("supervise"), c.ours("svc"),
             c.env_with_path(c.OURS)),
        # the C svscan execs "supervise" through PATH: put the C one first
        Impl("c", "C", c.ref("svscan"), c.ref("supervise"), c.ref("svc"),
             c.env_with_path(refdir)),
    ]


# -- 1. memory -----------------------------------------------------------------

@dataclass
class MemResult:
    per_supervise: c.Mem
    svscan: c.Mem
    supervise_exe: str
    startup: float  # seconds from starting svscan until all services were up


def bench_memory(impl: Impl, root: Path, procs: c.Procs) -> MemResult:
    root.mkdir()
    dirs = [c.make_service(root / f"svc{i:02d}", "exec sleep 1000") for i in range(SERVICES)]
    t0 = time.perf_counter()
    scan = procs.start([impl.svscan, str(root)], env=impl.env, cwd=root, log=f"svscan-{impl.key}.log")
    try:
        c.wait_for(lambda: all(c.status_pid(d) for d in dirs) or scan.poll() is not None,
                   timeout=30, what=f"{SERVICES} services up under {impl.label} svscan")
        if scan.poll() is not None:
            raise RuntimeError(f"{impl.label} svscan exited with {scan.returncode}")
        t_up = time.perf_counter()
        # let every supervise finish its 1-second pause and settle into its loop
        c.wait_until(t_up + AFTER_START + 0.3)
        procs.snapshot()
        me = psutil.Process(scan.pid)
        kids = [p for p in me.children() if p.name() == "supervise"]
        if len(kids) != SERVICES:
            raise RuntimeError(f"{impl.label}: found {len(kids)} supervise children, not {SERVICES}")
        exe = {p.exe() for p in kids}
        return MemResult(c.memory(kids).per(), c.memory([me]), ", ".join(sorted(exe)), t_up - t0)
    finally:
        stop_svscan(impl, scan, dirs, procs)


def stop_svscan(impl: Impl, scan: subprocess.Popen, dirs: list[Path], procs: c.Procs) -> None:
    """svc -dx every service, then kill svscan; stop it first so it restarts nothing."""
    procs.snapshot()
    if scan.poll() is not None:
        return
    kids = psutil.Process(scan.pid).children()
    os.kill(scan.pid, signal.SIGSTOP)
    try:
        subprocess.run([impl.svc, "-dx", *map(str, dirs)], env=impl.env, timeout=30,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        c.wait_for(lambda: not any(c.alive(p) for p in kids), timeout=15,
                   what=f"{impl.label} supervise processes to exit", fail=False)
    finally:
        os.kill(scan.pid, signal.SIGTERM)
        os.kill(scan.pid, signal.SIGCONT)
        try:
            scan.wait(timeout=10)
        except subprocess.TimeoutExpired:
            scan.kill()
            scan.wait(timeout=10)
        c.reap(p.pid for p in kids)  # they were re-parented to us, the subreaper


# -- 2 and 3: one supervise per implementation ---------------------------------

class Supervised:
    """A standalone supervise (ours or C) on one service, with a status watcher."""

    def __init__(self, impl: Impl, service: Path, procs: c.Procs) -> None:
        self.impl = impl
        self.service = service
        self.proc = procs.start([impl.supervise, str(service)], env=impl.env,
                                log=f"supervise-{impl.key}-{service.name}.log")
        c.wait_for(lambda: c.status_pid(service) or self.proc.poll() is not None,
                   timeout=10, what=f"{impl.label} supervise to start {service}")
        if self.proc.poll() is not None:
            raise RuntimeError(f"{impl.label} supervise exited with {self.proc.returncode}")
        self.started = time.perf_counter()
        self.watch = c.StatusWatcher(service)
        self.ctl = os.open(service / "supervise" / "control", os.O_WRONLY | os.O_NONBLOCK)

    def ready(self) -> float:
        """The instant after which a control byte is acted on at once."""
        return self.started + AFTER_START

    def byte(self, letter: bytes, pred) -> float:
        """Write one control byte; seconds until the status satisfies ``pred``."""
        self.watch.reset()
        t0 = time.perf_counter()
        os.write(self.ctl, letter)
        t_seen, _ = self.watch.wait(pred, timeout=10)
        return t_seen - t0

    def svc(self, flag: str, pred) -> tuple[float, float]:
        """Run svc ``flag``; seconds (until the status shows it, until svc exited)."""
        self.watch.reset()
        t0 = time.perf_counter()
        p = subprocess.Popen([self.impl.svc, flag, str(self.service)], env=self.impl.env,
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        try:
            t_seen, t_exit = self.watch.wait(pred, timeout=10, proc=p)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        if p.returncode != 0:
            raise RuntimeError(f"{self.impl.label} svc {flag} exited {p.returncode}")
        return t_seen - t0, (t_exit or time.perf_counter()) - t0

    def stop(self) -> None:
        try:
            os.write(self.ctl, b"dx")
        except OSError:
            pass
        os.close(self.ctl)
        self.watch.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass


def is_down(st: c.Status) -> bool:
    return st.pid == 0


def is_up(st: c.Status) -> bool:
    return st.pid != 0


def control_rounds(sups: list[Supervised], rounds: int, use_svc: bool) -> dict:
    """Take each service down and up ``rounds`` times; collect the latencies."""
    res: dict = {s.impl.key: {"d": [], "u": [], "d_exit": [], "u_exit": []} for s in sups}
    for r in range(rounds + 1):  # round 0 is a warm-up, not recorded
        order = sups if r % 2 == 0 else sups[::-1]
        for s in order:
            c.wait_until(s.ready())
            if use_svc:
                d, d_exit = s.svc("-d", is_down)
                time.sleep(0.02)
                u, u_exit = s.svc("-u", is_up)
            else:
                d = s.byte(b"d", is_down)
                time.sleep(0.02)
                u = s.byte(b"u", is_up)
            s.started = time.perf_counter()
            if r:
                out = res[s.impl.key]
                out["d"].append(d)
                out["u"].append(u)
                if use_svc:
                    out["d_exit"].append(d_exit)
                    out["u_exit"].append(u_exit)
            time.sleep(0.05)  # let the new child finish exec'ing before timing the other
    return res


def restart_rounds(sups: list[Supervised], rounds: int) -> dict:
    """kill -9 the child; time until the status shows a new pid."""
    res: dict = {s.impl.key: [] for s in sups}
    for r in range(rounds + 1):
        order = sups if r % 2 == 0 else sups[::-1]
        for s in order:
            c.wait_until(s.ready())
            old = c.status_pid(s.service)
            if not old:
                raise RuntimeError(f"{s.impl.label}: service is not up before kill -9")
            s.watch.reset()
            t0 = time.perf_counter()
            os.kill(old, signal.SIGKILL)
            t_seen, _ = s.watch.wait(lambda st: st.pid not in (0, old), timeout=10)
            s.started = time.perf_counter()
            if r:
                res[s.impl.key].append(t_seen - t0)
            time.sleep(0.05)
    return res


def bench_pace(all_impls: list[Impl], root: Path, procs: c.Procs, seconds: float) -> dict:
    """Both supervise at once on a run that exits at once; starts per second."""
    logs, sups = {}, []
    for impl in all_impls:
        svc_dir = c.make_service(root / f"pace-{impl.key}",
                                 "date +%s.%N >> starts\nexit 1")
        logs[impl.key] = svc_dir / "starts"
        sups.append((impl, svc_dir, procs.start([impl.supervise, str(svc_dir)], env=impl.env,
                                                 log=f"pace-{impl.key}.log")))
    t0 = time.perf_counter()
    try:
        c.wait_until(t0 + seconds)
    finally:
        for impl, svc_dir, p in sups:
            try:
                c.write_control(svc_dir, b"dx")
            except OSError:
                pass
        for impl, svc_dir, p in sups:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
    out = {}
    for impl in all_impls:
        try:
            stamps = [float(x) for x in logs[impl.key].read_text().split()]
        except (OSError, ValueError):
            stamps = []
        gaps = [b - a for a, b in zip(stamps, stamps[1:])]
        rate = (len(stamps) - 1) / (stamps[-1] - stamps[0]) if len(stamps) > 1 else float("nan")
        out[impl.key] = {"starts": len(stamps), "rate": rate,
                         "min_gap": min(gaps) if gaps else float("nan")}
    return out


# -- the report ------------------------------------------------------------------

def report_memory(table: c.Table, mem: dict[str, MemResult]) -> None:
    mo, mc = mem["ours"], mem["c"]
    table.section(f"1. memory, svscan + {SERVICES} x supervise (run = exec sleep 1000)")
    table.add("USS per supervise", mo.per_supervise.uss, mc.per_supervise.uss, c.kib,
              f"< 2 MiB (C noted {NOTED_C['uss']})", mo.per_supervise.uss < USS_TARGET)
    table.add("PSS per supervise", mo.per_supervise.pss, mc.per_supervise.pss, c.kib)
    table.add("RSS per supervise", mo.per_supervise.rss, mc.per_supervise.rss, c.kib)
    table.add("svscan USS", mo.svscan.uss, mc.svscan.uss, c.kib)
    table.add("svscan PSS", mo.svscan.pss, mc.svscan.pss, c.kib)
    table.add(f"svscan start until {SERVICES} up", mo.startup, mc.startup, c.ms)
    table.add(f"total USS svscan + {SERVICES} supervise",
              mo.svscan.uss + SERVICES * mo.per_supervise.uss,
              mc.svscan.uss + SERVICES * mc.per_supervise.uss, c.kib)
    table.notes.append(f"supervise executables: ours = {mo.supervise_exe} "
                       f"(forked from svscan); C = {mc.supervise_exe}")


def report_latency(table: c.Table, what: str, o: list[float], cc: list[float],
                   noted: str | None = None, judged: bool = False) -> None:
    """Median and p90 rows; judged rows must be within LATENCY_FACTOR of C."""
    for name, f in (("median", c.median), ("p90", lambda xs: c.percentile(xs, 90))):
        a, b = f(o), f(cc)
        target, ok = "", None
        if judged:
            target = f"<= {LATENCY_FACTOR:g}x C"
            if noted and name == "median":
                target += f" (C noted {noted})"
            ok = a <= LATENCY_FACTOR * b
        table.add(f"{what} {name}", a, b, c.ms, target, ok)


def report_control(table: c.Table, rounds: int, direct: dict, viasvc: dict) -> None:
    do, dc = direct["ours"], direct["c"]
    table.section(f"2a. control byte written to supervise/control -> status ({rounds} rounds)")
    report_latency(table, "'d' until pid 0", do["d"], dc["d"], NOTED_C["d"], True)
    report_latency(table, "'u' until pid set", do["u"], dc["u"], NOTED_C["u"], True)
    vo, vc = viasvc["ours"], viasvc["c"]
    table.section(f"2b. whole svc command, each on its own supervise "
                  f"({rounds} rounds; ours pays Python start-up)")
    report_latency(table, "svc -d until pid 0", vo["d"], vc["d"])
    report_latency(table, "svc -d until svc exits", vo["d_exit"], vc["d_exit"])
    report_latency(table, "svc -u until pid set", vo["u"], vc["u"])
    report_latency(table, "svc -u until svc exits", vo["u_exit"], vc["u_exit"])


def report_restart(table: c.Table, restarts: int, seconds: float, restart: dict,
                   pace: dict) -> None:
    table.section(f"3. restart ({restarts} x kill -9 of a child up > 1 s; "
                  f"run = exit 1 for {seconds:g} s)")
    report_latency(table, "kill -9 until new pid", restart["ours"], restart["c"],
                   NOTED_C["restart"], True)
    po, pc = pace["ours"], pace["c"]
    table.add("exit 1: starts", po["starts"], pc["starts"], lambda x: f"{x:.0f}")
    table.add("exit 1: starts per second", po["rate"], pc["rate"], lambda x: f"{x:.3f}/s",
              "<= 1/s, like C", po["rate"] <= 1.01 and po["min_gap"] >= 0.99)
    table.add("exit 1: shortest gap", po["min_gap"], pc["min_gap"], c.ms)


def progress(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# -- main ---------------------------------------------------------------------------

def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=20, help="down/up rounds per kind (20)")
    ap.add_argument("--restarts", type=int, default=10, help="kill -9 rounds (10)")
    ap.add_argument("--pace", type=float, default=5.0, help="seconds of the pace test (5)")
    args = ap.parse_args(argv)

    subreaper = c.become_subreaper()
    all_impls = impls()
    t_begin = time.perf_counter()
    table = c.Table(f"supervise benchmark: ours vs C daemontools 0.76 "
                    f"({os.cpu_count()} CPUs, Python {sys.version.split()[0]})")
    with tempfile.TemporaryDirectory(prefix="bench-supervise-") as tmp, \
            c.Procs(logdir=Path(tmp)) as procs:
        tmpdir = Path(tmp)
        progress(f"[1/3] memory: svscan over {SERVICES} services ...")
        mem = {impl.key: bench_memory(impl, tmpdir / f"mem-{impl.key}", procs)
               for impl in all_impls}
        report_memory(table, mem)

        progress(f"[2/3] control latency: {args.rounds} rounds by byte, {args.rounds} by svc ...")
        sups = [Supervised(impl, c.make_service(tmpdir / f"ctl-{impl.key}", "exec sleep 1000"),
                           procs) for impl in all_impls]
        try:
            direct = control_rounds(sups, args.rounds, use_svc=False)
            viasvc = control_rounds(sups, args.rounds, use_svc=True)
            progress(f"[3/3] restart: {args.restarts} x kill -9, then {args.pace:g} s of exit 1 ...")
            restart = restart_rounds(sups, args.restarts)
        finally:
            for s in sups:
                s.stop()
        report_control(table, args.rounds, direct, viasvc)
        pace = bench_pace(all_impls, tmpdir, procs, args.pace)
        report_restart(table, args.restarts, args.pace, restart, pace)
    leftovers = procs.leftovers
    table.notes.append("latencies: perf_counter against an inotify watch on supervise/ "
                       "(status.new renamed over status); svc rows start at Popen")
    table.notes.append(f"processes left behind after the run: {len(leftovers)}"
                       + ("" if subreaper else " (could not become a subreaper)"))
    table.notes.append(f"bench took {time.perf_counter() - t_begin:.0f} s")
    table.print()
    return 1 if leftovers else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
