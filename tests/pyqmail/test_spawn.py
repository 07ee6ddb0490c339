"""pyqmail.spawn starts children as C's fork and exec would."""
from __future__ import annotations

import os
import subprocess

import pytest

from pyqmail import spawn

GREP = "grep -E '^Sig(Ign|Blk)' /proc/self/status"


def test_child_signal_state_is_a_plain_execs(tmp_path):
    """Nothing ignored or blocked beyond what a plain exec gives (glibc's posix_spawn
    would leave signals 32 and 33 ignored)."""
    out = tmp_path / "out"
    baseline = subprocess.run(["sh", "-c", GREP], capture_output=True, text=True).stdout
    pid = spawn.start(["sh", "-c", f"{GREP} > {out}"])
    _, wstat = os.waitpid(pid, 0)
    assert wstat == 0
    assert out.read_text() == baseline
    assert "SigBlk:\t0000000000000000" in baseline


def test_stdin_and_path_search(tmp_path):
    r, w = os.pipe()
    os.write(w, b"hello\n")
    os.close(w)
    out = tmp_path / "out"
    pid = spawn.spawnp(["sh", "-c", f"cat > {out}"], stdin=r)
    os.close(r)
    assert spawn.wait(pid) == 0
    assert out.read_bytes() == b"hello\n"


def test_exec_failure_raises():
    with pytest.raises(FileNotFoundError):
        spawn.start(["/nonexistent/program"])
    assert spawn.run_status(["/nonexistent/program"]) == 100
