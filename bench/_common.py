"""Helpers shared by the benchmarks: programs, process hygiene, waiting, timing, memory.

Every bench runs OURS and the C REFERENCE on the same work in the same run and
prints the ratio ours/C.  This module finds both sets of programs, starts
processes in their own sessions and makes sure none outlives the bench,
watches ``supervise/status`` files (inotify, falling back to polling), and
turns samples into medians, percentiles and a printed table.
"""
from __future__ import annotations

import ctypes
import math
import os
import select
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

import psutil

TOP = Path(__file__).resolve().parent.parent
if str(TOP) not in sys.path:
    sys.path.insert(0, str(TOP))

#: our console scripts: the virtualenv's bin/, whatever interpreter runs the bench
OURS = TOP / ".venv" / "bin"
KiB = 1024


def ours(prog: str) -> str:
    """Full path of our program ``prog``."""
    path = OURS / prog
    if not path.exists():
        raise SystemExit(f"bench: {path} is missing: install the project into .venv first")
    return str(path)


def ref_bindir() -> Path:
    """Directory of Debian's C binaries (downloaded on first use)."""
    from tests import reference

    return reference.bindir()


def ref(prog: str) -> str:
    """Full path of the C reference program ``prog``."""
    return str(ref_bindir() / prog)


def env_with_path(first: str | os.PathLike) -> dict[str, str]:
    """The current environment with ``first`` at the front of a plain PATH."""
    env = dict(os.environ)
    env["PATH"] = f"{first}:/usr/local/bin:/usr/bin:/bin"
    return env


# -- process hygiene --------------------------------------------------------

_PR_SET_CHILD_SUBREAPER = 36


def become_subreaper() -> bool:
    """Make orphaned descendants re-parent to us (so we can reap and count them)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def reap(pids: Iterable[int] | None = None) -> None:
    """Collect exited children: the given pids, or any child when ``pids`` is None."""
    if pids is None:
        while True:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
    for pid in pids:
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass


def alive(p: psutil.Process) -> bool:
    """True if ``p`` still runs (zombies and reused pids count as gone)."""
    try:
        return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def tree(pid: int) -> list[psutil.Process]:
    """``pid`` and all its descendants, as far as they can be seen now."""
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.Error:
        return []


class Procs:
    """Starts processes in new sessions and, on exit, kills every one still alive.

    Use as a context manager.  Besides the processes it started it remembers
    any process handed to :meth:`remember` (descendants seen during the run),
    so that children re-parented away from their group are killed too.
    """

    def __init__(self, logdir: Path | None = None) -> None:
        self.popens: list[subprocess.Popen] = []
        self.known: dict[tuple[int, float], psutil.Process] = {}
        self.logdir = logdir
        self.leftovers: list[str] = []

    def start(self, args: Sequence[str], *, log: str | None = None, **kw) -> subprocess.Popen:
        """Popen ``args`` in its own session; stderr goes to ``logdir/log`` if named."""
        kw.setdefault("stdin", subprocess.DEVNULL)
        kw.setdefault("stdout", subprocess.DEVNULL)
        if log and self.logdir is not None:
            kw.setdefault("stderr", open(self.logdir / log, "ab"))
        else:
            kw.setdefault("stderr", subprocess.DEVNULL)
        try:
            p = subprocess.Popen(list(args), start_new_session=True, **kw)
        finally:
            err = kw.get("stderr")
            if hasattr(err, "close"):
                err.close()
        self.popens.append(p)
        self.remember(tree(p.pid))
        return p

    def remember(self, procs: Iterable[psutil.Process]) -> None:
        for p in procs:
            try:
                self.known[(p.pid, p.create_time())] = p
            except psutil.Error:
                pass

    def snapshot(self) -> None:
        """Remember the current descendants of everything we started."""
        for p in self.popens:
            if p.poll() is None:
                self.remember(tree(p.pid))

    def kill_all(self) -> list[str]:
        """SIGKILL every started group and every remembered process; reap; report survivors."""
        self.snapshot()
        for p in self.popens:
            for kill in (lambda: os.killpg(p.pid, signal.SIGKILL), p.kill):
                try:
                    kill()
                except OSError:
                    pass
        for p in self.known.values():
            if alive(p):
                try:
                    p.kill()
                except psutil.Error:
                    pass
        deadline = time.monotonic() + 10
        for p in self.popens:
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        reap(p.pid for p in self.known.values())
        wait_for(lambda: not any(alive(p) for p in self.known.values()), timeout=5,
                 what="killed processes to go", fail=False)
        reap(p.pid for p in self.known.values())
        return [describe(p) for p in self.known.values() if alive(p)]

    def __enter__(self) -> "Procs":
        return self

    def __exit__(self, *exc: object) -> None:
        self.leftovers = self.kill_all()
        if self.leftovers:
            print("bench: WARNING: processes left behind: " + ", ".join(self.leftovers),
                  file=sys.stderr)


def describe(p: psutil.Process) -> str:
    try:
        return f"{p.pid} ({' '.join(p.cmdline()) or p.name()})"
    except psutil.Error:
        return str(p.pid)


# -- waiting -----------------------------------------------------------------

def wait_for(cond: Callable[[], object], timeout: float = 10.0, interval: float = 0.005,
             what: str = "condition", fail: bool = True) -> object:
    """Poll ``cond`` until it is true; raise (or return False) after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            if fail:
                raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
            return False
        time.sleep(interval)


def wait_until(t: float) -> None:
    """Sleep until ``time.perf_counter()`` reaches ``t`` (a bounded wait)."""
    delay = t - time.perf_counter()
    if delay > 0:
        time.sleep(delay)


# -- supervise/status ---------------------------------------------------------

@dataclass
class Status:
    pid: int
    paused: bool
    want: bytes
    stamp: float  # Unix seconds of the last change


def read_status(service: str | os.PathLike) -> Status | None:
    """Decode ``service/supervise/status``, or None if missing or short."""
    try:
        fd = os.open(os.path.join(service, "supervise", "status"), os.O_RDONLY)
    except OSError:
        return None
    try:
        data = os.read(fd, 64)
    finally:
        os.close(fd)
    if len(data) < 18:
        return None
    secs = int.from_bytes(data[0:8], "big") - (2**62 + 10)
    nano = int.from_bytes(data[8:12], "big")
    return Status(int.from_bytes(data[12:16], "little"), bool(data[16]), data[16 + 1:18],
                  secs + nano / 1e9)


def status_pid(service: str | os.PathLike) -> int:
    st = read_status(service)
    return st.pid if st else 0


_IN_MOVED_TO = 0x80
_IN_CLOSE_WRITE = 0x08


class StatusWatcher:
    """Wakes up whenever supervise replaces ``service/supervise/status``.

    supervise writes ``status.new`` and renames it, so an inotify watch for
    IN_MOVED_TO on the directory sees every change.  Without inotify it polls.
    Timestamps are ``time.perf_counter()`` taken when the change is seen.
    """

    def __init__(self, service: str | os.PathLike) -> None:
        self.service = str(service)
        self.fd = -1
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
            if fd >= 0:
                path = os.path.join(self.service, "supervise").encode()
                if libc.inotify_add_watch(fd, path, _IN_MOVED_TO | _IN_CLOSE_WRITE) >= 0:
                    self.fd = fd
                else:
                    os.close(fd)
        except (OSError, AttributeError):
            self.fd = -1

    def reset(self) -> None:
        """Forget events seen so far."""
        if self.fd >= 0:
            try:
                while os.read(self.fd, 65536):
                    pass
            except BlockingIOError:
                pass

    def wait(self, pred: Callable[[Status], bool], timeout: float = 10.0,
             proc: subprocess.Popen | None = None) -> tuple[float, float | None]:
        """Wait until ``pred(status)`` holds; return (time seen, time ``proc`` exited).

        With ``proc`` it also waits for that process to exit (through a pidfd,
        so both instants are measured in the one loop).
        """
        deadline = time.perf_counter() + timeout
        t_seen: float | None = None
        t_exit: float | None = None
        pidfd = -1
        if proc is not None:
            try:
                pidfd = os.pidfd_open(proc.pid)
            except (OSError, AttributeError):
                pidfd = -1
        try:
            while True:
                if t_seen is None:
                    st = read_status(self.service)
                    if st is not None and pred(st):
                        t_seen = time.perf_counter()
                if proc is not None and t_exit is None and pidfd < 0 and proc.poll() is not None:
                    t_exit = time.perf_counter()
                if t_seen is not None and (proc is None or t_exit is not None):
                    if proc is not None:
                        proc.wait(timeout=5)
                    return t_seen, t_exit
                now = time.perf_counter()
                if now > deadline:
                    raise TimeoutError(f"status of {self.service} did not change in {timeout}s")
                fds = [fd for fd in (self.fd if t_seen is None else -1,
                                     pidfd if t_exit is None else -1) if fd >= 0]
                if not fds or (t_seen is None and self.fd < 0):
                    time.sleep(0.00005)  # polling fallback: 50 µs
                    continue
                ready, _, _ = select.select(fds, [], [], min(deadline - now, 0.1))
                if pidfd in ready and t_exit is None:
                    t_exit = time.perf_counter()
                if self.fd in ready:
                    self.reset()
        finally:
            if pidfd >= 0:
                os.close(pidfd)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def write_control(service: str | os.PathLike, letters: bytes) -> None:
    """What ``svc`` does: write ``letters`` to ``service/supervise/control``."""
    fd = os.open(os.path.join(service, "supervise", "control"), os.O_WRONLY | os.O_NONBLOCK)
    try:
        os.write(fd, letters)
    finally:
        os.close(fd)


def make_service(path: Path, script: str) -> Path:
    """A service directory whose ``run`` is the ``/bin/sh`` ``script``."""
    path.mkdir(parents=True, exist_ok=True)
    run = path / "run"
    run.write_text("#!/bin/sh\n" + script + "\n")
    run.chmod(0o755)
    return path


# -- statistics and memory ------------------------------------------------------

def median(xs: Sequence[float]) -> float:
    s = sorted(xs)
    n = len(s)
    if not n:
        return math.nan
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2


def percentile(xs: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (``p`` in 0..100)."""
    s = sorted(xs)
    if not s:
        return math.nan
    return s[max(0, math.ceil(p / 100 * len(s)) - 1)]


@dataclass
class Mem:
    """Memory of a set of processes, in bytes."""

    count: int = 0
    uss: int = 0
    pss: int = 0
    rss: int = 0

    def per(self) -> "Mem":
        n = max(self.count, 1)
        return Mem(self.count, self.uss // n, self.pss // n, self.rss // n)


def memory(procs: Iterable[psutil.Process]) -> Mem:
    """Sum USS, PSS and RSS (``memory_full_info``) over ``procs``."""
    m = Mem()
    for p in procs:
        info = p.memory_full_info()
        m.count += 1
        m.uss += info.uss
        m.pss += info.pss
        m.rss += info.rss
    return m


# -- the printed table ------------------------------------------------------------

def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def kib(nbytes: float) -> str:
    return f"{nbytes / KiB:,.0f} KiB"


def ratio(a: float, b: float) -> str:
    if not b or math.isnan(a) or math.isnan(b):
        return "-"
    return f"{a / b:.2f}x"


@dataclass
class Table:
    """Rows of (what, ours, C, ours/C, target, verdict), printed aligned."""

    title: str
    rows: list[tuple[str, ...]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    HEAD = ("measure", "ours", "C", "ours/C", "target", "verdict")

    def section(self, name: str) -> None:
        self.rows.append((name,))

    def add(self, what: str, ours_v: float, c_v: float, fmt: Callable[[float], str],
            target: str = "", ok: bool | None = None) -> None:
        verdict = "" if ok is None else ("ok" if ok else "MISSED")
        self.rows.append((what, fmt(ours_v), fmt(c_v), ratio(ours_v, c_v), target, verdict))

    def print(self, out=sys.stdout) -> None:
        cells = [self.HEAD, *[r for r in self.rows if len(r) > 1]]
        widths = [max(len(r[i]) for r in cells) for i in range(len(self.HEAD))]
        rule = "-+-".join("-" * w for w in widths)
        line = lambda r: " | ".join(  # noqa: E731
            (c.ljust(w) if i in (0, 4, 5) else c.rjust(w)) for i, (c, w) in enumerate(zip(r, widths)))
        print(f"\n{self.title}", file=out)
        print("=" * len(rule), file=out)
        print(line(self.HEAD), file=out)
        for r in self.rows:
            if len(r) == 1:
                print(rule, file=out)
                print(f"[{r[0]}]", file=out)
            else:
                print(line(r), file=out)
        print("=" * len(rule), file=out)
        for n in self.notes:
            print(f"* {n}", file=out)
        out.flush()


def ours_against_postfix(prefix: str, only: str | None,
                         run_side: Callable[[str, Path], dict],
                         describe: Callable[[str, dict], str]) -> dict[str, dict]:
    """Run ``run_side(side, workdir)`` for "ours" then "postfix" (or ``only`` one), each
    in a temporary directory of its own and with qmail's accounts made for the run if
    missing; print ``describe(side, result)`` for each and the ratio of their rates."""
    import shutil
    import tempfile

    from tests import qmailaccounts

    made = qmailaccounts.make()
    results: dict[str, dict] = {}
    try:
        for side in ("ours", "postfix"):
            if only and side != only:
                continue
            workdir = Path(tempfile.mkdtemp(prefix=f"{prefix}-{side}."))
            os.chmod(workdir, 0o755)
            try:
                r = run_side(side, workdir)
            finally:
                shutil.rmtree(workdir, ignore_errors=True)
            results[side] = r
            print(describe(side, r), flush=True)
            if r["leftovers"]:
                print(f"bench: WARNING: {side} left processes: {r['leftovers']}", file=sys.stderr)
    finally:
        qmailaccounts.remove(made)
    if len(results) == 2:
        print(f"ratio ours/postfix: {results['ours']['rate'] / results['postfix']['rate']:.2f}")
    return results
