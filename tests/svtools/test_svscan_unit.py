"""svscan's table of services, with the fork seam faked: limits and bookkeeping."""
from __future__ import annotations

import itertools
import os

import pytest

from svtools import svscan


@pytest.fixture
def fake_spawn(monkeypatch):
    calls = []
    pids = itertools.count(100000)

    def spawn(name, fdmove, chdir_to, what):
        calls.append((name, fdmove is not None, chdir_to))
        return next(pids)

    monkeypatch.setattr(svscan, "spawn_supervise", spawn)
    monkeypatch.setattr(svscan.Scanner, "reap", lambda self: None)
    return calls


def test_at_most_1000_services(tmp_path, monkeypatch, fake_spawn, capfd):
    for i in range(1001):
        (tmp_path / f"s{i:04}").mkdir()
    monkeypatch.chdir(tmp_path)
    sc = svscan.Scanner()
    sc.scan()
    assert len(sc.services) == 1000
    assert len(fake_spawn) == 1000
    err = capfd.readouterr().err
    assert err.count(": running too many services\n") == 1
    assert err.startswith("svscan: warning: unable to start s")


def test_log_gets_pipe_and_directory(tmp_path, monkeypatch, fake_spawn):
    (tmp_path / "a" / "log").mkdir(parents=True)
    (tmp_path / "b").mkdir()
    (tmp_path / ".c").mkdir()
    monkeypatch.chdir(tmp_path)
    sc = svscan.Scanner()
    sc.scan()
    assert sorted(fake_spawn) == [("a", True, None), ("b", False, None), ("log", True, "a")]
    (a,) = [s for s in sc.services if s.flaglog]
    for fd in a.pipe:
        assert not os.get_inheritable(fd)
    sc.scan()  # everything running: nothing new started
    assert len(fake_spawn) == 3


def test_forgets_a_vanished_service_only_when_its_supervise_is_gone(tmp_path, monkeypatch,
                                                                    fake_spawn):
    (tmp_path / "a" / "log").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    sc = svscan.Scanner()
    sc.scan()
    (tmp_path / "a" / "log").rmdir()
    (tmp_path / "a").rmdir()
    sc.scan()
    assert len(sc.services) == 1  # supervise still running
    sv = sc.services[0]
    sv.pid = sv.pidlog = 0
    sc.scan()
    assert sc.services == []
