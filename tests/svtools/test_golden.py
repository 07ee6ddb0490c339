"""Golden transcripts: our daemontools and Debian's C originals answer alike.

In the style of daemontools' ``rts.tests``: every scenario builds a fresh
directory, runs one command in it with our program and, in a second fresh
directory built the same way, with Debian's, records the exit code, stdout
and stderr (pids, seconds and paths masked) and the state the command left
behind, and the two transcripts must be equal.  Arguments are relative to the
scenario's directory, so both sides get the very same argv after argv[0].
A few literal strings per scenario make sure a transcript cannot pass by both
sides saying nothing.

"Running" services are faked where that makes the state exact: the test holds
``supervise/ok`` (and ``supervise/control``) open for reading, as supervise
does, and writes the 18-byte status file itself.
"""
from __future__ import annotations

import os
import re
import select
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest

from tests.helpers import (OURS, Result, cmd, kill_tree, make_service, status_pid, wait_for,
                           write_script)

TAI_EPOCH = 2**62 + 10


class Fixture:
    """What a scenario's set-up started or opened; undone after the command."""

    def __init__(self, spawn, ref: Path) -> None:
        self.spawn = spawn
        self.ref = ref
        self.fds: dict[str, int] = {}
        self.procs: list[subprocess.Popen] = []

    def prog(self, side: str, name: str) -> str:
        return str((OURS if side == "ours" else self.ref) / name)

    def hold(self, fifo: Path) -> None:
        """Make ``fifo`` and keep it open for reading, as a running supervise does."""
        if not fifo.exists():
            os.mkfifo(fifo, 0o600)
        self.fds[fifo.name] = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)

    def drain(self, name: str) -> bytes:
        try:
            return os.read(self.fds[name], 100)
        except BlockingIOError:
            return b""

    def close(self) -> None:
        for fd in self.fds.values():
            os.close(fd)
        for p in self.procs:
            kill_tree(p)


# -- set-ups: each gets the scenario's directory and the fixture -------------

def nothing(root: Path, fx: Fixture) -> None:
    pass


def service(root: Path, fx: Fixture) -> Path:
    return make_service(root / "s")


def not_running(root: Path, fx: Fixture) -> None:
    """s/supervise with both FIFOs and a status file, but nobody reading."""
    s = service(root, fx)
    (s / "supervise").mkdir(mode=0o700)
    os.mkfifo(s / "supervise" / "control", 0o600)
    os.mkfifo(s / "supervise" / "ok", 0o600)
    (s / "supervise" / "status").write_bytes(status(0))


def empty_supervise_dir(root: Path, fx: Fixture) -> None:
    (service(root, fx) / "supervise").mkdir(mode=0o700)


def running(root: Path, fx: Fixture, name: str = "s") -> Path:
    """A service whose (fake) supervise is running: ok and control are held open."""
    s = make_service(root / name)
    (s / "supervise").mkdir(mode=0o700)
    fx.hold(s / "supervise" / "ok")
    fx.hold(s / "supervise" / "control")
    return s


def status(pid: int, paused: int = 0, want: bytes = b"u", age: int = 100) -> bytes:
    """18 bytes of supervise/status: changed ``age`` seconds ago."""
    stamp = (TAI_EPOCH + int(time.time()) - age).to_bytes(8, "big") + (123456789).to_bytes(4, "big")
    return stamp + pid.to_bytes(4, "little") + bytes([paused]) + want


def with_status(data: bytes | None, *, down: bool = False) -> Callable[[Path, Fixture], None]:
    """A running (fake) supervise whose status file holds ``data`` (None: no file)."""
    def setup(root: Path, fx: Fixture) -> None:
        s = running(root, fx)
        if data is not None:
            (s / "supervise" / "status").write_bytes(data)
        if down:
            (s / "down").touch()
    return setup


def statuses(*files: tuple[str, bytes | None]) -> Callable[[Path, Fixture], None]:
    """Running (fake) services, each with its status file (None: a directory there)."""
    def setup(root: Path, fx: Fixture) -> None:
        for name, data in files:
            st = running(root, fx, name) / "supervise" / "status"
            if data is None:
                st.mkdir()
            else:
                st.write_bytes(data)
    return setup


def down_loop(root: Path, fx: Fixture) -> None:
    """s/down is a symbolic link to itself: stat() fails with ELOOP."""
    s = running(root, fx)
    (s / "supervise" / "status").write_bytes(status(0))
    os.symlink("down", s / "down")


def down_loop_no_supervise(root: Path, fx: Fixture) -> None:
    os.symlink("down", service(root, fx) / "down")


def plain_file(root: Path, fx: Fixture) -> None:
    (root / "f").write_text("not a directory\n")


def lock_is_directory(root: Path, fx: Fixture) -> None:
    (service(root, fx) / "supervise" / "lock").mkdir(parents=True)


def supervise_is_file(root: Path, fx: Fixture) -> None:
    (service(root, fx) / "supervise").write_text("")


def supervise_dangles_nowhere(root: Path, fx: Fixture) -> None:
    """s/supervise -> ../gone/sv: the target's parent is missing, so no mkdir helps."""
    os.symlink("../gone/sv", service(root, fx) / "supervise")


def lock_held_by(holder: str) -> Callable[[Path, Fixture], None]:
    """A real supervise (``ours`` or ``theirs``) already runs s and holds its lock."""
    def setup(root: Path, fx: Fixture) -> None:
        s = service(root, fx)
        p = fx.spawn.supervise(s, fx.prog(holder, "supervise"))
        fx.procs.append(p)
        assert p.poll() is None, p.stderr.read().decode()
        wait_for(lambda: status_pid(s), what=f"{holder} supervise to start {s}/run")
    return setup


def exits_itself(root: Path, fx: Fixture) -> None:
    """./run asks its own supervise to go down and exit: a whole life in one second."""
    make_service(root / "s", "printf dx > supervise/control; exec sleep 1000")


#: a directory name that is not UTF-8, as argv carries it (surrogate-escaped)
ODD = os.fsdecode(b"n\xff")


def odd_name_exits_itself(root: Path, fx: Fixture) -> None:
    make_service(root / ODD, "printf dx > supervise/control; exec sleep 1000")


def exits_via_dangling_link(root: Path, fx: Fixture) -> None:
    """The same, with s/supervise -> ../state/s dangling: Debian makes the target."""
    exits_itself(root, fx)
    (root / "state").mkdir()
    os.symlink("../state/s", root / "s" / "supervise")


def several(root: Path, fx: Fixture) -> None:
    running(root, fx, "s")
    (root / "s" / "supervise" / "status").write_bytes(status(4242, 1, b"d"))
    not_running(root / "t", fx)  # t/s exists, not running
    make_service(root / "u")


# -- what a command left behind, compared as part of the transcript ---------

def status_tail(root: Path, fx: Fixture) -> str:
    """pid (zero or not), paused and want bytes of s/supervise/status."""
    data = (root / "s" / "supervise" / "status").read_bytes()
    pid = int.from_bytes(data[12:16], "little")
    return (f"status: {len(data)} bytes, pid {'N' if pid else 0}, paused {data[16]}, "
            f"want {data[17:18]!r}")


def control_bytes(root: Path, fx: Fixture) -> str:
    return f"control got {fx.drain('control')!r}"


def listing(root: Path, fx: Fixture) -> str:
    """What exists under the root afterwards (names and types)."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        for n in sorted(dirnames + filenames):
            p = Path(dirpath) / n
            kind = "l" if p.is_symlink() else "d" if p.is_dir() else "p" if p.is_fifo() else "f"
            found.append(f"{kind} {p.relative_to(root)}")
    return "\n".join(sorted(found))


@dataclass(frozen=True)
class Case:
    """One golden scenario: a command, its set-up, and what must appear."""

    id: str
    prog: str
    args: tuple[str, ...] = ()
    setup: Callable[[Path, Fixture], None] = nothing
    rc: int = 0
    out: tuple[str, ...] = ()
    err: tuple[str, ...] = ()
    stdin: bytes = b""
    close_stdin: bool = False
    after: Callable[[Path, Fixture], str] | None = None
    timeout: float = 20


SVC_USAGE = ("svc options: u up, d down, o once, x exit, p pause, c continue, "
             "h hup, a alarm, i interrupt, t term, k kill")

CASES = [
    # supervise ------------------------------------------------------------
    Case("supervise-no-args", "supervise", (), rc=100,
         err=("supervise: usage: supervise dir\n",)),
    Case("supervise-two-args", "supervise", ("s", "t"), service, rc=100,
         err=("supervise: usage: supervise dir\n",)),
    Case("supervise-nonexistent-dir", "supervise", ("nonexistent",), rc=111,
         err=("supervise: fatal: unable to chdir to nonexistent: file does not exist\n",)),
    Case("supervise-not-a-directory", "supervise", ("f",), plain_file, rc=111,
         err=("supervise: fatal: unable to chdir to f: not a directory\n",)),
    Case("supervise-down-symlink-loop", "supervise", ("s",), down_loop_no_supervise, rc=111,
         err=("supervise: fatal: unable to stat s/down: symbolic link loop\n",), after=listing),
    Case("supervise-lock-held-by-ours", "supervise", ("s",), lock_held_by("ours"), rc=111,
         err=("supervise: fatal: unable to acquire s/supervise/lock: temporary failure\n",)),
    Case("supervise-lock-held-by-theirs", "supervise", ("s",), lock_held_by("theirs"), rc=111,
         err=("supervise: fatal: unable to acquire s/supervise/lock: temporary failure\n",)),
    Case("supervise-lock-is-directory", "supervise", ("s",), lock_is_directory, rc=111,
         err=("supervise: fatal: unable to acquire s/supervise/lock: is a directory\n",)),
    Case("supervise-supervise-is-a-file", "supervise", ("s",), supervise_is_file, rc=111,
         err=("supervise: fatal: unable to acquire s/supervise/lock: not a directory\n",)),
    Case("supervise-supervise-dangles-nowhere", "supervise", ("s",), supervise_dangles_nowhere,
         rc=111, after=listing,
         err=("supervise: fatal: unable to acquire s/supervise/lock: file does not exist\n",)),
    Case("supervise-run-says-dx", "supervise", ("s",), exits_itself, rc=0,
         after=lambda root, fx: status_tail(root, fx) + "\n" + listing(root, fx)),
    Case("supervise-dangling-symlink-made", "supervise", ("s",), exits_via_dangling_link, rc=0,
         after=lambda root, fx: status_tail(root, fx) + "\n" + listing(root, fx)),
    Case("supervise-empty-dir-name", "supervise", ("",), rc=111,
         err=("supervise: fatal: unable to chdir to : file does not exist\n",)),
    Case("supervise-dir-name-not-utf8-missing", "supervise", (ODD,), rc=111,
         err=("supervise: fatal: unable to chdir to n\ufffd: file does not exist\n",)),
    Case("supervise-dir-name-not-utf8", "supervise", (ODD,), odd_name_exits_itself, rc=0,
         after=lambda root, fx: listing(root, fx)),
    # svc ------------------------------------------------------------------
    Case("svc-no-args", "svc", (), rc=0),
    Case("svc-options-but-no-dirs", "svc", ("-udx",), rc=0),
    Case("svc-illegal-option", "svc", ("-z", "s"), service, rc=100,
         err=("svc: illegal option -- z\n" + SVC_USAGE + "\n",)),
    Case("svc-illegal-option-in-cluster", "svc", ("-uz", "s"), not_running, rc=100,
         err=("svc: illegal option -- z\n", SVC_USAGE)),
    Case("svc-illegal-option-after-valid", "svc", ("-u", "-Q", "s"), service, rc=100,
         err=("svc: illegal option -- Q\n", SVC_USAGE)),
    Case("svc-nonexistent-dir", "svc", ("-u", "nonexistent"), rc=0,
         err=("svc: warning: unable to chdir to nonexistent: file does not exist\n",)),
    Case("svc-odd-names", "svc", ("-u", "", ODD), rc=0,
         err=("svc: warning: unable to chdir to : file does not exist\n"
              "svc: warning: unable to chdir to n\ufffd: file does not exist\n",)),
    Case("svc-no-supervise-dir", "svc", ("-u", "s"), service, rc=0,
         err=("svc: warning: unable to control s: file does not exist\n",)),
    Case("svc-supervise-not-running", "svc", ("-u", "s"), not_running, rc=0,
         err=("svc: warning: unable to control s: supervise not running\n",)),
    Case("svc-no-letters-not-running", "svc", ("s",), not_running, rc=0,
         err=("svc: warning: unable to control s: supervise not running\n",)),
    Case("svc-several-dirs", "svc", ("-t", "nonexistent", "s", "t/s", "u", "s"), several, rc=0,
         err=("svc: warning: unable to chdir to nonexistent: file does not exist\n"
              "svc: warning: unable to control t/s: supervise not running\n"
              "svc: warning: unable to control u: file does not exist\n",),
         after=control_bytes),
    Case("svc-letters-once-in-order", "svc", ("-u", "-x", "-u", "-hd", "-xak", "--", "s"),
         with_status(status(0)), rc=0, after=control_bytes),
    Case("svc-every-letter", "svc", ("-udopchaitkx", "s"), with_status(status(0)), rc=0,
         after=control_bytes),
    Case("svc-dash-is-a-dir", "svc", ("-u", "-", "s"), with_status(status(0)), rc=0,
         err=("svc: warning: unable to chdir to -: file does not exist\n",), after=control_bytes),
    # svok -----------------------------------------------------------------
    Case("svok-no-args", "svok", (), rc=100, err=("svok: usage: svok dir\n",)),
    Case("svok-nonexistent-dir", "svok", ("nonexistent",), rc=111,
         err=("svok: fatal: unable to chdir to nonexistent: file does not exist\n",)),
    Case("svok-no-supervise-dir", "svok", ("s",), service, rc=100),
    Case("svok-no-ok-fifo", "svok", ("s",), empty_supervise_dir, rc=100),
    Case("svok-not-running", "svok", ("s",), not_running, rc=100),
    Case("svok-running", "svok", ("s",), with_status(status(4242)), rc=0),
    Case("svok-running-real-ours", "svok", ("s",), lock_held_by("ours"), rc=0),
    Case("svok-running-real-theirs", "svok", ("s",), lock_held_by("theirs"), rc=0),
    Case("svok-ok-is-directory", "svok", ("s",),
         lambda root, fx: (service(root, fx) / "supervise" / "ok").mkdir(parents=True), rc=111,
         err=("svok: fatal: unable to open s/supervise/ok: is a directory\n",)),
    # svstat ---------------------------------------------------------------
    Case("svstat-no-args", "svstat", (), rc=0),
    Case("svstat-nonexistent-dir", "svstat", ("nonexistent",), rc=0,
         out=("nonexistent: unable to chdir: file does not exist\n",)),
    Case("svstat-odd-names", "svstat", ("", ODD), rc=0,
         out=(": unable to chdir: file does not exist\n"
              "n\ufffd: unable to chdir: file does not exist\n",)),
    Case("svstat-no-supervise-dir", "svstat", ("s",), service, rc=0,
         out=("s: unable to open supervise/ok: file does not exist\n",)),
    Case("svstat-supervise-not-running", "svstat", ("s",), not_running, rc=0,
         out=("s: supervise not running\n",)),
    Case("svstat-down-symlink-loop", "svstat", ("s",), down_loop, rc=0,
         out=("s: unable to stat down: symbolic link loop\n",)),
    Case("svstat-status-missing", "svstat", ("s",), with_status(None), rc=0,
         out=("s: unable to open supervise/status: file does not exist\n",)),
    Case("svstat-status-empty", "svstat", ("s",), with_status(b""), rc=0,
         out=("s: unable to read supervise/status: bad format\n",)),
    Case("svstat-status-short", "svstat", ("s",), with_status(status(4242)[:17]), rc=0,
         out=("s: unable to read supervise/status: bad format\n",)),
    Case("svstat-status-long", "svstat", ("s",), with_status(status(4242) + b"junk"), rc=0,
         out=("s: up (pid N) S seconds\n",)),
    # svstat.c misses a read error (-1 < sizeof is false) and shows its buffer
    Case("svstat-status-is-directory", "svstat", ("s",), statuses(("s", None)), rc=0,
         out=("s: down S seconds, normally up\n",)),
    Case("svstat-status-unreadable-shows-previous", "svstat", ("s", "t"),
         statuses(("s", status(4242, 1, b"d")), ("t", None)), rc=0,
         out=("s: up (pid N) S seconds, paused, want down\n"
              "t: up (pid N) S seconds, paused, want down\n",)),
    Case("svstat-status-short-then-unreadable", "svstat", ("a", "b", "c"),
         statuses(("a", status(0)), ("b", status(4242, 1, b"d")[:14]), ("c", None)), rc=0,
         out=("a: down S seconds, normally up, want up\n"
              "b: unable to read supervise/status: bad format\n"
              "c: up (pid N) S seconds\n",)),
    Case("svstat-up", "svstat", ("s",), with_status(status(4242)), rc=0,
         out=("s: up (pid N) S seconds\n",)),
    Case("svstat-down-normally-up", "svstat", ("s",), with_status(status(0, want=b"d")), rc=0,
         out=("s: down S seconds, normally up\n",)),
    Case("svstat-down-normally-up-want-up", "svstat", ("s",), with_status(status(0)), rc=0,
         out=("s: down S seconds, normally up, want up\n",)),
    Case("svstat-down-want-up", "svstat", ("s",), with_status(status(0), down=True), rc=0,
         out=("s: down S seconds, want up\n",)),
    Case("svstat-down-normally-down", "svstat", ("s",),
         with_status(status(0, want=b"d"), down=True), rc=0, out=("s: down S seconds\n",)),
    Case("svstat-down-paused-not-shown", "svstat", ("s",),
         with_status(status(0, paused=1, want=b"\0"), down=True), rc=0,
         out=("s: down S seconds\n",)),
    Case("svstat-up-normally-down", "svstat", ("s",), with_status(status(4242), down=True),
         rc=0, out=("s: up (pid N) S seconds, normally down\n",)),
    Case("svstat-up-paused", "svstat", ("s",), with_status(status(4242, paused=1)), rc=0,
         out=("s: up (pid N) S seconds, paused\n",)),
    Case("svstat-up-paused-any-nonzero-byte", "svstat", ("s",),
         with_status(status(4242, paused=0x80)), rc=0, out=("s: up (pid N) S seconds, paused\n",)),
    Case("svstat-up-want-down", "svstat", ("s",), with_status(status(4242, want=b"d")), rc=0,
         out=("s: up (pid N) S seconds, want down\n",)),
    Case("svstat-up-once", "svstat", ("s",), with_status(status(4242, want=b"\0")), rc=0,
         out=("s: up (pid N) S seconds\n",)),
    Case("svstat-up-everything", "svstat", ("s",),
         with_status(status(4242, paused=1, want=b"d"), down=True), rc=0,
         out=("s: up (pid N) S seconds, normally down, paused, want down\n",)),
    Case("svstat-several-dirs", "svstat", ("s", "nonexistent", "t/s", "u"), several, rc=0,
         out=("s: up (pid N) S seconds, paused, want down\n"
              "nonexistent: unable to chdir: file does not exist\n"
              "t/s: supervise not running\n"
              "u: unable to open supervise/ok: file does not exist\n",)),
    Case("svstat-running-real-ours", "svstat", ("s",), lock_held_by("ours"), rc=0,
         out=("s: up (pid N) S seconds\n",)),
    Case("svstat-running-real-theirs", "svstat", ("s",), lock_held_by("theirs"), rc=0,
         out=("s: up (pid N) S seconds\n",)),
    # readproctitle --------------------------------------------------------
    Case("readproctitle-no-args", "readproctitle", (), rc=100),
    Case("readproctitle-short-last-arg", "readproctitle", ("service", "errors:", "...."), rc=100),
    Case("readproctitle-empty-last-arg", "readproctitle", ("",), rc=100),
    Case("readproctitle-eof", "readproctitle", ("service", "errors:", "....."), rc=0),
    Case("readproctitle-input-then-eof", "readproctitle", ("service", "errors:", "." * 20),
         stdin=b"supervise: fatal: something\n" * 3, rc=0),
    Case("readproctitle-stdin-closed", "readproctitle", (".....",), close_stdin=True, rc=111),
    # svscan ---------------------------------------------------------------
    Case("svscan-nonexistent-dir", "svscan", ("nonexistent",), rc=111,
         err=("svscan: fatal: unable to chdir to nonexistent: file does not exist\n",)),
    Case("svscan-not-a-directory", "svscan", ("f",), plain_file, rc=111,
         err=("svscan: fatal: unable to chdir to f: not a directory\n",)),
]


@dataclass
class Transcript:
    """One side's record: what the command said and what it left behind."""

    rc: int
    out: str
    err: str
    after: str = ""


def masked(res: Result, *paths: Path) -> Result:
    """Pids and seconds masked, and any absolute path of the run replaced by a name."""
    res = res.masked()
    out, err = res.out, res.err
    for p, name in zip(paths, ("ROOT", "BIN")):
        out, err = out.replace(str(p), name), err.replace(str(p), name)
    return Result(res.rc, out, err)


def run_case(case: Case, side: str, root: Path, fx: Fixture) -> Transcript:
    root.mkdir()
    prog = fx.prog(side, case.prog)
    case.setup(root, fx)
    args = [prog, *case.args]
    if case.close_stdin:
        args = ["/bin/sh", "-c", 'exec "$0" "$@" <&-', *args]
    res = cmd(args, cwd=root, input=case.stdin, timeout=case.timeout)
    after = case.after(root, fx) if case.after else ""
    m = masked(res, root, Path(prog).parent)
    return Transcript(m.rc, m.out, m.err, after)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_golden(case: Case, ref: Path, tmp_path: Path, spawn) -> None:
    got = {}
    for side in ("theirs", "ours"):
        fx = Fixture(spawn, ref)
        try:
            got[side] = run_case(case, side, tmp_path / side, fx)
        finally:
            fx.close()
    assert got["ours"] == got["theirs"]
    t = got["ours"]
    assert t.rc == case.rc, t
    for text in case.out:
        assert text in t.out, t
    for text in case.err:
        assert text in t.err, t
    if not case.out:
        assert t.out == "", t
    if not case.err:
        assert t.err == "", t


# -- the seconds figure and the pid, unmasked --------------------------------

@pytest.mark.parametrize("stamp, tail, expect, secs", [
    pytest.param(-100, b"\0\0\0\0\0d", "s: down {} seconds, normally up\n", 100,
                 id="100-seconds-ago"),
    pytest.param(3600, b"\x01\0\0\0\0u", "s: up (pid 1) {} seconds\n", 0, id="in-the-future"),
    pytest.param(-86400 * 365, b"\xff\xff\xff\xff\x01d",
                 "s: up (pid 4294967295) {} seconds, paused, want down\n", 86400 * 365,
                 id="largest-pid"),
    pytest.param(None, b"\0\0\0\0\0u", "s: down {} seconds, normally up, want up\n", None,
                 id="zero-stamp-rounded-like-a-double"),
    pytest.param(b"\xff" * 12, b"\0\0\0\0\0u", "s: down {} seconds, normally up, want up\n", 0,
                 id="all-ones-stamp"),
])
def test_svstat_figures_exactly(stamp, tail, expect, secs, ref: Path, tmp_path: Path) -> None:
    """Seconds and pid as printed, unmasked: svstat.c goes through a double."""
    s = make_service(tmp_path / "s")
    (s / "supervise").mkdir()
    os.mkfifo(s / "supervise" / "ok")
    fd = os.open(s / "supervise" / "ok", os.O_RDONLY | os.O_NONBLOCK)
    try:
        if isinstance(stamp, bytes):
            head = stamp
        elif stamp is None:
            head = bytes(12)
        else:
            head = (TAI_EPOCH + int(time.time()) + stamp).to_bytes(8, "big") + bytes(4)
        (s / "supervise" / "status").write_bytes(head + tail)
        # theirs, ours, theirs: if a second (or a double's step) ticks over
        # between two runs, ours still equals one of its neighbours
        runs = [cmd([prog, "s"], cwd=tmp_path).out
                for prog in (str(ref / "svstat"), str(OURS / "svstat"), str(ref / "svstat"))]
    finally:
        os.close(fd)
    assert runs[1] in (runs[0], runs[2]), runs
    if secs is not None:
        # a second or two may pass between writing the stamp and reading it
        assert runs[1] in [expect.format(secs + k) for k in range(3)], runs
    else:
        n = int(re.fullmatch(expect.replace("{}", r"(\d+)"), runs[1])[1])
        assert n > TAI_EPOCH and n % 1024 == 0, runs  # 2**62 < n < 2**63: doubles step by 1024


# -- supervise with a ./run that cannot start --------------------------------

def _stderr_lines(procs: dict[str, subprocess.Popen], n: int,
                  timeout: float) -> dict[str, list[tuple[float, str]]]:
    """The first ``n`` lines on each process's stderr, each with when it arrived.

    All the pipes are read at once, so an arrival time is when the line was written.
    """
    got: dict[str, list[tuple[float, str]]] = {side: [] for side in procs}
    buf = {side: b"" for side in procs}
    fds = {p.stderr.fileno(): side for side, p in procs.items()}
    deadline = time.monotonic() + timeout
    while any(len(lines) < n for lines in got.values()):
        left = deadline - time.monotonic()
        assert left > 0, f"timed out with {got!r} and {buf!r}"
        for fd in select.select(list(fds), [], [], left)[0]:
            side = fds[fd]
            chunk = os.read(fd, 4096)
            assert chunk, f"{side} stderr closed after {got[side]!r} and {buf[side]!r}"
            now = time.monotonic()
            buf[side] += chunk
            while b"\n" in buf[side]:
                line, buf[side] = buf[side].split(b"\n", 1)
                got[side].append((now, line.decode() + "\n"))
    return got


@pytest.mark.parametrize("broken, reason", [
    pytest.param(lambda s: None, "file does not exist", id="run-missing"),
    pytest.param(lambda s: write_script(s / "run", "exit 0") or (s / "run").chmod(0o644),
                 "access denied", id="run-not-executable"),
    pytest.param(lambda s: (s / "run").mkdir(), "access denied", id="run-is-a-directory"),
])
def test_supervise_cannot_start_run(broken, reason, ref: Path, tmp_path: Path, spawn) -> None:
    """The failing child says why, supervise lives on and retries once a second."""
    procs = {}
    for side, bindir in (("theirs", ref), ("ours", OURS)):
        root = tmp_path / side
        (root / "s").mkdir(parents=True)
        broken(root / "s")
        procs[side] = spawn.start([str(bindir / "supervise"), "s"], cwd=root)
    lines = _stderr_lines(procs, 3, timeout=8)
    for side, p in procs.items():
        assert p.poll() is None, side  # supervise itself does not give up
        texts = [text for _, text in lines[side]][:3]
        assert texts == [f"supervise: fatal: unable to start s/run: {reason}\n"] * 3, side
        gaps = [b[0] - a[0] for a, b in zip(lines[side], lines[side][1:3])]
        assert all(0.8 < g < 3.0 for g in gaps), (side, gaps)
        r = cmd([str(OURS / "svok"), "s"], cwd=tmp_path / side)
        assert r.rc == 0, (side, r)
    assert [t for _, t in lines["ours"][:3]] == [t for _, t in lines["theirs"][:3]]


# -- readproctitle: what ps shows --------------------------------------------

def _title(pid: int) -> tuple[str, str]:
    """(short name, the command line after argv[0]) as ps would show them."""
    with open(f"/proc/{pid}/comm") as f:
        comm = f.read().rstrip("\n")
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        words = f.read().rstrip(b"\0").replace(b"\0", b" ").decode()
    return comm, words.split(" ", 1)[1] if " " in words else ""


@pytest.mark.parametrize("window, chunks, expect", [
    pytest.param("x" * 8, [], "........", id="dots-before-input"),
    pytest.param("." * 8, [b"xyzw"], "....xyzw", id="short-input"),
    pytest.param("." * 24, [b"supervise: fatal: unable", b" to start x/run: file does not exist\n"],
                 "... file does not exist\n", id="long-input-keeps-three"),
    pytest.param("." * 8, [b"1\0002\0003"], ".....123", id="nul-bytes-skipped"),
    pytest.param("." * 5, [b"abc", b"defg"], "...fg", id="smallest-window"),
])
def test_readproctitle_title(window, chunks, expect, ref: Path, spawn) -> None:
    """What ps shows (short name and arguments) after the same input."""
    titles = {}
    for side, bindir in (("theirs", ref), ("ours", OURS)):
        p = spawn.start([str(bindir / "readproctitle"), "service", "errors:", window],
                        stdin=subprocess.PIPE)
        for chunk in chunks:
            p.stdin.write(chunk)
            p.stdin.flush()
        want = f"service errors: {expect}"
        titles[side] = wait_for(lambda: (t := _title(p.pid))[1] == want and t,
                                what=f"{side} readproctitle to show {want!r}")
        p.stdin.close()
        assert p.wait(timeout=10) == 0
    assert titles["ours"] == titles["theirs"] == ("readproctitle", f"service errors: {expect}")
