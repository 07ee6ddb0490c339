"""Fixtures shared by every suite."""
from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest

from tests import qmailaccounts, reference
from tests.helpers import kill_tree, ours, wait_for


_made_accounts: dict | None = None


def pytest_sessionstart(session: pytest.Session) -> None:
    """As root, qmail's accounts exist for the whole run (made here if missing)."""
    global _made_accounts
    if not hasattr(session.config, "workerinput"):
        _made_accounts = qmailaccounts.make()


def pytest_sessionfinish(session: pytest.Session) -> None:
    if _made_accounts is not None:
        qmailaccounts.remove(_made_accounts)


@pytest.fixture(scope="session")
def ref() -> Path:
    """Directory of Debian's daemontools and ucspi-tcp binaries (the C originals)."""
    return reference.bindir()


class Spawner:
    """Starts long-running programs in their own process groups; kills them all at the end."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen] = []
        self.dirs: list[Path] = []

    def start(self, args: list[str], **kw) -> subprocess.Popen:
        kw.setdefault("stdin", subprocess.DEVNULL)
        kw.setdefault("stdout", subprocess.DEVNULL)
        kw.setdefault("stderr", subprocess.PIPE)
        p = subprocess.Popen(args, start_new_session=True, **kw)
        self.procs.append(p)
        return p

    def supervise(self, service: Path, prog: str | None = None) -> subprocess.Popen:
        """Start ``supervise service`` (ours unless ``prog`` names another) and wait for ok."""
        p = self.start([prog or ours("supervise"), str(service)])
        self.dirs.append(service)
        wait_for(lambda: _ok(service) or p.poll() is not None, what=f"supervise on {service}")
        return p

    def close(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                kill_tree(p)
            else:
                # a supervise that exited may have left its service's group behind
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except OSError:
                    pass
            for f in (p.stdout, p.stderr, p.stdin):
                if f:
                    f.close()


def _ok(service: Path) -> bool:
    try:
        fd = os.open(service / "supervise" / "ok", os.O_WRONLY | os.O_NONBLOCK)
    except OSError:
        return False
    os.close(fd)
    return True


@pytest.fixture
def spawn():
    """A :class:`Spawner` whose processes die with the test."""
    s = Spawner()
    yield s
    s.close()
