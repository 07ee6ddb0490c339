"""Interoperation with Debian's daemontools: their tools on our supervise, ours on theirs.

Every test runs two services side by side, the same ``run`` script in each:

* ``ours``: supervised by our ``supervise``, driven and read by Debian's
  ``svc``, ``svstat`` and ``svok``;
* ``theirs``: supervised by Debian's ``supervise``, driven and read by ours.

The same commands must have the same effect on both: the signals the run
script records, the 18-byte ``supervise/status`` file field by field, what
``svstat`` prints (ours and theirs, on both supervisors) and what ``./run``
itself finds when it starts.
"""
from __future__ import annotations

import os
import re
import stat
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import pytest

from tests.helpers import OURS, Result, cmd, make_service, pid_alive, wait_for

TAI_EPOCH = 2**62 + 10

#: a run script that writes down every signal it is sent (the shell runs a
#: trap as soon as ``wait`` is interrupted); TERM ends it
RECORDER = """
trap 'echo HUP >> sigs' HUP
trap 'echo ALRM >> sigs' ALRM
trap 'echo INT >> sigs' INT
trap 'echo CONT >> sigs' CONT
trap 'echo TERM >> sigs; kill $! 2>/dev/null; exit 0' TERM
echo $$ > pid
echo start >> sigs
sleep 1000 &
while :; do wait; done
"""

#: the same, but TERM does not end it: a service that is up and wanted down
STUBBORN = RECORDER.replace("kill $! 2>/dev/null; exit 0", ":")


class Status(NamedTuple):
    """supervise/status decoded here, not with our own module: it is under test too."""

    stamp: bytes
    pid: int
    paused: bool
    want: bytes

    @classmethod
    def parse(cls, data: bytes) -> "Status":
        assert len(data) == 18, data
        return cls(data[:12], int.from_bytes(data[12:16], "little"), data[16] != 0, data[17:18])


@dataclass
class Side:
    """One supervised service and the (other side's) tools that drive it."""

    name: str
    dir: Path
    sup: subprocess.Popen
    tools: Path
    first_pid: int = 0
    stamps: list[bytes] = field(default_factory=list)

    def tool(self, prog: str, *args: str) -> Result:
        return cmd([str(self.tools / prog), *args, str(self.dir)])

    def svc(self, letters: str) -> None:
        r = self.tool("svc", "-" + letters)
        assert (r.rc, r.out, r.err) == (0, "", ""), (self.name, r)

    def status(self) -> Status:
        return Status.parse((self.dir / "supervise" / "status").read_bytes())

    def sigs(self) -> list[str]:
        try:
            return (self.dir / "sigs").read_text().split()
        except FileNotFoundError:
            return []

    def run_pid(self) -> int:
        """The pid ./run wrote (0 before it ran)."""
        try:
            return int((self.dir / "pid").read_text())
        except (FileNotFoundError, ValueError):
            return 0

    def svstat(self, bindir: Path) -> str:
        """svstat's line from ``bindir``, seconds masked, the pid made symbolic."""
        r = cmd([str(bindir / "svstat"), str(self.dir)])
        assert (r.rc, r.err) == (0, ""), r
        text = r.out.replace(str(self.dir), "DIR")
        text = re.sub(r"\d+ seconds", "S seconds", text)
        pid = self.status().pid
        return text.replace(f"(pid {pid})", "(pid P)") if pid else text


def proc_state(pid: int) -> str:
    """The state letter of ``pid`` in /proc (S sleeping, T stopped), '-' if gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "-"


@pytest.fixture
def pair(tmp_path: Path, spawn, ref: Path):
    """Start ``run`` under our supervise and under theirs; returns both sides."""
    def start(script: str = RECORDER, *, down: bool = False) -> list[Side]:
        sides = []
        for name, sup_bin, tool_bin in (("ours", OURS, ref), ("theirs", ref, OURS)):
            d = make_service(tmp_path / name / "s", script, down=down)
            p = spawn.supervise(d, str(sup_bin / "supervise"))
            assert p.poll() is None, (name, p.stderr.read())
            sides.append(Side(name, d, p, tool_bin))
        for s in sides:
            if not down:
                s.first_pid = wait_for(lambda: s.sigs() == ["start"] and s.run_pid(),
                                       what=f"{s.name} ./run to start")
        return sides
    return start


def observe(s: Side, keys: object = None) -> dict:
    """What commands did to a side, in terms that do not depend on pids or times."""
    st = s.status()
    got = {
        "sigs": lambda: s.sigs(),
        "pid": lambda: "none" if not st.pid else "first" if st.pid == s.first_pid else "new",
        "pid is run's": lambda: st.pid == s.run_pid() if st.pid else None,
        "stopped": lambda: proc_state(st.pid) == "T" if st.pid else None,
        "paused": lambda: st.paused,
        "want": lambda: st.want,
        "svstat": lambda: s.svstat(s.tools),
    }
    return {k: f() for k, f in got.items() if keys is None or k in keys}


def settle(sides: list[Side], expect: dict) -> None:
    """Wait until each side shows ``expect``; then they must agree in everything."""
    for s in sides:
        try:
            wait_for(lambda: observe(s, expect) == expect, what=f"{s.name}: {expect}")
        except AssertionError:
            raise AssertionError(f"{s.name}: {observe(s)} is not {expect}") from None
    assert observe(sides[0]) == observe(sides[1])


def exit_supervise(sides: list[Side]) -> None:
    """svc -x: each supervise, its service down, exits 0 at once and never restarted it."""
    for s in sides:
        s.svc("x")
    for s in sides:
        assert s.sup.wait(timeout=10) == 0, s.name
    for s in sides:
        for bindir in (OURS, s.tools):
            r = cmd([str(bindir / "svok"), str(s.dir)])
            assert (r.rc, r.out, r.err) == (100, "", ""), (s.name, bindir, r)
            assert s.svstat(bindir) == "DIR: supervise not running\n"


UP = {"pid": "first", "pid is run's": True, "stopped": False, "paused": False}


# -- every svc letter --------------------------------------------------------

@dataclass(frozen=True)
class Letter:
    """What one svc letter must do, given where the service starts from."""

    down: bool          # start with a down file (service not started)
    before: str         # letters sent first (and settled) to set the scene
    letters: str        # the letters under test
    expect: dict
    then_exit: bool = False  # prove, by svc -x, that the service was not restarted


LETTERS = {
    "u": Letter(True, "", "u", {"sigs": ["start"], "pid": "new", "pid is run's": True,
                                "want": b"u",
                                "svstat": "DIR: up (pid P) S seconds, normally down\n"}),
    "d": Letter(False, "", "d", {"sigs": ["start", "TERM"], "pid": "none", "want": b"d",
                                 "svstat": "DIR: down S seconds, normally up\n"},
                then_exit=True),
    # o starts a down service once (checked as the scene is set); after t it stays down
    "o": Letter(True, "o", "t", {"sigs": ["start", "TERM"], "pid": "none", "want": b"\0",
                                 "svstat": "DIR: down S seconds\n"}, then_exit=True),
    "p": Letter(False, "", "p", {**UP, "sigs": ["start"], "stopped": True, "paused": True,
                                 "want": b"u", "svstat": "DIR: up (pid P) S seconds, paused\n"}),
    "c": Letter(False, "p", "c", {**UP, "sigs": ["start", "CONT"], "want": b"u",
                                  "svstat": "DIR: up (pid P) S seconds\n"}),
    "h": Letter(False, "", "h", {**UP, "sigs": ["start", "HUP"], "want": b"u"}),
    "a": Letter(False, "", "a", {**UP, "sigs": ["start", "ALRM"], "want": b"u"}),
    "i": Letter(False, "", "i", {**UP, "sigs": ["start", "INT"], "want": b"u"}),
    "t": Letter(False, "", "t", {"sigs": ["start", "TERM", "start"], "pid": "new",
                                 "pid is run's": True, "want": b"u",
                                 "svstat": "DIR: up (pid P) S seconds\n"}),
    "k": Letter(False, "", "k", {"sigs": ["start", "start"], "pid": "new", "pid is run's": True,
                                 "want": b"u", "svstat": "DIR: up (pid P) S seconds\n"}),
    # x alone changes nothing visible; h after it proves supervise read it and lives on
    "x": Letter(False, "", "xh", {**UP, "sigs": ["start", "HUP"], "want": b"u",
                                  "svstat": "DIR: up (pid P) S seconds\n"}),
}


@pytest.mark.parametrize("letter", list(LETTERS), ids=[f"svc-{k}" for k in LETTERS])
def test_svc_letter_has_the_same_effect(letter: str, pair) -> None:
    case = LETTERS[letter]
    sides = pair(down=case.down)
    if case.before == "o":
        for s in sides:
            s.svc("o")
        settle(sides, {"sigs": ["start"], "pid": "new", "want": b"\0",
                       "svstat": "DIR: up (pid P) S seconds, normally down\n"})
    elif case.before == "p":
        for s in sides:
            s.svc("p")
        settle(sides, {"paused": True, "stopped": True})
    for s in sides:
        s.svc(case.letters)
    settle(sides, case.expect)
    if letter == "x":
        for s in sides:
            for bindir in (OURS, s.tools):
                assert cmd([str(bindir / "svok"), str(s.dir)]).rc == 0, (s.name, bindir)
            assert s.sup.poll() is None, s.name
            s.svc("d")  # down now, and told to exit: supervise goes
        for s in sides:
            assert s.sup.wait(timeout=10) == 0, s.name
        settle(sides, {"sigs": ["start", "HUP", "TERM"], "pid": "none", "want": b"d",
                       "svstat": "DIR: supervise not running\n"})
    if case.then_exit:
        exit_supervise(sides)
        settle(sides, {"sigs": case.expect["sigs"]})


# -- the status file, field by field ----------------------------------------

def check_stamp(s: Side, t0: float) -> bytes:
    """The TAI64N stamp is 2**62 + 10 + a Unix time between ``t0`` and now."""
    stamp = s.status().stamp
    secs = int.from_bytes(stamp[:8], "big") - TAI_EPOCH
    nanos = int.from_bytes(stamp[8:12], "big")
    assert int(t0) - 1 <= secs <= time.time() + 1, (s.name, secs, t0)
    assert nanos < 10**9, (s.name, nanos)
    return stamp


#: (letters, what the status file then shows, what ./run has recorded, whether the stamp moves)
SEQUENCE = [
    ("p", ("first", True, b"u"), "start", False),
    ("c", ("first", False, b"u"), "start CONT", False),
    ("o", ("first", False, b"\0"), "start CONT", False),
    ("t", ("none", False, b"\0"), "start CONT TERM", True),
    ("u", ("new", False, b"u"), "start CONT TERM start", True),
    ("u", ("new", False, b"u"), "start CONT TERM start", False),
    ("d", ("none", False, b"d"), "start CONT TERM start TERM", True),
    ("p", ("none", False, b"d"), "start CONT TERM start TERM", False),  # paused shows if up
    ("u", ("new", False, b"u"), "start CONT TERM start TERM start", True),
    ("dx", ("none", False, b"d"), "start CONT TERM start TERM start TERM", True),
]


def test_status_files_agree_field_by_field(pair) -> None:
    t0 = time.time()
    sides = pair()
    for s in sides:
        assert len((s.dir / "supervise" / "status").read_bytes()) == 18
        st = s.status()
        assert (st.pid, st.paused, st.want) == (s.first_pid, False, b"u"), s.name
        s.stamps.append(check_stamp(s, t0))
    for letters, (pid, paused, want), sigs, moves in SEQUENCE:
        for s in sides:
            s.svc(letters)
        if "x" in letters:
            for s in sides:
                assert s.sup.wait(timeout=10) == 0, s.name
        settle(sides, {"pid": pid, "pid is run's": True if pid != "none" else None,
                       "paused": paused, "want": want, "sigs": sigs.split()})
        for s in sides:
            data = (s.dir / "supervise" / "status").read_bytes()
            assert len(data) == 18, (s.name, data)
            st = s.status()
            assert st.pid == (s.run_pid() if st.pid else 0), s.name
            assert data[16:17] == (b"\1" if st.paused else b"\0"), s.name
            stamp = check_stamp(s, t0)
            assert (stamp != s.stamps[-1]) == moves, (s.name, letters, stamp, s.stamps[-1])
            s.stamps.append(stamp)
    # the last status stays behind, and both tools see nobody running
    for s in sides:
        assert (s.status().pid, s.status().paused, s.status().want) == (0, False, b"d")
        for bindir in (OURS, s.tools):
            assert cmd([str(bindir / "svok"), str(s.dir)]).rc == 100
            assert s.svstat(bindir) == "DIR: supervise not running\n"


# -- svstat: ours and theirs print the same on both supervisors -------------

SVSTAT_STEPS = [
    ("", "DIR: up (pid P) S seconds\n"),
    ("d", "DIR: up (pid P) S seconds, want down\n"),  # TERM is ignored
    ("p", "DIR: up (pid P) S seconds, paused, want down\n"),
    ("k", "DIR: down S seconds, normally up\n"),
    ("down+u", "DIR: up (pid P) S seconds, normally down\n"),
    ("p", "DIR: up (pid P) S seconds, normally down, paused\n"),
    ("c", "DIR: up (pid P) S seconds, normally down\n"),
    ("d", "DIR: up (pid P) S seconds, normally down, want down\n"),
    ("k", "DIR: down S seconds\n"),
    ("o", "DIR: up (pid P) S seconds, normally down\n"),
    ("rm-down", "DIR: up (pid P) S seconds\n"),
]


def test_svstat_agrees_on_both_supervisors(pair) -> None:
    sides = pair(STUBBORN)
    for step, expect in SVSTAT_STEPS:
        for s in sides:
            if step == "down+u":
                (s.dir / "down").touch()
                s.svc("u")
            elif step == "rm-down":
                (s.dir / "down").unlink()
            elif step:
                s.svc(step)
        for s in sides:
            wait_for(lambda: s.svstat(s.tools) == expect,
                     what=f"{s.name} after {step!r}: {expect!r}")
        for s in sides:
            # ours and theirs on the same supervisor: the same line, the same pid
            outs = {str(bindir): s.svstat(bindir) for bindir in (OURS, s.tools)}
            assert set(outs.values()) == {expect}, (s.name, step, outs)
            if expect.startswith("DIR: up"):
                assert s.status().pid == s.run_pid() and pid_alive(s.run_pid()), s.name


# -- what ./run finds: everything a child can observe -----------------------

ENVIRONMENT = r"""
say() { echo "$*" >> info; }
say "argv: $0 ($# arguments)"
say "cwd: $(pwd -P)"
say "$(grep -E '^(Umask|PPid|NSpgid|NSsid|SigBlk|SigIgn)' /proc/$$/status)"
say "fds: $(ls /proc/$$/fd | sort -n | tr '
' ' ')"
for fd in 0 1 2; do say "fd $fd: $(readlink /proc/$$/fd/$fd | sed 's/:.*//')"; done
say "limits: $(ulimit -n) $(ulimit -c) $(ulimit -s) $(ulimit -u)"
say "nice: $(cut -d' ' -f19 /proc/$$/stat)"
say "$(env | sort)"
say done
exec sleep 1000
"""


def test_run_sees_the_same_world(tmp_path: Path, spawn, ref: Path) -> None:
    """argv, cwd, process group, signal masks, descriptors, limits, environment of ./run."""
    seen = {}
    for name, bindir in (("ours", OURS), ("theirs", ref)):
        d = make_service(tmp_path / name / "s", ENVIRONMENT)
        p = spawn.supervise(d, str(bindir / "supervise"))
        info = d / "info"
        wait_for(lambda: info.exists() and info.read_text().endswith("done\n"),
                 what=f"{name} ./run to describe itself")
        text = info.read_text().replace(str(d), "DIR")
        # the run script is supervise's child, in its process group and session
        for key in ("PPid", "NSpgid", "NSsid"):
            assert re.search(rf"^{key}:\t{p.pid}$", text, re.M), (name, key, text)
        seen[name] = re.sub(rf"\b{p.pid}\b", "SUPERVISE", text)
    assert seen["ours"] == seen["theirs"]  # SigIgn included: whatever our caller ignores
    for line in ("argv: ./run (0 arguments)", "cwd: DIR", "PPid:\tSUPERVISE",
                 "SigBlk:\t0000000000000000",
                 "fd 0: /dev/null", "fd 1: /dev/null", "fd 2: pipe"):
        assert f"\n{line}\n" in "\n" + seen["ours"], (line, seen["ours"])


def test_supervise_directory_layout_agrees(pair) -> None:
    """The files supervise makes: names, types and permissions."""
    sides = pair()

    def layout(s: Side) -> list[tuple[str, str, str]]:
        out = [("supervise", "d", oct(os.stat(s.dir / "supervise").st_mode & 0o7777))]
        for entry in sorted(os.scandir(s.dir / "supervise"), key=lambda e: e.name):
            mode = entry.stat(follow_symlinks=False).st_mode
            kind = "p" if stat.S_ISFIFO(mode) else "d" if stat.S_ISDIR(mode) else "f"
            out.append((entry.name, kind, oct(mode & 0o7777)))
        return out

    umask = os.umask(0)
    os.umask(umask)
    assert layout(sides[0]) == layout(sides[1]) == [
        ("supervise", "d", oct(0o700 & ~umask)),
        ("control", "p", oct(0o600 & ~umask)),
        ("lock", "f", oct(0o600 & ~umask)),
        ("ok", "p", oct(0o600 & ~umask)),
        ("status", "f", oct(0o644 & ~umask)),
    ]
