"""Shared test helpers: our programs, the C references, waiting and service dirs."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

#: our console scripts live beside the interpreter running the tests
OURS = Path(sys.executable).parent


def ours(prog: str) -> str:
    """Full path of our program ``prog``."""
    path = OURS / prog
    if not path.exists():
        raise RuntimeError(f"{path} is missing: run the tests from the project's virtualenv")
    return str(path)


def wait_for(cond: Callable[[], object], timeout: float = 10.0, interval: float = 0.01,
             what: str = "condition") -> object:
    """Poll ``cond`` until it returns something true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


@dataclass
class Result:
    """What one command did: exit code, stdout and stderr."""

    rc: int
    out: str
    err: str

    def masked(self) -> "Result":
        """The same with pids and second counts masked, for transcripts."""
        return Result(self.rc, mask(self.out), mask(self.err))


def mask(text: str) -> str:
    """Replace pid and second figures and temp paths so transcripts compare."""
    text = re.sub(r"\(pid \d+\)", "(pid N)", text)
    text = re.sub(r"\d+ seconds", "S seconds", text)
    return text


def cmd(args: list[str], *, input: bytes | None = None, cwd: str | os.PathLike | None = None,
        env: dict | None = None, timeout: float = 20) -> Result:
    """Run ``args`` to completion and return its :class:`Result`."""
    p = subprocess.run(args, input=input, cwd=cwd, env=env, capture_output=True, timeout=timeout)
    return Result(p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace"))


def make_service(path: Path, script: str = "exec sleep 1000", *, down: bool = False,
                 log: str | None = None) -> Path:
    """Create a service directory with a ``run`` script (and ``log/run``)."""
    path.mkdir(parents=True, exist_ok=True)
    write_script(path / "run", script)
    if down:
        (path / "down").touch()
    if log is not None:
        (path / "log").mkdir(exist_ok=True)
        write_script(path / "log" / "run", log)
    return path


def write_script(path: Path, body: str) -> None:
    """Write an executable ``/bin/sh`` script."""
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(0o755)


def read_status(service: Path) -> bytes:
    """The raw 18 bytes of ``service/supervise/status``."""
    return (service / "supervise" / "status").read_bytes()


def status_pid(service: Path) -> int:
    """The pid recorded in the status file (0 if down or unreadable)."""
    try:
        data = read_status(service)
    except OSError:
        return 0
    return int.from_bytes(data[12:16], "little") if len(data) == 18 else 0


def pid_alive(pid: int) -> bool:
    """True if ``pid`` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def kill_tree(proc: subprocess.Popen) -> None:
    """Kill ``proc`` and every process in its process group, then reap it."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except OSError:
        pass
    try:
        proc.kill()
    except OSError:
        pass
    proc.wait(timeout=10)


def account_cmd(args: list[str]) -> None:
    """Run useradd/userdel/groupadd..., retrying while another worker holds the
    /etc/passwd lock; raise on any other failure."""
    for _ in range(50):
        p = subprocess.run(args, capture_output=True, text=True)
        if p.returncode == 0:
            return
        if "lock" not in p.stderr:
            raise RuntimeError(f"{args}: {p.stderr}")
        time.sleep(0.1)
    raise RuntimeError(f"{args}: {p.stderr}")
