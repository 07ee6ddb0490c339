"""supervise with real processes: starts, restarts, down files, the lock, every svc letter."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import psutil
import pytest

from tests.helpers import (cmd, make_service, ours, pid_alive, read_status, status_pid,
                           wait_for)

SIGNAL_RECORDER = """
rec() { echo "$1" >> sigs; }
trap 'rec HUP' HUP
trap 'rec ALRM' ALRM
trap 'rec INT' INT
trap 'rec TERM; exit 0' TERM
echo start >> starts
while :; do sleep 0.05; done
"""


def svc(*args: str) -> None:
    r = cmd([ours("svc"), *args])
    assert (r.rc, r.err) == (0, ""), r


def svstat(service: Path) -> str:
    return cmd([ours("svstat"), str(service)]).out


def lines(path: Path) -> list[str]:
    try:
        return path.read_text().split()
    except FileNotFoundError:
        return []


def wait_pid(service: Path, old: int = 0, timeout: float = 5) -> int:
    """Wait until the status file names a running child other than ``old``."""
    return wait_for(lambda: (p := status_pid(service)) not in (0, old) and pid_alive(p) and p,
                    timeout=timeout, what=f"a new child in {service}")


def wait_down(service: Path, timeout: float = 5) -> None:
    wait_for(lambda: status_pid(service) == 0, timeout=timeout, what=f"{service} down")


def test_starts_run_and_reports_up(tmp_path, spawn):
    s = make_service(tmp_path / "s", "echo started > out; exec sleep 1000")
    sup = spawn.supervise(s)
    pid = wait_pid(s)
    assert psutil.Process(pid).ppid() == sup.pid
    wait_for(lambda: psutil.Process(pid).cmdline() == ["sleep", "1000"])
    wait_for(lambda: (s / "out").exists())
    assert svstat(s).startswith(f"{s}: up (pid {pid}) ")
    assert os.stat(s / "supervise").st_mode & 0o777 == 0o700
    for fifo in ("control", "ok"):
        assert (s / "supervise" / fifo).is_fifo()
    assert not (s / "supervise" / "status.new").exists()


def test_process_title(tmp_path, spawn):
    s = make_service(tmp_path / "svc1")
    sup = spawn.supervise(s)
    p = psutil.Process(sup.pid)
    assert p.name() == "supervise"
    assert " ".join(p.cmdline()).rstrip() == f"supervise {s}"


def test_restarts_at_most_once_a_second(tmp_path, spawn):
    s = make_service(tmp_path / "s", "echo x >> starts; exit 1")
    spawn.supervise(s)
    wait_for(lambda: len(lines(s / "starts")) >= 1)
    t0 = time.monotonic()
    wait_for(lambda: len(lines(s / "starts")) >= 4, timeout=6)
    elapsed = time.monotonic() - t0
    # three more starts take at least three seconds, and not much more
    assert 2.9 <= elapsed < 4.5, elapsed


def test_restart_after_crash_is_quick_for_an_old_child(tmp_path, spawn):
    s = make_service(tmp_path / "s")
    spawn.supervise(s)
    pid = wait_pid(s)
    time.sleep(1.1)  # past supervise's one-second pause after a start
    t0 = time.monotonic()
    os.kill(pid, signal.SIGKILL)
    new = wait_pid(s, pid)
    assert time.monotonic() - t0 < 0.5
    assert new != pid


def test_down_file_means_not_started(tmp_path, spawn):
    s = make_service(tmp_path / "s", "echo x >> starts; exec sleep 1000", down=True)
    spawn.supervise(s)
    time.sleep(0.3)
    assert not (s / "starts").exists()
    assert status_pid(s) == 0
    assert read_status(s)[17:] == b"d"
    assert svstat(s).startswith(f"{s}: down ") and "normally" not in svstat(s)
    svc("-u", str(s))
    pid = wait_pid(s)
    assert svstat(s).startswith(f"{s}: up (pid {pid}) ")
    assert svstat(s).endswith(", normally down\n")


def test_second_supervise_refused(tmp_path, spawn):
    s = make_service(tmp_path / "s")
    spawn.supervise(s)
    r = cmd([ours("supervise"), str(s)])
    assert r.rc == 111
    assert r.err == f"supervise: fatal: unable to acquire {s}/supervise/lock: temporary failure\n"


def test_lock_released_when_supervise_killed(tmp_path, spawn):
    s = make_service(tmp_path / "s")
    sup = spawn.supervise(s)
    child = wait_pid(s)
    sup.kill()
    sup.wait()
    os.kill(child, signal.SIGKILL)
    spawn.supervise(s)
    wait_pid(s, child)


def test_svc_signals(tmp_path, spawn):
    s = make_service(tmp_path / "s", SIGNAL_RECORDER)
    spawn.supervise(s)
    pid = wait_pid(s)
    for letter, name in (("h", "HUP"), ("a", "ALRM"), ("i", "INT")):
        svc("-" + letter, str(s))
        wait_for(lambda: name in lines(s / "sigs"), what=name)
        assert status_pid(s) == pid
    time.sleep(1)
    svc("-t", str(s))
    wait_for(lambda: "TERM" in lines(s / "sigs"))
    pid2 = wait_pid(s, pid)  # wanted up: restarted
    time.sleep(1)
    svc("-k", str(s))
    wait_pid(s, pid2)
    wait_for(lambda: not pid_alive(pid2))
    wait_for(lambda: lines(s / "starts") == ["start"] * 3)


def test_svc_down_up_once(tmp_path, spawn):
    s = make_service(tmp_path / "s", SIGNAL_RECORDER)
    spawn.supervise(s)
    pid = wait_pid(s)
    time.sleep(1)
    svc("-d", str(s))
    wait_down(s)
    assert lines(s / "sigs") == ["TERM"]
    assert read_status(s)[16:] == b"\0d"
    assert svstat(s).endswith(" seconds, normally up\n")
    time.sleep(1.2)
    assert status_pid(s) == 0  # stays down
    svc("-u", str(s))
    pid2 = wait_pid(s, pid)
    assert read_status(s)[16:] == b"\0u"
    time.sleep(1)
    svc("-o", str(s))
    wait_for(lambda: read_status(s)[17:] == b"\0")
    os.kill(pid2, signal.SIGTERM)
    wait_down(s)
    time.sleep(1.2)
    assert status_pid(s) == 0  # once: not restarted
    assert svstat(s).endswith(" seconds, normally up\n")
    svc("-o", str(s))  # once, when down: start it one time
    pid3 = wait_pid(s, pid2)
    assert re.fullmatch(rf"{re.escape(str(s))}: up \(pid {pid3}\) [01] seconds\n", svstat(s))


def test_svc_pause_continue(tmp_path, spawn):
    s = make_service(tmp_path / "s", "exec sleep 1000")
    spawn.supervise(s)
    pid = wait_pid(s)
    time.sleep(1)
    svc("-p", str(s))
    wait_for(lambda: psutil.Process(pid).status() == psutil.STATUS_STOPPED)
    assert read_status(s)[16] == 1
    assert svstat(s).endswith(", paused\n")
    svc("-c", str(s))
    wait_for(lambda: psutil.Process(pid).status() != psutil.STATUS_STOPPED)
    assert read_status(s)[16] == 0
    # down while paused: supervise sends TERM then CONT, so the child dies
    svc("-p", str(s))
    wait_for(lambda: psutil.Process(pid).status() == psutil.STATUS_STOPPED)
    svc("-d", str(s))
    wait_down(s)
    assert read_status(s)[16:] == b"\0d"


def test_svc_exit(tmp_path, spawn):
    s = make_service(tmp_path / "s")
    sup = spawn.supervise(s)
    pid = wait_pid(s)
    time.sleep(1)
    svc("-x", str(s))
    time.sleep(0.3)
    assert sup.poll() is None  # x alone: supervise waits for the service to go down
    assert pid_alive(pid)
    svc("-d", str(s))
    assert sup.wait(timeout=5) == 0
    assert not pid_alive(pid)
    assert status_pid(s) == 0
    assert cmd([ours("svok"), str(s)]).rc == 100
    assert svstat(s) == f"{s}: supervise not running\n"


def test_svc_dx_many_letters_many_dirs(tmp_path, spawn):
    dirs = [make_service(tmp_path / f"s{i}") for i in range(3)]
    sups = [spawn.supervise(d) for d in dirs]
    for d in dirs:
        wait_pid(d)
    time.sleep(1)
    svc("-dx", *map(str, dirs))
    for sup in sups:
        assert sup.wait(timeout=5) == 0


@pytest.mark.parametrize("setup,reason", [
    ("missing", "file does not exist"),
    ("noexec", "access denied"),
    ("garbage", "exec format error"),
])
def test_bad_run_keeps_trying_without_spinning(tmp_path, spawn, setup, reason):
    s = tmp_path / "s"
    s.mkdir()
    if setup == "noexec":
        (s / "run").write_text("#!/bin/sh\nexec sleep 1000\n")
    elif setup == "garbage":
        (s / "run").write_bytes(b"\x00\x01not a program\n")
        (s / "run").chmod(0o755)
    sup = spawn.supervise(s)
    msg = f"supervise: fatal: unable to start {s}/run: {reason}\n"
    time.sleep(2.5)
    assert sup.poll() is None
    cpu = psutil.Process(sup.pid).cpu_times()
    assert cpu.user + cpu.system < 1.0
    os.kill(sup.pid, signal.SIGKILL)
    sup.wait()
    err = sup.stderr.read().decode()
    assert 2 <= err.count(msg) <= 4, err
    assert err.replace(msg, "") == ""


def test_fixing_run_lets_it_start(tmp_path, spawn):
    s = tmp_path / "s"
    s.mkdir()
    (s / "run").write_text("#!/bin/sh\nexec sleep 1000\n")
    spawn.supervise(s)
    time.sleep(0.2)
    (s / "run").chmod(0o755)
    wait_pid(s)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_service_killed_mid_start(tmp_path, spawn, sig):
    """A child killed before it has finished starting is restarted a second later."""
    s = make_service(tmp_path / "s", "sleep 0.3; echo ready >> starts; exec sleep 1000")
    sup = spawn.supervise(s)
    pid = wait_for(lambda: status_pid(s), timeout=5)
    os.kill(pid, sig)
    t0 = time.monotonic()
    new = wait_pid(s, pid)
    assert 0.5 < time.monotonic() - t0 < 2.5
    assert psutil.Process(new).ppid() == sup.pid
    wait_for(lambda: lines(s / "starts") == ["ready"])


def test_supervise_kill9_mid_flight_leaves_usable_state(tmp_path, spawn):
    s = make_service(tmp_path / "s")
    sup = spawn.supervise(s)
    child = wait_pid(s)
    os.kill(sup.pid, signal.SIGKILL)
    sup.wait()
    os.kill(child, signal.SIGKILL)
    assert cmd([ours("svok"), str(s)]).rc == 100
    assert svstat(s) == f"{s}: supervise not running\n"
    assert len(read_status(s)) == 18
    spawn.supervise(s)
    wait_pid(s, child)


def test_children_get_default_signal_dispositions(tmp_path, spawn):
    """./run inherits what a C supervise would give it: supervise ignores nothing more
    than its own parent did, blocks nothing, and SIGPIPE is not ignored."""
    grep = "exec grep -E '^Sig(Ign|Blk)' /proc/self/status"
    s = make_service(tmp_path / "s", grep + " > sigs")
    baseline = subprocess.run(["sh", "-c", grep], capture_output=True, text=True,
                              start_new_session=True, stdin=subprocess.DEVNULL).stdout
    spawn.supervise(s)
    wait_for(lambda: len(lines(s / "sigs")) == 4)
    fields = dict(line.split(":") for line in (s / "sigs").read_text().splitlines())
    expected = dict(line.split(":") for line in baseline.splitlines())
    assert int(fields["SigBlk"], 16) == 0
    assert int(fields["SigIgn"], 16) == int(expected["SigIgn"], 16)
    assert not int(fields["SigIgn"], 16) & (1 << (signal.SIGPIPE - 1))


def test_child_gets_no_stray_descriptors(tmp_path, spawn):
    s = make_service(tmp_path / "s", "exec sleep 1000")
    spawn.supervise(s)
    pid = wait_pid(s)
    wait_for(lambda: psutil.Process(pid).name() == "sleep")
    fds = {int(fd): os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")}
    assert sorted(fds) == [0, 1, 2], fds


def test_run_gets_the_environment_unchanged(tmp_path, spawn):
    """Python coerces the C locale by setting LC_CTYPE; ./run must not see that."""
    s = make_service(tmp_path / "s", "env > env; exec sleep 1000")
    env = {"PATH": os.environ["PATH"], "LANG": "C", "MARK": "x y"}
    p = spawn.start([ours("supervise"), str(s)], env=env)
    wait_for(lambda: (s / "env").exists() and "MARK" in (s / "env").read_text())
    got = dict(line.split("=", 1) for line in (s / "env").read_text().splitlines())
    got.pop("PWD", None)
    assert got == env
    assert p.poll() is None
