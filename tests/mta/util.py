"""Helpers for the mta tests: running our programs on a message file, a fake qmail-queue."""
from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.helpers import ours

MESSAGE = b"From: a@example.org\nSubject: test\n\nFrom the body\n>From quoted\nlast line\n"

FAKE_QQ = """#!/bin/sh
# a stand-in for qmail-queue: keep the message (fd 0) and the envelope (fd 1)
cat > "$QQ_DIR/msg"
cat 0<&1 > "$QQ_DIR/env"
pwd > "$QQ_DIR/cwd"
exit $(cat "$QQ_DIR/exitcode" 2>/dev/null || echo 0)
"""


@dataclass
class Run:
    rc: int
    out: bytes
    err: bytes


def run(prog: str, args: list, *, message: bytes | None = MESSAGE, tmp: Path,
        env: dict | None = None, cwd: Path | None = None, timeout: float = 30) -> Run:
    """Run our ``prog`` with ``args``, the message in a file on stdin."""
    full = dict(os.environ)
    full.pop("QMAILQUEUE", None)
    full.update(env or {})
    if message is None:
        stdin = subprocess.DEVNULL
    else:
        path = tmp / "message.in"
        path.write_bytes(message)
        stdin = open(path, "rb")
    try:
        p = subprocess.run([ours(prog), *map(str, args)], stdin=stdin, capture_output=True,
                           env=full, cwd=cwd, timeout=timeout)
    finally:
        if message is not None:
            stdin.close()
    return Run(p.returncode, p.stdout, p.stderr)


class FakeQueue:
    """A QMAILHOME whose bin/qmail-queue records what it is given."""

    def __init__(self, root: Path) -> None:
        self.home = root / "qmailhome"
        self.dir = root / "qq"
        (self.home / "bin").mkdir(parents=True)
        self.dir.mkdir()
        qq = self.home / "bin" / "qmail-queue"
        qq.write_text(FAKE_QQ)
        qq.chmod(0o755)
        self.env = {"QMAILHOME": str(self.home), "QQ_DIR": str(self.dir)}

    def exit_with(self, code: int) -> None:
        (self.dir / "exitcode").write_text(f"{code}\n")

    @property
    def message(self) -> bytes:
        return (self.dir / "msg").read_bytes()

    @property
    def envelope(self) -> bytes:
        return (self.dir / "env").read_bytes()

    @property
    def called(self) -> bool:
        return (self.dir / "env").exists()
