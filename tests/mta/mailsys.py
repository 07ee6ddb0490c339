"""A whole qmail delivery system for the tests: QMAILHOME in a scratch
directory, qmail-start running over it, and a mailbox account.

As root (CI) the mailbox is a throw-away system account found through the
passwd database, and qmail runs as qmail's own accounts (made for the
session by tests/qmailaccounts.py).  Otherwise the mailbox is the caller,
assigned through users/assign, and everything runs as the caller.
"""
from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

from pyqmail.hier import make_queue
from tests.helpers import account_cmd, ours, wait_for

#: the programs qmail runs from QMAILHOME/bin
BIN = ("qmail-queue", "qmail-local", "qmail-remote", "qmail-getpw", "qmail-inject",
       "qmail-send", "qmail-clean", "qmail-lspawn", "qmail-rspawn", "forward", "preline")


class Mailbox:
    """A user who gets mail: name, uid, gid, home with ./Maildir/."""

    def __init__(self, name: str, uid: int, gid: int, home: Path) -> None:
        self.name, self.uid, self.gid, self.home = name, uid, gid, home
        self.maildir = home / "Maildir"

    def new(self) -> list[Path]:
        return sorted((self.maildir / "new").iterdir())

    def messages(self) -> list[bytes]:
        return [p.read_bytes() for p in self.new()]


def make_mailbox(base: Path) -> tuple[Mailbox, callable]:
    """A mailbox account and a function that removes it."""
    if os.geteuid() != 0:
        pw = pwd.getpwuid(os.getuid())
        home = base / "home"
        home.mkdir()
        box = Mailbox(pw.pw_name, pw.pw_uid, pw.pw_gid, home)
        cleanup = lambda: None  # noqa: E731
    else:
        name = f"pyqm{uuid.uuid4().hex[:8]}"
        home = base / name
        home.mkdir()
        account_cmd(["useradd", "-r", "-M", "-U", "-d", str(home), "-s", "/bin/false", name])
        pw = pwd.getpwnam(name)
        os.chown(home, pw.pw_uid, pw.pw_gid)
        box = Mailbox(name, pw.pw_uid, pw.pw_gid, home)

        def cleanup() -> None:
            # a killed delivery worker may linger a moment as a zombie of init's
            deadline = time.monotonic() + 20
            while True:
                try:
                    account_cmd(["userdel", name])
                    break
                except RuntimeError as e:
                    if "currently used" not in str(e) or time.monotonic() > deadline:
                        raise
                    time.sleep(0.2)
            subprocess.run(["groupdel", name], capture_output=True)
    home.chmod(0o755)
    for sub in ("", "/tmp", "/new", "/cur"):
        os.mkdir(f"{box.maildir}{sub}", 0o700)
        os.chown(f"{box.maildir}{sub}", box.uid, box.gid)
    return box, cleanup


class MailSystem:
    def __init__(self, me: str = "test.example") -> None:
        # under /tmp, not pytest's private tmp_path: the mailbox account must reach its home
        self.base = Path(tempfile.mkdtemp(prefix="pyqmail-sys-"))
        self.base.chmod(0o755)
        self.home = self.base / "qmail"
        (self.home / "control").mkdir(parents=True)
        (self.home / "bin").mkdir()
        self.home.chmod(0o755)
        for prog in BIN:
            (self.home / "bin" / prog).symlink_to(ours(prog))
        self.me = me
        self.control("me", me)
        self.control("locals", me)
        make_queue(str(self.home))
        self.box, self._unbox = make_mailbox(self.base)
        if os.geteuid() != 0:
            (self.home / "users").mkdir()
            # the mailbox, and (as the alias user would) every other local part
            b = self.box
            self.assign(f"={b.name}:{b.name}:{b.uid}:{b.gid}:{b.home}:::\n"
                        f"+:{b.name}:{b.uid}:{b.gid}:{b.home}:-::\n")
        self.log = self.base / "send.log"
        self.proc: subprocess.Popen | None = None
        self.env = {**os.environ, "QMAILHOME": str(self.home)}
        self.env.pop("QMAILQUEUE", None)
        self.env.pop("QMAILREMOTE", None)

    @property
    def queue(self) -> Path:
        return self.home / "queue"

    def control(self, name: str, text: str) -> None:
        path = self.home / "control" / name
        path.write_text(text if text.endswith("\n") or not text else text + "\n")
        path.chmod(0o644)

    def assign(self, text: str) -> None:
        (self.home / "users").mkdir(exist_ok=True)
        (self.home / "users" / "assign").write_text(text + ".\n")
        subprocess.run([ours("qmail-newu")], env={**os.environ, "QMAILHOME": str(self.home)},
                       check=True)

    # -- running it ------------------------------------------------------------------
    def start(self, defaultdelivery: str = "./Maildir/") -> subprocess.Popen:
        logf = open(self.log, "ab")
        self.proc = subprocess.Popen([ours("qmail-start"), defaultdelivery], cwd="/",
                                     stdin=subprocess.DEVNULL, stdout=logf, stderr=logf,
                                     env=self.env, start_new_session=True)
        logf.close()
        wait_for(lambda: "status: local" in self.logtext() or self.proc.poll() is not None,
                 what="qmail-send to start")
        wait_for(lambda: (self.home / "run" / "qmail-queue.sock").exists(),
                 what="the queue service")
        return self.proc

    def signal(self, sig: int) -> None:
        os.kill(self.proc.pid, sig)

    def stop(self) -> None:
        """TERM qmail-send; wait for it and the rest of qmail-start's children."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                pass
        self.kill()

    def kill(self) -> None:
        """kill -9 everything qmail-start started (they share its session)."""
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except OSError:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        self.proc = None

    def close(self) -> None:
        self.kill()
        self.sweep()
        self._unbox()
        shutil.rmtree(self.base, ignore_errors=True)

    def sweep(self) -> None:
        """kill -9 whatever still runs over this QMAILHOME (a supervised
        qmail-start, delivery workers), so the mailbox account can go."""
        import psutil

        for _ in range(50):
            found = []
            for p in psutil.process_iter():
                try:
                    if p.environ().get("QMAILHOME") == str(self.home):
                        found.append(p)
                except psutil.Error:
                    pass
            if not found:
                return
            for p in found:
                try:
                    p.kill()
                except psutil.Error:
                    pass
            psutil.wait_procs(found, timeout=2)

    def logtext(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def wait_log(self, text: str, count: int = 1, timeout: float = 20) -> str:
        wait_for(lambda: self.logtext().count(text) >= count, timeout=timeout,
                 what=f"{text!r} x{count} in the log:\n{self.logtext()}")
        return self.logtext()

    # -- mail --------------------------------------------------------------------------
    def inject(self, sender: str, recips: list[str], message: bytes, *,
               user: str | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
        """Run our qmail-queue (as ``user`` if given) with the message and envelope."""
        envelope = ("F" + sender + "\0" + "".join("T" + r + "\0" for r in recips) + "\0").encode()
        r, w = os.pipe()
        os.write(w, envelope)
        os.close(w)
        args = [ours("qmail-queue")]
        if user is not None:
            args = [ours("setuidgid"), user, *args]
        try:
            return subprocess.run(args, input=message, stdout=r, capture_output=False,
                                  stderr=subprocess.PIPE, env={**self.env, **(env or {})},
                                  timeout=60)
        finally:
            os.close(r)

    def queue_files(self) -> list[str]:
        """Every file in the queue but lock/ (relative names)."""
        out = []
        for dirpath, _, files in os.walk(self.queue):
            rel = os.path.relpath(dirpath, self.queue)
            if rel.startswith("lock"):
                continue
            out += [os.path.join(rel, f) for f in files]
        return sorted(out)

    def wait_empty(self, timeout: float = 30) -> None:
        """Until nothing is left in todo, info, local, remote, mess, bounce."""
        def empty() -> bool:
            return not [f for f in self.queue_files() if not f.startswith("pid")]
        wait_for(empty, timeout=timeout,
                 what=f"an empty queue: {self.queue_files()}\n{self.logtext()}")


def wait_messages(box: Mailbox, n: int, timeout: float = 20) -> list[bytes]:
    wait_for(lambda: len(box.new()) >= n, timeout=timeout, what=f"{n} messages for {box.name}")
    time.sleep(0.05)
    return box.messages()
