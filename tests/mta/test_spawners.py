"""qmail-clean, qmail-lspawn and qmail-rspawn run directly, spoken to as qmail-send
does: requests and commands on their stdin, answers and reports on their stdout.

Spawner protocol (spawn.c): at start one byte, how many deliveries at once (120);
each command is a delivery number byte, ``split/N``, the sender and the
recipient, each ending in NUL; each report is the delivery number byte, K/Z/D
and a text, and a NUL."""
from __future__ import annotations

import os
import pwd
import re
import select
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from mta import qmail_lspawn, qmail_rspawn
from pyqmail.hier import make_queue
from pyqmail.users import (QLX_CDB, QLX_EXECHARD, QLX_EXECPW, QLX_EXECSOFT, QLX_NFS,
                           QLX_NOALIAS, QLX_NOMEM, QLX_ROOT, QLX_SYS, QLX_USAGE)
from tests.helpers import ours, wait_for, write_script
from tests.mta.mailsys import MailSystem

ROOT = os.geteuid() == 0
needs_root = pytest.mark.skipif(not ROOT, reason="changing file owners needs root")
MSG = b"Subject: spawned\n\nhello\n"


def as_user(user: str, args: list[str]) -> list[str]:
    """``args`` run as ``user`` (through our setuidgid) when we are root."""
    return [ours("setuidgid"), user, *args] if ROOT else args


def read_some(fd: int, timeout: float) -> bytes:
    r, _, _ = select.select([fd], [], [], timeout)
    if not r:
        raise AssertionError(f"nothing to read within {timeout}s")
    return os.read(fd, 65536)


# -- qmail-clean -----------------------------------------------------------------------

class Clean:
    """qmail-clean over a scratch queue, run as qmailq as qmail-start does."""

    def __init__(self, spawn, home: Path) -> None:
        env = {**os.environ, "QMAILHOME": str(home)}
        self.p = spawn.start(as_user("qmailq", [ours("qmail-clean")]), env=env, cwd="/",
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE)

    def ask(self, request: bytes) -> bytes:
        os.write(self.p.stdin.fileno(), request + b"\0")
        return read_some(self.p.stdout.fileno(), 20)

    def close(self) -> int:
        self.p.stdin.close()
        return self.p.wait(timeout=20)


@pytest.fixture
def qhome():
    home = Path(tempfile.mkdtemp(prefix="pyqmail-clean-"))
    home.chmod(0o755)
    make_queue(str(home))
    yield home
    shutil.rmtree(home, ignore_errors=True)


def touch(path: Path, data: bytes = b"x") -> Path:
    path.write_bytes(data)
    return path


def test_clean_foop_removes_intd_and_mess(spawn, qhome: Path) -> None:
    q = qhome / "queue"
    n = 4711  # 4711 % 23 == 19
    intd = touch(q / "intd" / str(n))
    mess = touch(q / "mess" / "19" / str(n))
    info = touch(q / "info" / "19" / str(n))
    todo = touch(q / "todo" / str(n))
    c = Clean(spawn, qhome)
    assert c.ask(b"foop/%d" % n) == b"+"
    assert not intd.exists() and not mess.exists()
    assert info.exists() and todo.exists()  # not qmail-clean's business
    # already gone is fine: answered + again
    assert c.ask(b"foop/%d" % n) == b"+"
    assert c.close() == 0


def test_clean_todo_removes_intd_and_todo(spawn, qhome: Path) -> None:
    q = qhome / "queue"
    n = 23 * 5  # split 0
    intd = touch(q / "intd" / str(n))
    todo = touch(q / "todo" / str(n))
    mess = touch(q / "mess" / "0" / str(n))
    c = Clean(spawn, qhome)
    assert c.ask(b"todo/%d" % n) == b"+"
    assert not intd.exists() and not todo.exists()
    assert mess.exists()
    assert c.close() == 0


def test_clean_answers_bang_when_a_file_cannot_go(spawn, qhome: Path) -> None:
    q = qhome / "queue"
    (q / "intd" / "77").mkdir()  # unlink() of a directory fails (EISDIR)
    touch(q / "intd" / "77" / "inside")
    mess = touch(q / "mess" / str(77 % 23) / "77")
    c = Clean(spawn, qhome)
    assert c.ask(b"foop/77") == b"!"
    assert mess.exists()  # stops at the first file it cannot remove
    assert c.ask(b"todo/77") == b"!"


@pytest.mark.parametrize("request_", [
    b"foop/",  # shorter than 7 with its NUL
    b"todo/",
    b"abc",
    b"foop/" + b"1" * 95,  # longer than 100 with its NUL
    b"fuup/12345",
    b"mess/12345",
    b"",
])
def test_clean_malformed_requests_answer_x(spawn, qhome: Path, request_: bytes) -> None:
    q = qhome / "queue"
    keep = [touch(q / "intd" / "12345"), touch(q / "todo" / "12345"),
            touch(q / "mess" / str(12345 % 23) / "12345")]
    c = Clean(spawn, qhome)
    assert c.ask(request_) == b"x"
    # and it goes on answering
    assert c.ask(b"todo/1") == b"+"
    assert all(p.exists() for p in keep)


def test_clean_longest_request_is_taken(spawn, qhome: Path) -> None:
    # 99 bytes and the NUL: exactly qmail-clean's limit of 100
    n = "1" * 94
    c = Clean(spawn, qhome)
    assert c.ask(b"todo/" + n.encode()) == b"+"


def test_clean_removes_ossified_pid_files_at_start(spawn, qhome: Path) -> None:
    pid = qhome / "queue" / "pid"
    now = time.time()
    old = touch(pid / "111.1.1")
    os.utime(old, (now - 37 * 3600, now))  # last accessed 37 hours ago
    young = touch(pid / "222.1.1")
    os.utime(young, (now - 35 * 3600, now - 35 * 3600))
    written = touch(pid / "333.1.1")  # modified long ago but read recently: it is atime
    os.utime(written, (now, now - 40 * 3600))
    c = Clean(spawn, qhome)
    assert c.ask(b"todo/1") == b"+"  # answered: the start-up cleanup is done
    assert sorted(p.name for p in pid.iterdir()) == ["222.1.1", "333.1.1"]
    assert c.close() == 0


# -- the spawners ----------------------------------------------------------------------

class Spawner:
    """qmail-lspawn or qmail-rspawn, started with cwd / (they find the queue)."""

    def __init__(self, spawn, args: list[str], env: dict) -> None:
        self.p = spawn.start(args, env=env, cwd="/", stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE)
        self.buf = b""
        self.first = self._need(1) and self._take(1)

    def _fill(self, timeout: float) -> None:
        data = read_some(self.p.stdout.fileno(), timeout)
        if not data:
            raise AssertionError(f"end of output; stderr {self.p.stderr.read()!r}")
        self.buf += data

    def _need(self, n: int, timeout: float = 30) -> bool:
        while len(self.buf) < n:
            self._fill(timeout)
        return True

    def _take(self, n: int) -> bytes:
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def send(self, delnum: int, messid: bytes, sender: bytes, recip: bytes) -> None:
        os.write(self.p.stdin.fileno(), bytes([delnum]) + messid + b"\0" + sender + b"\0"
                 + recip + b"\0")

    def report(self, timeout: float = 30) -> tuple[int, bytes]:
        """The next report: (delivery number, K/Z/D and text)."""
        self._need(1, timeout)
        while self.buf.find(b"\0", 1) < 0:
            self._fill(timeout)
        end = self.buf.find(b"\0", 1)
        rep = self._take(end + 1)
        return rep[0], rep[1:-1]

    def close(self) -> int:
        """End the commands; the exit code once every delivery is reported."""
        self.p.stdin.close()
        rc = self.p.wait(timeout=30)
        assert self.p.stdout.read() == self.buf == b""  # nothing unread
        return rc


def processes_of(uid: int) -> list[str]:
    """Every process (zombies too) whose real uid is ``uid``."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/status") as f:
                status = f.read()
        except OSError:
            continue
        m = re.search(r"^Uid:\t(\d+)\t", status, re.M)
        if m and int(m.group(1)) == uid:
            found.append(pid)
    return found


@pytest.fixture
def sys_(spawn):
    s = MailSystem()
    yield s
    # the spawners go first; qmail-lspawn's delivery workers outlive it for a moment
    # (they end when its socket does) and, orphaned, wait for init to reap them:
    # the mailbox account can be removed only once they are gone
    spawn.close()
    if ROOT:
        wait_for(lambda: not processes_of(s.box.uid), timeout=30,
                 what=f"the processes of {s.box.name} to end")
    s.close()


def put_message(sys_: MailSystem, num: int, data: bytes = MSG, uid: int | None = None) -> bytes:
    """mess/<num%23>/num as qmail-queue leaves it (owned by the queue's owner);
    its messid as qmail-send names it."""
    path = sys_.queue / "mess" / str(num % 23) / str(num)
    path.write_bytes(data)
    path.chmod(0o644)
    if ROOT:
        os.chown(path, sys_.queue.stat().st_uid if uid is None else uid, 0)
    return f"{num % 23}/{num}".encode()


def lspawn(spawn, sys_: MailSystem) -> Spawner:
    return Spawner(spawn, [ours("qmail-lspawn"), "./Maildir/"], sys_.env)


def rspawn(spawn, sys_: MailSystem, remote: str) -> Spawner:
    env = {**sys_.env, "QMAILREMOTE": remote}
    return Spawner(spawn, as_user("qmailr", [ours("qmail-rspawn")]), env)


def remote_script(sys_: MailSystem, name: str, body: str) -> str:
    """A stand-in for qmail-remote; it records its args, stdin and cwd in out/."""
    out = sys_.base / "out"
    out.mkdir(exist_ok=True)
    out.chmod(0o777)
    path = sys_.base / name
    write_script(path, f'printf "%s\\n" "$@" > {out}/args\ncat > {out}/msg\n'
                       f'pwd > {out}/cwd\n{body}')
    return str(path)


SPAWNERS = ["qmail-lspawn", "qmail-rspawn"]


def start(prog: str, spawn, sys_: MailSystem) -> Spawner:
    if prog == "qmail-lspawn":
        return lspawn(spawn, sys_)
    return rspawn(spawn, sys_, remote_script(sys_, "remote-ok", "printf 'r\\0Kok\\n\\0'"))


@pytest.mark.parametrize("prog", SPAWNERS)
def test_spawner_greets_with_its_concurrency_and_exits_at_eof(spawn, sys_, prog: str) -> None:
    sp = start(prog, spawn, sys_)
    assert sp.first == bytes([120])
    assert sp.close() == 0


@pytest.mark.parametrize("prog", SPAWNERS)
@pytest.mark.parametrize("messid, recip, report", [
    (b"1/x", b"a@b", b"DInternal error: messid has nonnumerics. (#5.3.5)\n"),
    (b"/12", b"a@b", b"DInternal error: messid has nonnumerics. (#5.3.5)\n"),
    (b"../7", b"a@b", b"DInternal error: messid has nonnumerics. (#5.3.5)\n"),
    (b"1" * 101, b"a@b", b"DInternal error: messid too long. (#5.3.5)\n"),
    # spawn.c counts the NUL: 100 digits are already too long
    (b"1" * 100, b"a@b", b"DInternal error: messid too long. (#5.3.5)\n"),
    (b"1" * 99, b"a@b", b"Zqmail-spawn unable to open message. (#4.3.0)\n"),
    (b"", b"a@b", b"DInternal error: messid too short. (#5.3.5)\n"),
    (b"3/26", b"nohost", b"DSorry, address must include host name. (#5.1.3)\n"),
    (b"3/26", b"a@b", b"Zqmail-spawn unable to open message. (#4.3.0)\n"),
    (b"3", b"a@b", b"ZSorry, message has wrong type. (#4.3.5)\n"),  # a directory
])
def test_spawn_c_errors(spawn, sys_, prog: str, messid: bytes, recip: bytes,
                        report: bytes) -> None:
    sp = start(prog, spawn, sys_)
    sp.send(7, messid, b"s@example.org", recip)
    assert sp.report() == (7, report)
    assert sp.close() == 0


@pytest.mark.parametrize("prog", SPAWNERS)
def test_spawn_c_delnum_too_big(spawn, sys_, prog: str) -> None:
    sp = start(prog, spawn, sys_)
    messid = put_message(sys_, 100)
    sp.send(120, messid, b"s@example.org", b"a@b")
    assert sp.report() == (120, b"ZInternal error: delnum too big. (#4.3.5)\n")
    sp.send(255, messid, b"s@example.org", b"a@b")
    assert sp.report() == (255, b"ZInternal error: delnum too big. (#4.3.5)\n")
    assert sp.close() == 0


@needs_root
@pytest.mark.parametrize("prog", SPAWNERS)
def test_spawn_c_wrong_owner(spawn, sys_, prog: str) -> None:
    sp = start(prog, spawn, sys_)
    messid = put_message(sys_, 100, uid=pwd.getpwnam("nobody").pw_uid)
    sp.send(0, messid, b"s@example.org", f"{sys_.box.name}@test.example".encode())
    assert sp.report() == (0, b"ZSorry, message has wrong owner. (#4.3.5)\n")
    assert sp.close() == 0
    assert sys_.box.new() == []


# -- qmail-lspawn ----------------------------------------------------------------------

def test_lspawn_delivers_as_the_user(spawn, sys_: MailSystem) -> None:
    box = sys_.box
    sp = lspawn(spawn, sys_)
    messid = put_message(sys_, 100)
    sp.send(0, messid, b"s@example.org", f"{box.name}@test.example".encode())
    assert sp.report() == (0, b"Kdid 1+0+0\n")
    [path] = box.new()
    assert path.read_bytes() == (b"Return-Path: <s@example.org>\nDelivered-To: "
                                 + f"{box.name}@test.example\n".encode() + MSG)
    assert path.stat().st_uid == box.uid
    assert sp.close() == 0


def test_lspawn_unknown_extension_fails(spawn, sys_: MailSystem) -> None:
    sp = lspawn(spawn, sys_)
    messid = put_message(sys_, 101)
    sp.send(3, messid, b"s@example.org", f"{sys_.box.name}-nosuch@test.example".encode())
    assert sp.report() == (3, b"DSorry, no mailbox here by that name. (#5.1.1)\n")
    assert sp.close() == 0


def test_lspawn_refuses_root(spawn, sys_: MailSystem) -> None:
    sys_.assign("=rootbox:root:0:0:/root:::\n")
    sp = lspawn(spawn, sys_)
    messid = put_message(sys_, 102)
    sp.send(1, messid, b"s@example.org", b"rootbox@test.example")
    assert sp.report() == (1, b"ZNot allowed to perform deliveries as root.\n")
    assert sp.close() == 0


def test_lspawn_empty_local_part_is_done(spawn, sys_: MailSystem) -> None:
    sp = lspawn(spawn, sys_)
    messid = put_message(sys_, 103)
    sp.send(2, messid, b"s@example.org", b"@test.example")
    assert sp.report() == (2, b"K")
    assert sp.close() == 0
    assert sys_.box.new() == []


def test_lspawn_truncates_long_reports(spawn, sys_: MailSystem) -> None:
    box = sys_.box
    # as root qmail-getpw gives extension "big"; otherwise users/assign's
    # wildcard gives all of the local part
    for name in (".qmail-big", f".qmail-{box.name}-big"):
        path = box.home / name
        path.write_text("|printf '%04000d' 0; exit 100\n")
        path.chmod(0o644)
        if ROOT:
            os.chown(path, box.uid, box.gid)
    sp = lspawn(spawn, sys_)
    messid = put_message(sys_, 104)
    sp.send(4, messid, b"s@example.org", f"{box.name}-big@test.example".encode())
    # truncreport 3000: 3000 - 31 - 3 bytes kept, then the apology
    assert sp.report() == (4, b"D" + b"0" * 2966 + b"\nError report too long, sorry.\n")
    assert sp.close() == 0


# -- qmail-rspawn ----------------------------------------------------------------------

def test_rspawn_runs_qmailremote_with_host_sender_recip(spawn, sys_: MailSystem) -> None:
    remote = remote_script(sys_, "remote", "printf 'r\\0Kgiven to the host\\n\\0'")
    sp = rspawn(spawn, sys_, remote)
    messid = put_message(sys_, 200)
    sp.send(9, messid, b"s@example.org", b"bob@far.example")
    assert sp.report() == (9, b"Kgiven to the host\n")
    out = sys_.base / "out"
    assert (out / "args").read_text() == "far.example\ns@example.org\nbob@far.example\n"
    assert (out / "msg").read_bytes() == MSG
    assert (out / "cwd").read_text() == f"{os.path.realpath(sys_.queue / 'mess')}\n"
    assert sp.close() == 0


REMOTE = [
    # (script body, report as qmail-rspawn.c's report() makes it)
    ("printf 'r\\0Kok given\\n\\0'", b"Kok given\n"),
    ("printf 'hNo such user.\\n\\0DGiving up.\\n\\0'", b"DNo such user.\nGiving up.\n"),
    ("printf 'sTry later.\\n\\0KAll done.\\n\\0'", b"ZTry later.\n"),
    ("printf 'sTry later.\\n\\0ZDeferred.\\n\\0'", b"ZTry later.\nDeferred.\n"),
    ("printf 'hBad.\\n\\0KOk.\\n\\0'", b"DBad.\n"),
    ("printf 'r\\0ZConnection died.\\n\\0'", b"ZConnection died.\n"),
    ("printf 'r\\0DRejected.\\n\\0'", b"DRejected.\n"),
    ("printf 'ZNo connection.\\n\\0'", b"ZNo connection.\n"),
    ("printf 'DPermanent.\\n\\0'", b"DPermanent.\n"),
    ("printf 'r\\0r\\0Kok\\n\\0'", b"K"),  # the next record is not K/Z/D: only the first
    ("printf 'garbage\\0'", b"Darbage"),  # no K/Z/D at all: D, first record's tail
    ("printf 'r\\0Kok\\n\\0'; exit 111", b"ZUnable to run qmail-remote.\n"),
    ("printf 'r\\0Kok\\n\\0'; exit 100", b"DUnable to run qmail-remote.\n"),
    ("exit 1", b"DUnable to run qmail-remote.\n"),
    ("exit 0", b"Zqmail-remote produced no output.\n"),
    ("kill -9 $$", b"Zqmail-remote crashed.\n"),
]


@pytest.mark.parametrize("body, report", REMOTE)
def test_rspawn_reports(spawn, sys_: MailSystem, body: str, report: bytes) -> None:
    sp = rspawn(spawn, sys_, remote_script(sys_, "remote", body))
    messid = put_message(sys_, 201)
    sp.send(0, messid, b"s@example.org", b"bob@far.example")
    assert sp.report() == (0, report)
    assert sp.close() == 0


def test_rspawn_missing_program_is_permanent(spawn, sys_: MailSystem) -> None:
    sp = rspawn(spawn, sys_, str(sys_.base / "no-such-remote"))
    messid = put_message(sys_, 202)
    sp.send(5, messid, b"s@example.org", b"bob@far.example")
    assert sp.report() == (5, b"DUnable to run qmail-remote.\n")
    assert sp.close() == 0


def test_rspawn_does_not_truncate_reports(spawn, sys_: MailSystem) -> None:
    sp = rspawn(spawn, sys_, remote_script(sys_, "remote", "printf 'r\\0K%05000d\\n\\0' 7"))
    messid = put_message(sys_, 203)
    sp.send(1, messid, b"s@example.org", b"bob@far.example")
    assert sp.report() == (1, b"K" + b"0" * 4999 + b"7\n")
    assert sp.close() == 0


def test_rspawn_concurrent_deliveries_and_delnum_in_use(spawn, sys_: MailSystem) -> None:
    go = sys_.base / "go"
    remote = remote_script(sys_, "remote", f"while [ ! -e {go} ]; do sleep 0.02; done\n"
                                           "printf 'r\\0Kdone for %s\\n\\0' \"$3\"")
    sp = rspawn(spawn, sys_, remote)
    messid = put_message(sys_, 204)
    sp.send(3, messid, b"s@example.org", b"one@far.example")
    sp.send(7, messid, b"s@example.org", b"two@far.example")
    sp.send(3, messid, b"s@example.org", b"three@far.example")
    assert sp.report() == (3, b"ZInternal error: delnum in use. (#4.3.5)\n")
    # no more commands: it still finishes and reports what it started
    sp.p.stdin.close()
    go.touch()
    got = dict([sp.report(), sp.report()])
    assert got == {3: b"Kdone for one@far.example\n", 7: b"Kdone for two@far.example\n"}
    assert sp.p.wait(timeout=30) == 0


def test_rspawn_clears_tcpto(spawn, sys_: MailSystem) -> None:
    tcpto = sys_.queue / "lock" / "tcpto"
    tcpto.write_bytes(b"\x01" * 1024)
    sp = start("qmail-rspawn", spawn, sys_)
    assert sp.first == bytes([120])
    assert tcpto.read_bytes() == b"\0" * 1024
    assert sp.close() == 0


# -- the report functions --------------------------------------------------------------

def exited(code: int) -> int:
    return code << 8


@pytest.mark.parametrize("wstat, output, report", [
    (exited(0), b"did 1+0+0\n", b"Kdid 1+0+0\n"),
    (exited(0), b"", b"K"),
    (exited(0), b"did 0+1+0\nqp 123\n\0junk", b"Kdid 0+1+0\nqp 123\n"),
    (exited(100), b"Sorry.\n", b"DSorry.\n"),
    (exited(99), b"x\n", b"Dx\n"),
    (exited(1), b"x\n", b"Dx\n"),
    (exited(111), b"Later.\n", b"ZLater.\n"),
    (exited(71), b"t\n", b"Zt\n"),
    (exited(74), b"t\n", b"Zt\n"),
    (exited(75), b"t\n", b"Zt\n"),
    (exited(QLX_CDB), b"x", b"ZTrouble reading users/cdb in qmail-lspawn.\n"),
    (exited(QLX_NOMEM), b"x", b"ZOut of memory in qmail-lspawn.\n"),
    (exited(QLX_SYS), b"x", b"ZTemporary failure in qmail-lspawn.\n"),
    (exited(QLX_NOALIAS), b"x", b"ZUnable to find alias user!\n"),
    (exited(QLX_ROOT), b"x", b"ZNot allowed to perform deliveries as root.\n"),
    (exited(QLX_USAGE), b"x", b"ZInternal qmail-lspawn bug.\n"),
    (exited(QLX_NFS), b"x", b"ZNFS failure in qmail-local.\n"),
    (exited(QLX_EXECHARD), b"x", b"DUnable to run qmail-local.\n"),
    (exited(QLX_EXECSOFT), b"x", b"ZUnable to run qmail-local.\n"),
    (exited(QLX_EXECPW), b"x", b"ZUnable to run qmail-getpw.\n"),
    (9, b"partial", b"Zqmail-local crashed.\n"),
    (15 | 0x80, b"", b"Zqmail-local crashed.\n"),  # killed, with a core dump
])
def test_lspawn_report(wstat: int, output: bytes, report: bytes) -> None:
    assert qmail_lspawn.report(wstat, output) == report


def test_qlx_codes_are_qmails() -> None:
    assert (QLX_USAGE, QLX_ROOT, QLX_NFS, QLX_NOALIAS, QLX_CDB, QLX_SYS, QLX_NOMEM,
            QLX_EXECSOFT, QLX_EXECPW, QLX_EXECHARD) == (112, 113, 115, 116, 117, 118, 119,
                                                        120, 121, 126)


@pytest.mark.parametrize("wstat, output, report", [
    (exited(0), b"r\0Kok\n\0", b"Kok\n"),
    (exited(0), b"rRcpt ok.\n\0Kok\n\0", b"KRcpt ok.\nok\n"),
    (exited(0), b"hNo.\n\0DBye.\n\0", b"DNo.\nBye.\n"),
    (exited(0), b"hNo.\n\0KOk.\n\0", b"DNo.\n"),
    (exited(0), b"hNo.\n\0ZLater.\n\0", b"DNo.\n"),
    (exited(0), b"sSoft.\n\0KOk.\n\0", b"ZSoft.\n"),
    (exited(0), b"sSoft.\n\0ZLater.\n\0", b"ZSoft.\nLater.\n"),
    (exited(0), b"sSoft.\n\0DHard.\n\0", b"ZSoft.\nHard.\n"),
    (exited(0), b"r\0DHard.\n\0", b"DHard.\n"),
    (exited(0), b"r\0ZLater.\n\0", b"ZLater.\n"),
    (exited(0), b"ZNo connection.\n\0", b"ZNo connection.\n"),
    (exited(0), b"KAll at once.\n\0", b"KAll at once.\n"),
    (exited(0), b"r\0r\0Kok\n\0", b"K"),
    (exited(0), b"garbage\0", b"Darbage"),
    (exited(0), b"r", b"D"),  # no NUL at all
    (exited(0), b"\0Kok\0", b"KKok"),
    (exited(0), b"", b"Zqmail-remote produced no output.\n"),
    (exited(111), b"r\0Kok\n\0", b"ZUnable to run qmail-remote.\n"),
    (exited(100), b"r\0Kok\n\0", b"DUnable to run qmail-remote.\n"),
    (exited(2), b"", b"DUnable to run qmail-remote.\n"),
    (9, b"r\0Kok\n\0", b"Zqmail-remote crashed.\n"),
])
def test_rspawn_report(wstat: int, output: bytes, report: bytes) -> None:
    assert qmail_rspawn.report(wstat, output) == report
