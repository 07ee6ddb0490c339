"""multilog while it runs: locks, signals, kill -9, a full disk, an unwritable directory.

Each scenario is played on the C original and on ours, each in its own
directory, and what they print and leave is compared (stamps masked).  Disk
trouble is real: a small tmpfs for ENOSPC, ``chattr +i`` for a directory that
refuses new names, a read-only tmpfs for one that cannot be written at all;
these need root, as the tests run in CI.
"""
from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest

from tests.helpers import wait_for
from tests.svtools.multilog_util import lines_of, mask, prog, snapshot

IMPLS = ("C", "ours")
root_only = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (mount, chattr)")


def start(spawn, exe: str, script: list[str], cwd: Path, stdin) -> subprocess.Popen:
    return spawn.start([exe, *script], cwd=cwd, stdin=stdin)


def delivered(pid: int, sig: int) -> bool:
    """True once ``sig`` is no longer pending for ``pid`` (it has been taken)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(("SigPnd:", "ShdPnd:")):
                if int(line.split()[1], 16) >> (sig - 1) & 1:
                    return False
    return True


class Stderr:
    """What a running process has written to its stderr pipe so far."""

    def __init__(self, p: subprocess.Popen) -> None:
        self.fd = p.stderr.fileno()
        os.set_blocking(self.fd, False)
        self.data = b""

    def has(self, text: bytes) -> bool:
        try:
            while chunk := os.read(self.fd, 4096):
                self.data += chunk
        except BlockingIOError:
            pass
        return text in self.data


def current(d: Path) -> bytes:
    try:
        return (d / "current").read_bytes()
    except OSError:
        return b""


@pytest.mark.parametrize("holder", IMPLS)
@pytest.mark.parametrize("second", IMPLS)
def test_second_multilog_refused(holder: str, second: str, ref: Path, tmp_path: Path,
                                 spawn) -> None:
    r, w = os.pipe()
    first = start(spawn, prog(holder, ref), ["./log"], tmp_path, r)
    os.close(r)
    os.write(w, b"held\n")
    wait_for(lambda: current(tmp_path / "log") == b"held\n", what="first multilog writing")
    p = subprocess.run([prog(second, ref), "t", "./log"], cwd=tmp_path, input=b"lost\n",
                       capture_output=True, timeout=10)
    assert (p.returncode, p.stderr) == (
        111, b"multilog: fatal: unable to lock directory ./log: temporary failure\n")
    os.close(w)
    assert first.wait(timeout=10) == 0
    assert current(tmp_path / "log") == b"held\n"


def _signals(exe: str, d: Path, spawn) -> tuple[dict, bytes, int, bytes]:
    """Lines, ALRM (rotate), more lines, TERM in mid-line, the rest of that line and more."""
    d.mkdir()
    r, w = os.pipe()
    p = start(spawn, exe, ["t", "./log", "-*", "+*ALERT*", "e"], d, r)
    log = d / "log"
    os.write(w, b"one\ntwo\n")
    wait_for(lambda: current(log).count(b"\n") == 2, what="two lines in current")
    # Debian's multilog can take an ALRM just before it blocks in read() and act
    # on it only with the next input: send it again until current is rotated (an
    # ALRM with current empty rotates nothing, which the end of the test checks)
    def rotated() -> bool:
        if any(n.endswith(".s") for n in os.listdir(log)):
            return True
        p.send_signal(signal.SIGALRM)
        return False
    wait_for(rotated, interval=0.5, what="rotation on ALRM")
    os.write(w, b"three ALERT\npart")
    wait_for(lambda: current(log).count(b"\n") == 1, what="third line")
    p.send_signal(signal.SIGTERM)
    wait_for(lambda: delivered(p.pid, signal.SIGTERM), what="TERM to be taken")
    assert p.poll() is None, "exited before the end of its line"
    os.write(w, b"ial\nleft over\n")
    rc = p.wait(timeout=10)
    os.set_blocking(r, False)
    left = os.read(r, 100)
    os.close(r)
    os.close(w)
    return snapshot(d), left, rc, mask(p.stderr.read())


def test_alarm_rotates_term_finishes_line(ref: Path, tmp_path: Path, spawn) -> None:
    c = _signals(prog("C", ref), tmp_path / "c", spawn)
    o = _signals(prog("ours", ref), tmp_path / "ours", spawn)
    assert o == c
    files, left, rc, err = o
    assert rc == 0 and left == b"left over\n" and err == b"@S three ALERT\n"
    assert files["log/@1.s"] == ("0o100744", b"@S one\n@S two\n")
    assert files["log/current"] == ("0o100744", b"@S three ALERT\n@S partial\n")
    assert "log/@2.s" not in files


def test_term_while_idle_exits_at_once(ref: Path, tmp_path: Path, spawn) -> None:
    for impl in IMPLS:
        r, w = os.pipe()
        (tmp_path / impl).mkdir()
        p = start(spawn, prog(impl, ref), ["./log"], tmp_path / impl, r)
        os.write(w, b"x\n")
        log = tmp_path / impl / "log"
        wait_for(lambda: current(log) == b"x\n", what=f"{impl} writing")
        p.send_signal(signal.SIGTERM)
        assert p.wait(timeout=10) == 0
        assert (log / "current").stat().st_mode & 0o777 == 0o744
        os.close(r)
        os.close(w)


def _crash(exe: str, d: Path, spawn, processor: bool) -> dict:
    """kill -9 in the middle of writing (or of running the processor), then start again."""
    d.mkdir()
    r, w = os.pipe()
    script = ["s4096", "!" + ("sleep 30; cat" if processor else "cat"), "./log"]
    p = start(spawn, exe, script, d, r)
    log = d / "log"
    os.write(w, lines_of(20) + b"unfinished li")  # 20 * 61 bytes: short of 4096 - 2000
    wait_for(lambda: current(log).count(b"\n") == 20, what="20 lines in current")
    if processor:
        os.write(w, lines_of(20, tag=b"more"))  # past 4096 - 2000: current is finished
        wait_for(lambda: (log / "previous").exists(), what="the processor to start")
    os.killpg(p.pid, signal.SIGKILL)
    p.wait(timeout=10)
    os.close(r)
    os.close(w)
    assert (log / "current").stat().st_mode & 0o777 == 0o644
    with open(d / "input2", "wb") as f:
        f.write(b"ne after the crash\n")
    with open(d / "input2", "rb") as f:
        q = subprocess.run([exe, "s4096", "!cat", "./log"], stdin=f, cwd=d, capture_output=True,
                           timeout=30)
    assert (q.returncode, q.stderr) == (0, b"")
    return snapshot(d, skip=("input2",))


@pytest.mark.parametrize("processor", [False, True], ids=["writing", "processor"])
def test_kill_9_then_restart(processor: bool, ref: Path, tmp_path: Path, spawn) -> None:
    c = _crash(prog("C", ref), tmp_path / "c", spawn, processor)
    o = _crash(prog("ours", ref), tmp_path / "ours", spawn, processor)
    assert o == c
    unfinished = [k for k in o if k.endswith(".u")]
    assert unfinished, o.keys()
    assert o["log/current"] == ("0o100744", b"ne after the crash\n")


@pytest.mark.parametrize("processor,warning", [
    # the original prints the errno it happens to have left: after start-up, ENOENT
    ("kill -9 $$",
     b"multilog: warning: processor crashed in ./log, pausing: file does not exist\n"),
    ("exit 1", b"multilog: warning: processor failed in ./log, pausing\n"),
    ("cat <&4", b"multilog: fatal: unable to run cat <&4: file does not exist\n"
                b"multilog: warning: processor failed in ./log, pausing\n"),
], ids=["crashed", "failed", "no state"])
def test_processor_trouble(processor: str, warning: bytes, ref: Path, tmp_path: Path,
                           spawn) -> None:
    """A processor that fails is run again (every 5 s; 10 s after a crash): same words as C."""
    for impl in IMPLS:
        d = tmp_path / impl
        d.mkdir()
        r, w = os.pipe()
        p = start(spawn, prog(impl, ref), ["s4096", "!" + processor, "./log"], d, r)
        os.close(r)
        os.write(w, lines_of(20))  # 20 * 61 bytes: short of 4096 - 2000
        wait_for(lambda: current(d / "log").count(b"\n") == 20, what=f"{impl} writing")
        if processor == "cat <&4":
            (d / "log" / "state").unlink()  # the processor's descriptor 4 cannot be opened
        os.write(w, lines_of(20))  # past 4096 - 2000: current is finished
        err = Stderr(p)
        wait_for(lambda: err.has(warning), what=f"{impl}: {warning!r}")
        assert err.data == warning
        assert p.poll() is None
        os.close(w)


def _tmpfs(path: Path, size: str) -> None:
    """Mount a tmpfs of ``size`` on ``path``, or skip the test where mounting is not allowed."""
    path.mkdir(parents=True, exist_ok=True)
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs",
                        str(path)], capture_output=True)
    if p.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {p.stderr.decode(errors='replace').strip()}")


def _umount(path: Path) -> None:
    subprocess.run(["umount", "-l", str(path)], check=False)


@root_only
def test_disk_full_pauses_and_loses_nothing(ref: Path, tmp_path: Path, spawn) -> None:
    """ENOSPC on a 512 KiB tmpfs: a warning every 5 s, then everything once space is back."""
    data = lines_of(5000, 60)  # 305,000 bytes
    procs = {}
    try:
        for impl in IMPLS:
            mnt = tmp_path / impl
            _tmpfs(mnt, "512k")
            (mnt / "filler").write_bytes(b"f" * 400 * 1024)
            (tmp_path / f"{impl}.in").write_bytes(data)
            with open(tmp_path / f"{impl}.in", "rb") as f:
                procs[impl] = start(spawn, prog(impl, ref), ["t", "./log"], mnt, f)
        warning = (b"multilog: warning: unable to write to ./log/current, pausing: "
                   b"out of disk space\n")
        errs = {impl: Stderr(p) for impl, p in procs.items()}
        for impl, p in procs.items():
            wait_for(lambda: errs[impl].has(warning), timeout=15,
                     what=f"{impl} to report the full disk")
            assert p.poll() is None
            (tmp_path / impl / "filler").unlink()
        for impl, p in procs.items():
            assert p.wait(timeout=20) == 0
            errs[impl].has(b"")
            assert set(errs[impl].data.splitlines(keepends=True)) == {warning}
        snaps = {impl: snapshot(tmp_path / impl) for impl in IMPLS}
        assert snaps["ours"] == snaps["C"]
        logged = b"".join(v[1] for k, v in sorted(snaps["ours"].items())
                          if k.startswith("log/@") or k == "log/current")
        assert logged == b"".join(b"@S " + line + b"\n" for line in data.splitlines())
    finally:
        for impl in IMPLS:
            if impl in procs and procs[impl].poll() is None:
                procs[impl].kill()
                procs[impl].wait()
            _umount(tmp_path / impl)


@root_only
def test_directory_refusing_names_pauses(ref: Path, tmp_path: Path, spawn) -> None:
    """chattr +i: rotation cannot rename current; the original warns, waits, goes on."""
    procs, pipes, errs = {}, {}, {}
    warning = (b"multilog: warning: unable to rename current to previous in directory ./log, "
               b"pausing: permission denied\n")
    try:
        for impl in IMPLS:
            d = tmp_path / impl
            d.mkdir()
            r, w = os.pipe()
            procs[impl] = start(spawn, prog(impl, ref), ["./log"], d, r)
            os.close(r)
            pipes[impl] = w
            os.write(w, b"before\n")
            wait_for(lambda d=d: current(d / "log") == b"before\n", what=f"{impl} writing")
            if subprocess.run(["chattr", "+i", str(d / "log")], capture_output=True).returncode:
                pytest.skip("chattr +i is not allowed here")
            procs[impl].send_signal(signal.SIGALRM)
            errs[impl] = Stderr(procs[impl])
        for impl in IMPLS:
            wait_for(lambda: errs[impl].has(warning), what=f"{impl} to warn")
            subprocess.run(["chattr", "-i", str(tmp_path / impl / "log")], check=True)
            os.write(pipes[impl], b"after\n")
            os.close(pipes[impl])
        for impl, p in procs.items():
            assert p.wait(timeout=20) == 0
            errs[impl].has(b"")
            assert errs[impl].data == warning
        assert snapshot(tmp_path / "ours") == snapshot(tmp_path / "C")
        assert snapshot(tmp_path / "ours")["log/@1.s"] == ("0o100744", b"before\n")
    finally:
        for impl in IMPLS:
            subprocess.run(["chattr", "-i", str(tmp_path / impl / "log")], check=False,
                           stderr=subprocess.DEVNULL)


@root_only
@pytest.mark.parametrize("script", [["./log"], ["./new"], ["=status"], ["=log/st", "./log"]],
                         ids=["lock", "mkdir", "status", "status in log"])
def test_read_only_file_system(script: list[str], ref: Path, tmp_path: Path) -> None:
    results = []
    try:
        for impl in IMPLS:
            mnt = tmp_path / impl
            _tmpfs(mnt, "64k")
            (mnt / "log").mkdir()
            (mnt / "log" / "lock").write_bytes(b"")
            subprocess.run(["mount", "-o", "remount,ro", str(mnt)], check=True)
            p = subprocess.run([prog(impl, ref), *script], cwd=mnt, input=b"x\n",
                               capture_output=True, timeout=10)
            results.append((p.returncode, p.stderr))
    finally:
        for impl in IMPLS:
            _umount(tmp_path / impl)
    assert results[0] == results[1]
    assert results[0][0] == 111, results[0]
    assert results[0][1].startswith(b"multilog: fatal: unable to "), results[0]


def test_huge_line_memory_stays_flat(tmp_path: Path) -> None:
    """100 MB without a newline goes through in bounded memory (read-sized pieces)."""
    from tests.helpers import ours

    exe = ours("multilog")
    r, w = os.pipe()
    with subprocess.Popen([exe, "t", "s16777215", "n20", "./log"], stdin=r, cwd=tmp_path,
                          stderr=subprocess.PIPE) as p:
        os.close(r)
        chunk = b"z" * (1 << 20)
        peak = 0
        for _ in range(100):
            os.write(w, chunk)
            peak = max(peak, _hwm(p.pid))
        os.close(w)
        assert p.wait(timeout=60) == 0
        assert p.stderr.read() == b""
    assert peak < 64 << 20, f"peak RSS {peak >> 20} MiB"
    sizes = sorted(f.stat().st_size for f in (tmp_path / "log").iterdir())
    assert sum(sizes) == 100 * (1 << 20) + 26 + 1  # stamp, line, the newline added at the end
    assert sizes[-1] == 16777215  # cut in mid-line at the size


def _hwm(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            for line in f:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0
