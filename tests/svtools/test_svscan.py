"""svscan with real processes: one supervise per service, log pipes, rescans, scale."""
from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import psutil

from tests.helpers import cmd, make_service, ours, pid_alive, status_pid, wait_for

COUNTER = 'i=0; while :; do i=$((i+1)); echo "$$ $i"; sleep 0.02; done'


def supervisors(svscan_pid: int) -> dict[str, psutil.Process]:
    """The supervise children of svscan, keyed by their command line."""
    out = {}
    for p in psutil.Process(svscan_pid).children():
        try:
            if p.name() == "supervise":
                out[" ".join(p.cmdline()).rstrip()] = p
        except psutil.NoSuchProcess:
            pass
    return out


def all_up(dirs: list[Path]) -> bool:
    return all(pid_alive(status_pid(d)) for d in dirs)


def test_starts_one_supervise_per_directory(tmp_path, spawn):
    top = tmp_path / "service"
    a = make_service(top / "a")
    b = make_service(top / "b", log="exec cat > /dev/null")
    make_service(top / ".hidden")
    (top / "file").write_text("not a service\n")
    real = make_service(tmp_path / "elsewhere" / "c")
    (top / "c").symlink_to(real)
    scan = spawn.start([ours("svscan"), str(top)])
    wait_for(lambda: all_up([a, b, b / "log", real]), what="services up")
    sups = supervisors(scan.pid)
    assert sorted(sups) == ["supervise a", "supervise b", "supervise c", "supervise log"]
    assert psutil.Process(scan.pid).name() == "svscan"
    assert not (top / ".hidden" / "supervise").exists()
    assert psutil.Process(sups["supervise log"].pid).cwd() == str(b / "log")


def test_supervise_is_ours_whatever_path_holds(tmp_path, spawn, ref):
    top = tmp_path / "service"
    a = make_service(top / "a")
    env = dict(os.environ, PATH=f"{ref}:{os.environ['PATH']}")
    scan = spawn.start([ours("svscan"), str(top)], env=env)
    wait_for(lambda: all_up([a]))
    (sup,) = supervisors(scan.pid).values()
    assert sup.exe() == psutil.Process(scan.pid).exe()  # a fork of ours, not Debian's binary


def test_log_pipe_survives_restarts_of_either_side(tmp_path, spawn):
    top = tmp_path / "service"
    s = make_service(top / "s", COUNTER, log="exec cat >> out")
    out = s / "log" / "out"
    spawn.start([ours("svscan"), str(top)])
    wait_for(lambda: all_up([s, s / "log"]) and out.exists() and out.stat().st_size > 0)
    time.sleep(1.1)
    # kill the logger only with nothing in flight: a cat killed between its read and
    # its write loses that line whatever svscan does.  The writer pauses, the pipe
    # drains, the logger dies, and what the writer says next waits in the pipe.
    writer = status_pid(s)
    os.kill(writer, signal.SIGSTOP)
    sizes = []
    wait_for(lambda: (sizes.append(out.stat().st_size), len(sizes) > 30
                      and sizes[-1] == sizes[-30])[1], what="the pipe to drain")
    logpid = status_pid(s / "log")
    os.kill(logpid, signal.SIGKILL)
    wait_for(lambda: not pid_alive(logpid))
    os.kill(writer, signal.SIGCONT)
    wait_for(lambda: pid_alive(status_pid(s / "log")) and status_pid(s / "log") != logpid)
    time.sleep(1.1)
    svcpid = status_pid(s)
    os.kill(svcpid, signal.SIGKILL)
    wait_for(lambda: pid_alive(status_pid(s)) and status_pid(s) != svcpid)
    newpid = status_pid(s)
    wait_for(lambda: f"{newpid} 5\n" in out.read_text(), what="output of the restarted service")
    seen: dict[str, list[int]] = {}
    for line in out.read_text().splitlines():
        pid, n = line.split()
        seen.setdefault(pid, []).append(int(n))
    assert list(seen) == [str(svcpid), str(newpid)]
    for counts in seen.values():  # nothing lost across the log's restart
        assert counts == list(range(1, len(counts) + 1))


def test_restarts_a_killed_supervise(tmp_path, spawn):
    top = tmp_path / "service"
    a = make_service(top / "a")
    scan = spawn.start([ours("svscan"), str(top)])
    wait_for(lambda: all_up([a]))
    (sup,) = supervisors(scan.pid).values()
    child = status_pid(a)
    sup.kill()
    os.kill(child, signal.SIGKILL)
    wait_for(lambda: cmd([ours("svok"), str(a)]).rc == 0 and status_pid(a) not in (0, child),
             timeout=12, what="a new supervise")
    (sup2,) = supervisors(scan.pid).values()
    assert sup2.pid != sup.pid


def test_new_directory_picked_up_vanished_one_left_running(tmp_path, spawn):
    top = tmp_path / "service"
    a = make_service(top / "a")
    spawn.start([ours("svscan"), str(top)])
    wait_for(lambda: all_up([a]))
    child = status_pid(a)
    moved = tmp_path / "moved"
    a.rename(moved)
    b = make_service(top / "b")
    wait_for(lambda: all_up([b]), timeout=12)
    assert pid_alive(child)
    assert status_pid(moved) == child
    assert cmd([ours("svok"), str(moved)]).rc == 0


def test_two_hundred_services(tmp_path, spawn):
    top = tmp_path / "service"
    dirs = [make_service(top / f"s{i:03}") for i in range(200)]
    scan = spawn.start([ours("svscan"), str(top)])
    wait_for(lambda: all_up(dirs), timeout=60, interval=0.2, what="200 services up")
    assert len(supervisors(scan.pid)) == 200
    r = cmd([ours("svstat"), *map(str, dirs)])
    assert r.out.count(": up (pid ") == 200
    r = cmd([ours("svc"), "-dx", *map(str, dirs)])
    assert r.rc == 0
    wait_for(lambda: not supervisors(scan.pid) or
             all(p.status() == psutil.STATUS_ZOMBIE for p in supervisors(scan.pid).values()),
             timeout=30, what="every supervise gone")


def test_service_environment_is_svscans(tmp_path, spawn):
    top = tmp_path / "service"
    a = make_service(top / "a", 'echo "$PYQ_MARK" > mark; exec sleep 1000')
    spawn.start([ours("svscan"), str(top)], env=dict(os.environ, PYQ_MARK="hello"))
    wait_for(lambda: (a / "mark").exists() and (a / "mark").read_text() == "hello\n")


def test_stdout_goes_to_log_stderr_stays(tmp_path, spawn):
    top = tmp_path / "service"
    s = make_service(top / "s", "echo to-log; echo to-stderr >&2; exec sleep 1000",
                     log="exec cat >> out")
    with open(tmp_path / "errors", "wb") as errors:
        spawn.start([ours("svscan"), str(top)], stderr=errors)
    wait_for(lambda: (s / "log" / "out").exists() and (s / "log" / "out").read_text() == "to-log\n")
    wait_for(lambda: (tmp_path / "errors").read_bytes() == b"to-stderr\n")
