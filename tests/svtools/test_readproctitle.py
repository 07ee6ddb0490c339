"""readproctitle and svscanboot: errors scrolling through the process title."""
from __future__ import annotations

import os
import subprocess

import psutil

from svtools.readproctitle import scroll
from tests.helpers import make_service, ours, pid_alive, status_pid, wait_for


def title(pid: int) -> str:
    return " ".join(psutil.Process(pid).cmdline()).rstrip()


def test_scroll_keeps_first_three_bytes_and_drops_nuls():
    assert scroll(b"..........", b"ab") == b"........ab"
    assert scroll(b".....", b"abcdef") == b"...ef"
    assert scroll(b"1234567", b"xy") == b"12367xy"
    assert scroll(b"......", b"a\0b") == b"....ab"


def test_title_matches_debian(ref, spawn):
    args = ["service", "errors:", "." * 20]
    procs = []
    for prog in (ours("readproctitle"), str(ref / "readproctitle")):
        p = spawn.start([prog, *args], stdin=subprocess.PIPE)
        p.stdin.write(b"hello world")
        p.stdin.flush()
        procs.append(p)
    expected = "readproctitle service errors: .........hello world"
    wait_for(lambda: title(procs[0].pid) == expected, what="our title")
    assert psutil.Process(procs[0].pid).name() == "readproctitle"
    wait_for(lambda: title(procs[1].pid).endswith(expected.split(" ", 1)[1]), what="their title")
    for p in procs:
        p.stdin.close()
        assert p.wait(timeout=5) == 0


def test_svscanboot(tmp_path, spawn):
    top = tmp_path / "service"
    a = make_service(top / "a", "env > env; echo oops-from-a >&2; exec sleep 1000",
                     log="exec cat > /dev/null")
    boot = spawn.start([ours("svscanboot"), str(top)], env=dict(os.environ, SECRET="x"))
    wait_for(lambda: pid_alive(status_pid(a)) and pid_alive(status_pid(a / "log")))
    wait_for(lambda: "oops-from-a" in title(boot.pid), what="the error in the title")
    assert title(boot.pid).startswith("readproctitle service errors: ....")
    env = dict(line.split("=", 1) for line in (a / "env").read_text().splitlines())
    assert "SECRET" not in env
    assert env["PATH"].split(":")[0] == os.path.dirname(ours("svscan"))
    assert "/usr/bin" in env["PATH"].split(":")
