"""qmail-tcpto and qmail-tcpok, and the tcpto table as qmail-remote keeps it."""
from __future__ import annotations

import os
import socket
import struct
import subprocess
import time

import pytest

from pyqmail import tcpto
from tests.helpers import ours


def record(ip: str, count: int, when: int, filler: int = 0) -> bytes:
    return (socket.inet_aton(ip) + bytes([count, filler, filler, filler]) + struct.pack("<I", when)
            + bytes([filler]) * 4)


@pytest.fixture
def home(tmp_path):
    (tmp_path / "queue" / "lock").mkdir(parents=True)
    return tmp_path


def table_path(home) -> str:
    return str(home / "queue" / "lock" / "tcpto")


def run(prog: str, home) -> subprocess.CompletedProcess:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "QMAILHOME": str(home)}
    return subprocess.run([ours(prog)], env=env, capture_output=True, timeout=30)


def test_tcpto_prints_table(home):
    now = int(time.time())
    data = (record("10.0.0.1", 1, now - 100) + record("10.0.0.2", 0, now - 50)
            + record("192.168.1.20", 10, now - 7200, filler=0xff) + bytes(1024 - 48))
    (home / "queue" / "lock" / "tcpto").write_bytes(data)
    p = run("qmail-tcpto", home)
    assert p.returncode == 0 and p.stderr == b""
    lines = p.stdout.decode().splitlines()
    assert len(lines) == 2
    ip, rest = lines[0].split(" timed out ")
    secs, count = rest.split(" seconds ago; # recent timeouts: ")
    assert ip == "10.0.0.1" and count == "1" and 100 <= int(secs) < 130
    assert lines[1].startswith("192.168.1.20 timed out 7")
    assert lines[1].endswith(" seconds ago; # recent timeouts: 10")


def test_tcpto_empty_and_short_tables(home):
    (home / "queue" / "lock" / "tcpto").write_bytes(bytes(1024))
    assert run("qmail-tcpto", home).stdout == b""
    # a short file: only whole records count
    (home / "queue" / "lock" / "tcpto").write_bytes(record("10.0.0.3", 2, int(time.time())) + b"\1" * 15)
    out = run("qmail-tcpto", home).stdout.decode()
    assert out.startswith("10.0.0.3 timed out ") and out.count("\n") == 1


def test_tcpto_errors_on_stdout(home, tmp_path):
    p = run("qmail-tcpto", home)
    assert (p.returncode, p.stdout, p.stderr) == (
        111, b"fatal: unable to open tcpto: file does not exist\n", b"")
    p = run("qmail-tcpto", tmp_path / "nothere")
    assert (p.returncode, p.stdout) == (111, b"fatal: unable to chdir: file does not exist\n")


def test_tcpok_clears(home):
    path = home / "queue" / "lock" / "tcpto"
    path.write_bytes(record("10.0.0.1", 5, 12345) * 64 + b"tail")
    p = run("qmail-tcpok", home)
    assert (p.returncode, p.stdout, p.stderr) == (0, b"", b"")
    assert path.read_bytes() == bytes(1024) + b"tail"  # the file is overwritten, not truncated
    path.write_bytes(b"")
    assert run("qmail-tcpok", home).returncode == 0
    assert path.read_bytes() == bytes(1024)


def test_tcpok_errors(home, tmp_path):
    p = run("qmail-tcpok", home)
    assert (p.returncode, p.stdout) == (111, b"")
    assert p.stderr.decode() == (f"qmail-tcpok: fatal: unable to write {home}/queue/lock/tcpto: "
                                 "file does not exist\n")
    p = run("qmail-tcpok", tmp_path / "nothere")
    assert p.stderr.decode() == (f"qmail-tcpok: fatal: unable to chdir to {tmp_path}/nothere: "
                                 "file does not exist\n")


# -- the table's rules, with the clock in our hands

@pytest.fixture
def clock(monkeypatch):
    now = [1_700_000_000.0]
    monkeypatch.setattr(tcpto.time, "time", lambda: now[0])
    return now


def fresh(home, data: bytes = bytes(1024)) -> tcpto.TcpTo:
    with open(table_path(home), "wb") as f:
        f.write(data)
    return tcpto.TcpTo(table_path(home))


def read(home) -> bytes:
    with open(table_path(home), "rb") as f:
        return f.read()


def test_two_timeouts_two_minutes_apart_mean_skip(home, clock):
    t = fresh(home)
    assert not t.skip("10.1.1.1")
    t.record("10.1.1.1", True)
    assert tcpto.entries(read(home)) == [("10.1.1.1", 1, 1_700_000_000)]
    assert not t.skip("10.1.1.1")  # one timeout is not enough
    clock[0] += 60
    t.record("10.1.1.1", True)  # within two minutes: not counted
    assert tcpto.entries(read(home)) == [("10.1.1.1", 1, 1_700_000_000)]
    clock[0] += 61
    t.record("10.1.1.1", True)
    assert tcpto.entries(read(home)) == [("10.1.1.1", 2, 1_700_000_121)]
    assert t.skip("10.1.1.1")
    clock[0] += (60 + 31) << 6  # past the longest back-off
    assert not t.skip("10.1.1.1")


def test_success_clears_only_a_known_address(home, clock):
    t = fresh(home, record("10.1.1.1", 3, 1_699_999_000) + bytes(1024 - 16))
    assert t.skip("10.1.1.1")
    t.record("10.1.1.1", False)
    assert read(home)[4] == 0 and read(home)[:4] == socket.inet_aton("10.1.1.1")
    t.skip("10.9.9.9")
    t.record("10.9.9.9", False)  # never seen: nothing written
    assert tcpto.entries(read(home)) == []


def test_count_capped_at_ten(home, clock):
    t = fresh(home, record("10.1.1.1", 10, 1) + bytes(1024 - 16))
    t.skip("10.1.1.1")
    t.record("10.1.1.1", True)
    assert tcpto.entries(read(home)) == [("10.1.1.1", 10, 1_700_000_000)]


def test_full_table_reuses_the_stalest_slot(home, clock):
    data = b"".join(record(f"10.0.0.{i}", 1, 1_699_000_000 + i * 10) for i in range(64))
    # slot 1 is as old as slot 0, but each timeout weighs 1024 s more: slot 0 goes
    data = data[:16] + record("10.0.0.1", 5, 1_699_000_000) + data[32:]
    t = fresh(home, data)
    t.record("10.2.2.2", True)
    got = read(home)
    assert got[:16] == socket.inet_aton("10.2.2.2") + bytes([1, 0, 0, 0]) + struct.pack("<I", 1_700_000_000) + bytes(4)
    assert got[16:] == data[16:]


def test_missing_or_empty_table_is_harmless(home, clock):
    t = tcpto.TcpTo(table_path(home))
    assert not t.skip("10.1.1.1")
    t.record("10.1.1.1", True)
    assert not os.path.exists(table_path(home))
    t = fresh(home, b"")
    t.record("10.1.1.1", True)
    assert read(home) == b""
