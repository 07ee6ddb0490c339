"""qmail-popup, checkpassword and qmail-pop3d (qmail 1.03, checkpassword-0.90).

Without root: qmail-popup with stand-in checkers, qmail-pop3d on a Maildir of
ours, checkpassword's refusals.  As root (CI): throw-away system accounts
whose passwords chpasswd sets (yescrypt as Debian does by default, then
sha512, md5 and DES), served by our tcpserver running
``qmail-popup HOST checkpassword qmail-pop3d Maildir`` and read with poplib.
"""
from __future__ import annotations

import os
import poplib
import pwd
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from mta import qmail_popup
from pyqmail import timeoutio
from tests.helpers import account_cmd, kill_tree, ours
from tests.tcpserver.harness import read_line

HOST = "pop.example"
GREETING = re.compile(rb"\+OK <(\d+)\.(\d+)@pop\.example>\r\n")
root_only = pytest.mark.skipif(os.geteuid() != 0, reason="system accounts need root")


def run(args: list[str], data: bytes = b"", cwd: Path | None = None,
        env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(args, input=data, cwd=cwd, env=env, capture_output=True, timeout=30)


def mask(out: bytes) -> bytes:
    return GREETING.sub(b"+OK <PID.TIME@pop.example>\r\n", out)


# -- qmail-popup with stand-in checkers -------------------------------------------

def checker(tmp_path: Path, body: str) -> str:
    """A checkpassword stand-in: saves descriptor 3 in ``fd3``, then runs ``body``."""
    path = tmp_path / "checker"
    path.write_text(f"#!/bin/sh\ncat <&3 > {tmp_path}/fd3\n{body}\n")
    path.chmod(0o755)
    return str(path)


def popup(tmp_path: Path, data: bytes, body: str = "exit 1") -> subprocess.CompletedProcess:
    return run([ours("qmail-popup"), HOST, checker(tmp_path, body)], data)


def test_popup_usage() -> None:
    for args in ([], [HOST]):
        r = run([ours("qmail-popup"), *args])
        assert (r.returncode, r.stdout, r.stderr) == (
            1, b"-ERR usage: popup hostname subprogram\r\n", b"")


def test_popup_dialogue_before_login(tmp_path: Path) -> None:
    r = popup(tmp_path, b"NOOP\r\nSTAT\r\nPASS x\r\nUSER\r\nuser  joe\r\nPASS\r\nAPOP joe\r\n"
                        b"list 1\r\nnoop ignored\r\n\r\nQUIT\r\nNOOP\r\n")
    assert r.returncode == 1 and r.stderr == b""
    assert mask(r.stdout) == (
        b"+OK <PID.TIME@pop.example>\r\n"
        b"+OK \r\n"
        b"-ERR authorization first\r\n"
        b"-ERR USER first\r\n"
        b"-ERR syntax error\r\n"
        b"+OK \r\n"
        b"-ERR syntax error\r\n"
        b"-ERR syntax error\r\n"
        b"-ERR authorization first\r\n"
        b"+OK \r\n"
        b"-ERR authorization first\r\n"
        b"+OK \r\n")
    assert not (tmp_path / "fd3").exists()


def test_popup_greeting_is_pid_and_time(tmp_path: Path) -> None:
    before = int(time.time())
    p = subprocess.Popen([ours("qmail-popup"), HOST, "true"], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE)
    out, _ = p.communicate(b"QUIT\r\n", timeout=30)
    m = GREETING.match(out)
    assert m and int(m.group(1)) == p.pid and before <= int(m.group(2)) <= time.time()
    assert out[m.end():] == b"+OK \r\n" and p.returncode == 1


def test_popup_end_of_input_exits_1(tmp_path: Path) -> None:
    r = popup(tmp_path, b"USER joe\r\nPASS half")
    assert r.returncode == 1
    assert mask(r.stdout) == b"+OK <PID.TIME@pop.example>\r\n+OK \r\n"


def test_popup_hands_name_password_and_timestamp_on_fd3(tmp_path: Path) -> None:
    r = popup(tmp_path, b"USER joe \r\nPASS pass  word\r\nNOOP\r\n")
    m = GREETING.match(r.stdout)
    assert r.stdout[m.end():] == b"+OK \r\n-ERR authorization failed\r\n" and r.returncode == 1
    stamp = r.stdout[4:m.end() - 2]
    assert (tmp_path / "fd3").read_bytes() == b"joe \0pass  word\0" + stamp + b"\0"


def test_popup_apop(tmp_path: Path) -> None:
    r = popup(tmp_path, b"APOP joe c4c9334bac560ecc979e58001b3e22fb more\r\n")
    assert r.stdout.endswith(b"-ERR authorization failed\r\n")
    name, digest, stamp, rest = (tmp_path / "fd3").read_bytes().split(b"\0")
    assert (name, digest, rest) == (b"joe", b"c4c9334bac560ecc979e58001b3e22fb more", b"")
    assert re.fullmatch(rb"<\d+\.\d+@pop\.example>", stamp)


def test_popup_success_leaves_the_session_to_the_child(tmp_path: Path) -> None:
    r = popup(tmp_path, b"user joe\r\npass pw\r\n", "echo '+OK from child'; exit 0")
    assert mask(r.stdout) == b"+OK <PID.TIME@pop.example>\r\n+OK \r\n+OK from child\n"
    assert r.returncode == 1


def test_popup_child_crash_and_missing_child(tmp_path: Path) -> None:
    r = popup(tmp_path, b"USER joe\r\nPASS pw\r\n", "kill -9 $$")
    assert r.stdout.endswith(b"+OK \r\n-ERR aack, child crashed\r\n") and r.returncode == 1
    # a checker that cannot even start: as with one that reads nothing, the write of
    # the password may or may not beat its exit (qmail-popup.c has the same race)
    r = run([ours("qmail-popup"), HOST, str(tmp_path / "none")], b"USER joe\r\nPASS pw\r\n")
    assert r.returncode == 1
    assert r.stdout.endswith((b"+OK \r\n-ERR authorization failed\r\n",
                              b"+OK \r\n-ERR unable to write pipe\r\n"))


def test_popup_child_that_reads_nothing(tmp_path: Path) -> None:
    # the write may beat the child's exit or not: either way a refusal and exit 1
    r = run([ours("qmail-popup"), HOST, "false"], b"USER joe\r\nPASS pw\r\n")
    assert r.returncode == 1
    assert r.stdout.endswith((b"-ERR authorization failed\r\n", b"-ERR unable to write pipe\r\n"))


def test_popup_nul_ends_a_command_and_overlong_lines_are_cut(tmp_path: Path) -> None:
    long = b"u" * (3 * qmail_popup.MAXLINE)
    r = popup(tmp_path, b"NOOP\0STAT\r\nUSER " + long + b"\r\nPASS pw\0rd\r\n")
    assert mask(r.stdout) == (b"+OK <PID.TIME@pop.example>\r\n+OK \r\n+OK \r\n"
                              b"-ERR authorization failed\r\n")
    name, password, _, _ = (tmp_path / "fd3").read_bytes().split(b"\0")
    assert name == b"u" * (qmail_popup.MAXLINE - len(b"USER "))
    assert password == b"pw"


def test_popup_checker_that_closes_fd3(tmp_path: Path) -> None:
    big = b"x" * (qmail_popup.MAXLINE - 8)
    r = run([ours("qmail-popup"), HOST, "/bin/sh", "-c", "exec 3<&-; sleep 0.2; exit 1"],
            b"USER " + big + b"\r\nPASS " + big + b"\r\n")
    assert r.returncode == 1 and r.stdout.endswith(b"+OK \r\n-ERR unable to write pipe\r\n")


def test_popup_needs_descriptor_3_for_the_pipe(tmp_path: Path) -> None:
    # with descriptor 2 closed the pipe's read end is not 3: qmail refuses too
    r = run(["/bin/sh", "-c", 'exec "$@" 2>&-', "sh", ours("qmail-popup"), HOST, "true"],
            b"USER joe\r\nPASS pw\r\n")
    assert r.returncode == 1 and r.stdout.endswith(b"+OK \r\n-ERR unable to open pipe\r\n")


def test_channel_times_out() -> None:
    r, w = os.pipe()
    try:
        chan = qmail_popup.connection(r, w, timeout=0.2)
        os.write(w, b"one\r\ntw")
        assert chan.command(qmail_popup.MAXLINE) == (b"one", b"")
        start = time.monotonic()
        with pytest.raises(timeoutio.Hangup):
            chan.command(qmail_popup.MAXLINE)
        assert 0.15 < time.monotonic() - start < 5
    finally:
        os.close(r)
        os.close(w)


def test_channel_write_timeout() -> None:
    a, b = socket.socketpair()
    try:
        a.setblocking(True)
        chan = qmail_popup.connection(a.fileno(), a.fileno(), timeout=0.2)
        with pytest.raises(timeoutio.Hangup):
            for _ in range(10000):  # nobody reads b: the buffers fill up
                chan.reply(b"x" * 65536)
    finally:
        a.close()
        b.close()


def test_per_connection_imports_stay_lean() -> None:
    code = ("import sys; import mta.qmail_popup, mta.qmail_pop3d, mta.checkpassword; "
            "print(' '.join(sorted(sys.modules)))")
    mods = set(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              check=True).stdout.split())
    assert not mods & {"asyncio", "typing", "email", "hashlib", "re", "subprocess", "socket"}


# -- qmail-pop3d on a Maildir of ours ----------------------------------------------

M1 = b"Subject: one\n\nbody one\n"
M2 = b"Subject: two\nX: y\n\n.leading dot\n..two dots\nline\r\nlast line no newline"
M3 = b""


def put(maildir: Path, sub: str, name: str, data: bytes, age: float) -> Path:
    path = maildir / sub / name
    path.write_bytes(data)
    t = time.time() - age
    os.utime(path, (t, t))
    return path


def make_maildir(base: Path) -> Path:
    md = base / "Maildir"
    for sub in ("tmp", "new", "cur"):
        (md / sub).mkdir(parents=True)
    put(md, "new", "1000.1.host", M1, 300)
    put(md, "cur", "1001.2.host:2,S", M2, 200)
    put(md, "new", "1002.3.host", M3, 100)
    put(md, "new", ".hidden", b"x\n", 400)
    put(md, "new", "1003.4.host", b"too new\n", -1000)  # modified in the future: not listed
    put(md, "tmp", "old", b"x", 200000)
    put(md, "tmp", "young", b"x", 100)
    return md


def pop3d(cwd: Path, data: bytes, *args: str) -> subprocess.CompletedProcess:
    return run([ours("qmail-pop3d"), *args], data, cwd=cwd)


def test_pop3d_without_maildir(tmp_path: Path) -> None:
    for args in ([], ["Maildir"]):
        r = pop3d(tmp_path, b"STAT\r\n", *args)
        assert (r.returncode, r.stdout, r.stderr) == (
            0, b"-ERR this user has no $HOME/Maildir\r\n", b"")


def test_pop3d_unscannable(tmp_path: Path) -> None:
    (tmp_path / "Maildir" / "cur").mkdir(parents=True)
    r = pop3d(tmp_path, b"STAT\r\n", "Maildir")
    assert (r.returncode, r.stdout) == (0, b"-ERR unable to scan $HOME/Maildir\r\n")


def test_pop3d_transcript(tmp_path: Path) -> None:
    md = make_maildir(tmp_path)
    total = len(M1) + len(M2) + len(M3)
    r = pop3d(tmp_path, b"STAT\r\nLIST\r\nlist 2\r\nUIDL\r\nUIDL 2\r\nRETR 2\r\nTOP 2 0\r\n"
                        b"top 2  1\r\nRETR 2 2\r\nRETR 3\r\nRETR 1\r\nLAST\r\nDELE 1\r\n"
                        b"LAST\r\nSTAT\r\nLIST\r\nDELE 1\r\nRETR 1\r\nLIST 0\r\nLIST 4\r\n"
                        b"LIST x\r\nDELE\r\nRETR\r\nTOP -1\r\nCAPA\r\nSTLS\r\nUSER joe\r\n"
                        b"NOOP\r\nRSET\r\nLAST\r\nSTAT\r\nDELE 3\r\nQUIT\r\nNOOP\r\n", "Maildir")
    assert r.returncode == 0 and r.stderr == b""
    assert r.stdout.decode() == (
        "+OK \r\n"
        f"+OK 3 {total}\r\n"
        f"+OK \r\n1 {len(M1)}\r\n2 {len(M2)}\r\n3 0\r\n.\r\n"
        f"+OK 2 {len(M2)}\r\n"
        "+OK \r\n1 1000.1.host\r\n2 1001.2.host\r\n3 1002.3.host\r\n.\r\n"
        "+OK 2 1001.2.host\r\n"
        "+OK \r\nSubject: two\r\nX: y\r\n\r\n..leading dot\r\n...two dots\r\nline\r\r\n"
        "last line no newline\r\n\r\n.\r\n"
        "+OK \r\nSubject: two\r\nX: y\r\n\r\n\r\n.\r\n"
        "+OK \r\nSubject: two\r\nX: y\r\n\r\n..leading dot\r\n\r\n.\r\n"
        "+OK \r\nSubject: two\r\nX: y\r\n\r\n..leading dot\r\n...two dots\r\n\r\n.\r\n"
        "+OK \r\n\r\n.\r\n"
        "+OK \r\nSubject: one\r\n\r\nbody one\r\n\r\n.\r\n"
        "+OK 0\r\n"
        "+OK \r\n"
        "+OK 1\r\n"
        f"+OK 3 {len(M2)}\r\n"
        f"+OK \r\n2 {len(M2)}\r\n3 0\r\n.\r\n"
        "-ERR already deleted\r\n"
        "-ERR already deleted\r\n"
        "-ERR messages are counted from 1\r\n"
        "-ERR not that many messages\r\n"
        "-ERR syntax error\r\n"
        "-ERR syntax error\r\n"
        "-ERR syntax error\r\n"
        "-ERR syntax error\r\n"
        "-ERR unimplemented\r\n"
        "-ERR unimplemented\r\n"
        "-ERR unimplemented\r\n"
        "+OK \r\n"
        "+OK \r\n"
        "+OK 0\r\n"
        f"+OK 3 {total}\r\n"
        "+OK \r\n"
        "+OK \r\n")
    assert sorted(os.listdir(md / "new")) == [".hidden", "1003.4.host"]
    assert sorted(os.listdir(md / "cur")) == ["1000.1.host:2,", "1001.2.host:2,S"]
    assert (md / "cur" / "1000.1.host:2,").read_bytes() == M1
    assert sorted(os.listdir(md / "tmp")) == ["young"]


def test_pop3d_without_quit_changes_nothing(tmp_path: Path) -> None:
    md = make_maildir(tmp_path)
    r = pop3d(tmp_path, b"DELE 1\r\nDELE 2\r\n", "Maildir")
    assert (r.returncode, r.stdout) == (0, b"+OK \r\n+OK \r\n+OK \r\n")
    assert sorted(os.listdir(md / "new")) == [".hidden", "1000.1.host", "1002.3.host", "1003.4.host"]
    assert sorted(os.listdir(md / "cur")) == ["1001.2.host:2,S"]


def test_pop3d_message_vanished(tmp_path: Path) -> None:
    md = make_maildir(tmp_path)
    p = subprocess.Popen([ours("qmail-pop3d"), "Maildir"], cwd=tmp_path, stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE)
    assert read_line(p.stdout) == b"+OK \r\n"
    (md / "new" / "1000.1.host").unlink()
    (md / "cur" / "1001.2.host:2,S").unlink()
    out, _ = p.communicate(b"RETR 1\r\nDELE 2\r\nQUIT\r\n", timeout=30)
    assert out == (b"-ERR unable to open that message\r\n+OK \r\n"
                   b"-ERR unable to unlink all deleted messages\r\n+OK \r\n")
    assert p.returncode == 0


def blast_reference(data: bytes, limit: int = 0) -> bytes:
    """qmail-pop3d's output for a message, line by line as its C loop goes."""
    lines = data.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    out, inheaders = [], True
    for line in lines:
        if limit and not inheaders:
            limit -= 1
            if not limit:
                break
        if not line:
            inheaders = False
        elif line.startswith(b"."):
            out.append(b".")
        out.append(line + b"\r\n")
    return b"".join(out) + b"\r\n.\r\n"


def test_pop3d_big_message(tmp_path: Path) -> None:
    md = make_maildir(tmp_path)
    body = bytearray(b"Subject: big\n\n")
    n = 0
    while len(body) < 300000:
        n += 1
        # dots at the start of lines, some landing on the 65536-byte read boundaries
        body += b"." * (n % 3) + b"x" * (n * 7 % 90) + b"\n"
    body[65535] = ord("\n")
    body[65536] = ord(".")
    body = bytes(body) + b".no newline at the end"
    put(md, "new", "1004.5.host", body, 50)
    r = pop3d(tmp_path, b"RETR 4\r\nTOP 4 100\r\nQUIT\r\n", "Maildir")
    assert r.stdout == (b"+OK \r\n+OK \r\n" + blast_reference(body) + b"+OK \r\n"
                        + blast_reference(body, 101) + b"+OK \r\n")


def test_pop3d_crlf_in_file_is_kept(tmp_path: Path) -> None:
    md = make_maildir(tmp_path)
    for f in list((md / "new").iterdir()) + list((md / "cur").iterdir()):
        f.unlink()
    put(md, "new", "1.1.h", b"A: b\r\n\r\n.\r\n", 10)
    r = pop3d(tmp_path, b"RETR 1\r\n", "Maildir")
    assert r.stdout == b"+OK \r\n+OK \r\nA: b\r\r\n\r\r\n..\r\r\n\r\n.\r\n"


def test_pop3d_top_past_the_end(tmp_path: Path) -> None:
    make_maildir(tmp_path)
    r = pop3d(tmp_path, b"TOP 2 100\r\nTOP 3 5\r\n", "Maildir")
    assert r.stdout == (b"+OK \r\n+OK \r\n" + blast_reference(M2) + b"+OK \r\n\r\n.\r\n")


def test_pop3d_numbers_wrap_as_in_c(tmp_path: Path) -> None:
    make_maildir(tmp_path)
    r = pop3d(tmp_path, b"LIST 18446744073709551617\r\nTOP 1 18446744073709551615\r\n", "Maildir")
    assert r.stdout == (b"+OK \r\n" + b"+OK 1 %d\r\n" % len(M1)
                        + b"+OK \r\n" + blast_reference(M1))


# -- checkpassword's refusals --------------------------------------------------------

def checkpassword(data: bytes | None, *prog: str, env: dict | None = None,
                  cwd: Path | None = None) -> subprocess.CompletedProcess:
    """checkpassword with ``data`` on descriptor 3 (closed if None)."""
    redirect = '3<&-' if data is None else '3<"$CPW_INPUT"'
    with tempfile.NamedTemporaryFile() as f:
        f.write(data or b"")
        f.flush()
        e = dict(env or os.environ, CPW_INPUT=f.name)
        return run(["/bin/sh", "-c", f'exec "$0" "$@" {redirect}', ours("checkpassword"), *prog],
                   env=e, cwd=cwd)


@pytest.mark.parametrize("data,prog,code", [
    (b"root\0x\0<t>\0", [], 2),
    (b"", ["true"], 2),
    (b"root", ["true"], 2),
    (b"root\0", ["true"], 2),
    (b"root\0pass", ["true"], 2),
    (None, ["true"], 111),
    (b"root\0" + b"p" * 600 + b"\0", ["true"], 1),
    (b"no-such-user-pyqmail\0pw\0<t>\0", ["true"], 1),
    (b"\0pw\0<t>\0", ["true"], 1),
])
def test_checkpassword_refusals(data: bytes | None, prog: list[str], code: int) -> None:
    r = checkpassword(data, *prog)
    assert (r.returncode, r.stdout, r.stderr) == (code, b"", b"")


# -- as root: system accounts, tcpserver, poplib --------------------------------------

PASSWORD = "Pa55 w:rd"


def chpasswd(line: str, *opts: str) -> None:
    for _ in range(50):
        p = subprocess.run(["chpasswd", *opts], input=line + "\n", capture_output=True, text=True)
        if p.returncode == 0:
            return
        if "lock" not in p.stderr:
            raise RuntimeError(f"chpasswd {opts}: {p.stderr}")
        time.sleep(0.1)
    raise RuntimeError(f"chpasswd {opts}: {p.stderr}")


def shadow_field(name: str) -> str:
    for line in Path("/etc/shadow").read_text().splitlines():
        if line.startswith(name + ":"):
            return line.split(":")[1]
    raise KeyError(name)


class Accounts:
    """Throw-away accounts with homes under one directory everybody may enter."""

    def __init__(self) -> None:
        self.base = Path(tempfile.mkdtemp(prefix="pyqmail-pop3-"))
        self.base.chmod(0o755)
        self.names: list[str] = []

    def make(self, method: str | None = None, maildir: bool = True,
             home: bool = True) -> pwd.struct_passwd:
        name = f"pop{uuid.uuid4().hex[:8]}"
        path = self.base / name
        account_cmd(["useradd", "-r", "-M", "-U", "-d", str(path), "-s", "/bin/sh", name])
        self.names.append(name)
        chpasswd(f"{name}:{PASSWORD}", *(["-c", method] if method else []))
        pw = pwd.getpwnam(name)
        if home:
            path.mkdir()
            if maildir:
                make_maildir(path)
            for d, _, files in os.walk(path):
                os.chown(d, pw.pw_uid, pw.pw_gid)
                for f in files:
                    os.chown(os.path.join(d, f), pw.pw_uid, pw.pw_gid)
        return pw

    def remove(self) -> None:
        for name in self.names:
            subprocess.run(["userdel", name], capture_output=True)
        shutil.rmtree(self.base, ignore_errors=True)


@pytest.fixture(scope="module")
def accounts():
    if os.geteuid() != 0:
        pytest.skip("system accounts need root")
    a = Accounts()
    try:
        yield a
    finally:
        a.remove()


@pytest.fixture(scope="module")
def server(accounts):
    """Our tcpserver on 127.0.0.1 running the POP3 chain; its port."""
    p = subprocess.Popen([ours("tcpserver"), "-1", "-HRl0", "127.0.0.1", "0",
                          ours("qmail-popup"), HOST, ours("checkpassword"), ours("qmail-pop3d"),
                          "Maildir"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                         stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        yield int(read_line(p.stdout))
    finally:
        kill_tree(p)
        p.stdout.close()


def login(port: int, name: str, password: str = PASSWORD) -> poplib.POP3:
    p = poplib.POP3("127.0.0.1", port, timeout=20)
    try:
        p.user(name)
        p.pass_(password)
    except BaseException:
        p.close()
        raise
    return p


@root_only
def test_debian_default_hash_is_yescrypt(accounts) -> None:
    pw = accounts.make()
    assert shadow_field(pw.pw_name).startswith("$y$")


@root_only
def test_poplib_session(accounts, server: int) -> None:
    pw = accounts.make()
    md = Path(pw.pw_dir) / "Maildir"
    p = login(server, pw.pw_name)
    assert p.getwelcome().startswith(b"+OK <") and p.getwelcome().endswith(b"@pop.example>")
    assert p.stat() == (3, len(M1) + len(M2) + len(M3))
    assert p.list()[1] == [b"1 %d" % len(M1), b"2 %d" % len(M2), b"3 0"]
    assert p.uidl()[1] == [b"1 1000.1.host", b"2 1001.2.host", b"3 1002.3.host"]
    assert p.uidl(2) == b"+OK 2 1001.2.host"
    assert p.retr(1)[1] == [b"Subject: one", b"", b"body one", b""]
    assert p.retr(2)[1] == [b"Subject: two", b"X: y", b"", b".leading dot", b"..two dots",
                            b"line\r", b"last line no newline", b""]
    assert p.top(2, 1)[1] == [b"Subject: two", b"X: y", b"", b".leading dot", b""]
    assert p.dele(2) == b"+OK "
    assert p._shortcmd("LAST") == b"+OK 2"
    with pytest.raises(poplib.error_proto, match="already deleted"):
        p.retr(2)
    assert p.rset() == b"+OK "
    assert p._shortcmd("LAST") == b"+OK 0"
    assert p.dele(1) == b"+OK "
    assert p.quit() == b"+OK "
    assert sorted(os.listdir(md / "new")) == [".hidden", "1003.4.host"]
    assert sorted(os.listdir(md / "cur")) == ["1001.2.host:2,S", "1002.3.host:2,"]
    p = login(server, pw.pw_name)
    assert p.stat() == (2, len(M2))
    assert p.uidl()[1] == [b"1 1001.2.host", b"2 1002.3.host"]
    p.quit()


@root_only
def test_wrong_password_and_unknown_user(accounts, server: int) -> None:
    pw = accounts.make()
    for name, password in ((pw.pw_name, "wrong"), (pw.pw_name, PASSWORD + " "),
                           (pw.pw_name, PASSWORD.upper()), ("no-such-pyqmail", PASSWORD)):
        with pytest.raises(poplib.error_proto) as e:
            login(server, name, password)
        assert e.value.args[0] == b"-ERR authorization failed"
    assert sorted(os.listdir(Path(pw.pw_dir) / "Maildir" / "new")) == [
        ".hidden", "1000.1.host", "1002.3.host", "1003.4.host"]


@root_only
@pytest.mark.parametrize("method,prefix", [("SHA512", "$6$"), ("MD5", "$1$"),
                                           ("SHA256", "$5$"), ("DES", "")])
def test_other_hashes(accounts, server: int, method: str, prefix: str) -> None:
    pw = accounts.make(method)
    stored = shadow_field(pw.pw_name)
    assert stored.startswith(prefix) and not stored.startswith("$y$")
    p = login(server, pw.pw_name)
    assert p.stat()[0] == 3
    p.quit()
    with pytest.raises(poplib.error_proto, match="authorization failed"):
        login(server, pw.pw_name, "wrong")


@root_only
def test_locked_and_empty_passwords(accounts, server: int) -> None:
    pw = accounts.make()
    account_cmd(["usermod", "-L", pw.pw_name])
    with pytest.raises(poplib.error_proto, match="authorization failed"):
        login(server, pw.pw_name)
    account_cmd(["passwd", "-d", pw.pw_name])
    assert shadow_field(pw.pw_name) == ""
    with pytest.raises(poplib.error_proto, match="syntax error"):  # PASS needs a word
        login(server, pw.pw_name, "")
    with pytest.raises(poplib.error_proto, match="authorization failed"):
        login(server, pw.pw_name, "x")


@root_only
def test_user_without_maildir(accounts, server: int) -> None:
    pw = accounts.make(maildir=False)
    with pytest.raises(poplib.error_proto) as e:
        login(server, pw.pw_name)
    assert e.value.args[0] == b"-ERR this user has no $HOME/Maildir"


class Dialogue:
    """A raw POP3 connection: send a line, get the reply bytes."""

    def __init__(self, port: int) -> None:
        self.s = socket.create_connection(("127.0.0.1", port), timeout=20)
        self.f = self.s.makefile("rb")

    def line(self) -> bytes:
        return self.f.readline()

    def say(self, text: bytes, multi: bool = False) -> bytes:
        self.s.sendall(text + b"\r\n")
        out = self.line()
        if multi and out.startswith(b"+OK"):
            while not out.endswith(b"\r\n.\r\n"):
                out += self.line()
        return out

    def close(self) -> None:
        self.f.close()
        self.s.close()


@root_only
def test_error_transcript(accounts, server: int) -> None:
    pw = accounts.make()
    d = Dialogue(server)
    try:
        assert GREETING.fullmatch(d.line())
        transcript = [
            (b"STAT", b"-ERR authorization first\r\n"),
            (b"CAPA", b"-ERR authorization first\r\n"),
            (b"PASS " + PASSWORD.encode(), b"-ERR USER first\r\n"),
            (b"USER", b"-ERR syntax error\r\n"),
            (b"USER " + pw.pw_name.encode(), b"+OK \r\n"),
            (b"PASS", b"-ERR syntax error\r\n"),
            (b"APOP nodigest", b"-ERR syntax error\r\n"),
            (b"NOOP", b"+OK \r\n"),
            (b"PASS " + PASSWORD.encode(), b"+OK \r\n"),
            (b"CAPA", b"-ERR unimplemented\r\n"),
            (b"USER x", b"-ERR unimplemented\r\n"),
            (b"RETR", b"-ERR syntax error\r\n"),
            (b"RETR 0", b"-ERR messages are counted from 1\r\n"),
            (b"RETR 99", b"-ERR not that many messages\r\n"),
            (b"DELE 3", b"+OK \r\n"),
            (b"DELE 3", b"-ERR already deleted\r\n"),
            (b"LIST 3", b"-ERR already deleted\r\n"),
            (b"LAST", b"+OK 3\r\n"),
            (b"NOOP", b"+OK \r\n"),
        ]
        for command, reply in transcript:
            assert (command, d.say(command)) == (command, reply)
        assert d.say(b"LIST", multi=True) == b"+OK \r\n1 %d\r\n2 %d\r\n.\r\n" % (len(M1), len(M2))
        assert d.say(b"QUIT") == b"+OK \r\n"
        assert d.line() == b""
    finally:
        d.close()
    assert not (Path(pw.pw_dir) / "Maildir" / "new" / "1002.3.host").exists()


@root_only
def test_bad_login_transcript(accounts, server: int) -> None:
    pw = accounts.make()
    d = Dialogue(server)
    try:
        assert GREETING.fullmatch(d.line())
        assert d.say(b"USER " + pw.pw_name.encode()) == b"+OK \r\n"
        assert d.say(b"PASS nope") == b"-ERR authorization failed\r\n"
        assert d.line() == b""  # qmail-popup ends the connection
    finally:
        d.close()


# -- as root: checkpassword itself ----------------------------------------------------

@root_only
def test_checkpassword_becomes_the_user(accounts) -> None:
    pw = accounts.make()
    data = pw.pw_name.encode() + b"\0" + PASSWORD.encode() + b"\0<1.2@h>\0"
    r = checkpassword(data, "/bin/sh", "-c", 'id -u; id -g; id -G; pwd; echo "$USER|$HOME|$SHELL"',
                      env={"PATH": "/usr/bin:/bin", "USER": "root", "HOME": "/root"}, cwd=Path("/"))
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode().splitlines() == [
        str(pw.pw_uid), str(pw.pw_gid), str(pw.pw_gid), pw.pw_dir,
        f"{pw.pw_name}|{pw.pw_dir}|/bin/sh"]
    r = checkpassword(data.replace(b"w:rd", b"w:rx"), "/bin/echo", "no")
    assert (r.returncode, r.stdout) == (1, b"")


@root_only
def test_checkpassword_input_limit(accounts) -> None:
    pw = accounts.make()
    head = pw.pw_name.encode() + b"\0" + PASSWORD.encode() + b"\0"
    exact = head + b"<" * (512 - len(head))
    assert len(exact) == 512
    assert checkpassword(exact, "/bin/true").returncode == 0
    assert checkpassword(head, "/bin/true").returncode == 0  # the timestamp may be missing
    assert checkpassword(exact + b"\0", "/bin/true").returncode == 1


@root_only
def test_checkpassword_temporary_trouble(accounts) -> None:
    pw = accounts.make(home=False)
    data = pw.pw_name.encode() + b"\0" + PASSWORD.encode() + b"\0<t>\0"
    r = checkpassword(data, "/bin/true")
    assert (r.returncode, r.stdout, r.stderr) == (111, b"", b"")
    pw = accounts.make()
    data = pw.pw_name.encode() + b"\0" + PASSWORD.encode() + b"\0<t>\0"
    r = checkpassword(data, "/nonexistent/prog")
    assert (r.returncode, r.stdout, r.stderr) == (111, b"", b"")
