"""The small delivery tools: maildirmake, maildir2mbox, preline, forward,
condredirect, bouncesaying, except."""
from __future__ import annotations

import mailbox
import os
import stat
import time
from pathlib import Path

import pytest

from tests.helpers import ours
from tests.mta.util import MESSAGE, FakeQueue, run

BIN = str(Path(ours("except")).parent)
LINES = {"UFLINE": "From a@b Thu Jan 01 00:00:00 1970\n", "RPLINE": "Return-Path: <a@b>\n",
         "DTLINE": "Delivered-To: joe@example.com\n"}


# maildirmake

def test_maildirmake(tmp_path: Path) -> None:
    r = run("maildirmake", [tmp_path / "M"], tmp=tmp_path, message=None)
    assert (r.rc, r.out, r.err) == (0, b"", b"")
    for d in ("M", "M/tmp", "M/new", "M/cur"):
        assert stat.S_IMODE((tmp_path / d).stat().st_mode) == 0o700
    r = run("maildirmake", [tmp_path / "M"], tmp=tmp_path, message=None)
    assert (r.rc, r.err) == (111, f"maildirmake: fatal: unable to mkdir {tmp_path}/M: "
                                  "file already exists\n".encode())
    r = run("maildirmake", [], tmp=tmp_path, message=None)
    assert (r.rc, r.err) == (100, b"maildirmake: usage: maildirmake name\n")


def test_maildirmake_where_it_cannot(tmp_path: Path) -> None:
    r = run("maildirmake", ["no/M"], tmp=tmp_path, message=None, cwd=tmp_path)
    assert (r.rc, r.err) == (111, b"maildirmake: fatal: unable to mkdir no/M: file does not exist\n")
    (tmp_path / "file").write_text("")
    r = run("maildirmake", ["file/M"], tmp=tmp_path, message=None, cwd=tmp_path)
    assert (r.rc, r.err) == (111, b"maildirmake: fatal: unable to mkdir file/M: not a directory\n")


# maildir2mbox

def put(md: Path, name: str, data: bytes, age: int) -> None:
    p = md / name
    p.write_bytes(data)
    t = time.time() - age
    os.utime(p, (t, t))


def test_maildir2mbox(tmp_path: Path) -> None:
    assert run("maildirmake", [tmp_path / "M"], tmp=tmp_path, message=None).rc == 0
    md = tmp_path / "M"
    put(md, "new/1", b"Return-Path: <a b@c>\nSubject: one\n\nFrom x\n", 300)
    put(md, "cur/2:2,S", b"Return-Path: <>\nSubject: two\n\n>From y\n", 200)
    put(md, "new/3", b"Subject: three\n\nno newline", 100)
    put(md, "tmp/old", b"x", 200000)
    mbox = tmp_path / "mbox"
    mbox.write_bytes(b"From old Thu Jan 01 00:00:00 1970\n\nold\n\n")
    env = {"MAILDIR": str(md), "MAIL": str(mbox), "MAILTMP": str(tmp_path / "mbox.tmp")}
    r = run("maildir2mbox", [], tmp=tmp_path, message=None, env=env)
    assert (r.rc, r.out, r.err) == (0, b"", b"")
    data = mbox.read_bytes()
    assert data.startswith(b"From old Thu Jan 01 00:00:00 1970\n\nold\n\nFrom a-b@c ")
    assert b"\nFrom MAILER-DAEMON " in data and b"\nFrom XXX " in data
    assert b"\n\n>From x\n\nFrom MAILER" in data and b"\n>>From y\n\n" in data
    assert data.endswith(b"\nno newline\n\n")
    box = mailbox.mbox(mbox, create=False)
    assert [m["Subject"] for m in box] == [None, "one", "two", "three"]
    box.close()
    assert os.listdir(md / "new") == [] and os.listdir(md / "cur") == []
    assert os.listdir(md / "tmp") == []
    # nothing to move: nothing changes
    before = mbox.read_bytes()
    assert run("maildir2mbox", [], tmp=tmp_path, message=None, env=env).rc == 0
    assert mbox.read_bytes() == before


@pytest.mark.parametrize("missing", ["MAIL", "MAILTMP", "MAILDIR"])
def test_maildir2mbox_environment(tmp_path: Path, missing: str, monkeypatch) -> None:
    env = {"MAILDIR": str(tmp_path), "MAIL": str(tmp_path / "m"), "MAILTMP": str(tmp_path / "t")}
    del env[missing]
    monkeypatch.delenv(missing, raising=False)
    r = run("maildir2mbox", [], tmp=tmp_path, message=None, env=env)
    assert (r.rc, r.err) == (111, f"maildir2mbox: fatal: {missing} not set\n".encode())


def test_maildir2mbox_errors(tmp_path: Path) -> None:
    env = {"MAILDIR": str(tmp_path / "no"), "MAIL": str(tmp_path / "m"),
           "MAILTMP": str(tmp_path / "t")}
    r = run("maildir2mbox", [], tmp=tmp_path, message=None, env=env)
    assert (r.rc, r.err) == (111, f"maildir2mbox: fatal: unable to chdir to {tmp_path}/no: "
                                  "file does not exist\n".encode())
    (tmp_path / "no").mkdir()
    r = run("maildir2mbox", [], tmp=tmp_path, message=None, env=env)
    assert (r.rc, r.err) == (111, b"maildir2mbox: fatal: unable to scan $MAILDIR/new: "
                                  b"file does not exist\n")


# preline

def test_preline(tmp_path: Path) -> None:
    r = run("preline", ["cat"], tmp=tmp_path, env=LINES)
    assert (r.rc, r.err) == (0, b"")
    assert r.out == "".join(LINES.values()).encode() + MESSAGE
    r = run("preline", ["-fr", "cat"], tmp=tmp_path, env=LINES)
    assert r.out == LINES["DTLINE"].encode() + MESSAGE
    r = run("preline", ["-d", "-fF", "cat"], tmp=tmp_path, env=LINES)
    assert r.out == (LINES["UFLINE"] + LINES["RPLINE"]).encode() + MESSAGE
    r = run("preline", ["sh", "-c", "cat >/dev/null; exit 37"], tmp=tmp_path, env=LINES)
    assert r.rc == 37


@pytest.mark.parametrize("args,env", [([], LINES), (["cat"], {"UFLINE": "x", "RPLINE": "y"}),
                                      (["-x", "cat"], LINES)])
def test_preline_usage(tmp_path: Path, args: list, env: dict, monkeypatch) -> None:
    monkeypatch.delenv("DTLINE", raising=False)
    r = run("preline", args, tmp=tmp_path, env=env)
    assert r.rc == 100
    assert r.err.endswith(b"preline: usage: preline cmd [ arg ... ]\n")


def test_preline_missing_command(tmp_path: Path) -> None:
    r = run("preline", ["no-such-command-here"], tmp=tmp_path, env=LINES)
    assert (r.rc, r.err) == (100, b"preline: fatal: unable to run no-such-command-here: "
                                  b"file does not exist\n")


def test_preline_child_crash(tmp_path: Path) -> None:
    r = run("preline", ["sh", "-c", "cat > /dev/null; kill -9 $$"], tmp=tmp_path, env=LINES)
    assert (r.rc, r.err) == (111, b"preline: fatal: child crashed\n")


# forward

def test_forward(tmp_path: Path) -> None:
    qq = FakeQueue(tmp_path)
    env = {**qq.env, "NEWSENDER": "owner@example.com", "DTLINE": LINES["DTLINE"]}
    r = run("forward", ["a@b.c", "d@e.f"], tmp=tmp_path, env=env)
    assert r.rc == 0 and r.out == b""
    assert r.err.startswith(b"forward: qp ") and r.err[12:-1].isdigit()
    assert qq.message == LINES["DTLINE"].encode() + MESSAGE
    assert qq.envelope == b"Fowner@example.com\0Ta@b.c\0Td@e.f\0\0"
    qq.exit_with(31)
    r = run("forward", ["a@b.c"], tmp=tmp_path, env=env)
    assert (r.rc, r.err) == (100, b"forward: fatal: mail server permanently rejected message "
                                  b"(#5.3.0)\n")
    qq.exit_with(53)
    r = run("forward", ["a@b.c"], tmp=tmp_path, env=env)
    assert (r.rc, r.err) == (111, b"forward: fatal: qq write error or disk full (#4.3.0)\n")


@pytest.mark.parametrize("missing", ["NEWSENDER", "DTLINE"])
def test_forward_environment(tmp_path: Path, missing: str, monkeypatch) -> None:
    env = {"NEWSENDER": "x", "DTLINE": "y"}
    del env[missing]
    monkeypatch.delenv(missing, raising=False)
    r = run("forward", ["a@b.c"], tmp=tmp_path, env=env)
    assert (r.rc, r.err) == (100, f"forward: fatal: {missing} not set\n".encode())


# condredirect

@pytest.mark.parametrize("prog,rc,forwarded", [
    (["true"], 99, True), (["false"], 0, False), (["sh", "-c", "exit 100"], 0, False),
    (["sh", "-c", "exit 111"], 111, False), (["no-such-program-x"], 0, False)])
def test_condredirect(tmp_path: Path, prog: list, rc: int, forwarded: bool) -> None:
    qq = FakeQueue(tmp_path)
    env = {**qq.env, "SENDER": "s@example.org", "DTLINE": LINES["DTLINE"]}
    r = run("condredirect", ["new@example.net", *prog], tmp=tmp_path, env=env)
    assert r.rc == rc
    assert qq.called is forwarded
    if forwarded:
        assert r.err.startswith(b"condredirect: qp ")
        assert qq.envelope == b"Fs@example.org\0Tnew@example.net\0\0"
        assert qq.message == LINES["DTLINE"].encode() + MESSAGE
    elif rc == 111:
        assert r.err == b"condredirect: fatal: temporary child error\n"
    else:
        assert r.err == b""


def test_condredirect_program_reads_message_first(tmp_path: Path) -> None:
    qq = FakeQueue(tmp_path)
    env = {**qq.env, "SENDER": "s@x", "DTLINE": LINES["DTLINE"]}
    r = run("condredirect", ["n@x", "sh", "-c", "grep -q quoted"], tmp=tmp_path, env=env)
    assert r.rc == 99
    assert qq.message == LINES["DTLINE"].encode() + MESSAGE  # rewound after the program


def test_condredirect_usage(tmp_path: Path) -> None:
    r = run("condredirect", ["a@b"], tmp=tmp_path)
    assert (r.rc, r.err) == (100, b"condredirect: usage: condredirect newaddress program "
                                  b"[ arg ... ]\n")


# bouncesaying

@pytest.mark.parametrize("prog,rc,err", [
    ([], 100, b"Go away.\n"), (["true"], 100, b"Go away.\n"), (["false"], 0, b""),
    (["sh", "-c", "exit 111"], 111, b"bouncesaying: fatal: temporary child error\n"),
    (["no-such-program-x"], 0, b""),
    (["sh", "-c", "kill -9 $$"], 111, b"bouncesaying: fatal: child crashed\n")])
def test_bouncesaying(tmp_path: Path, prog: list, rc: int, err: bytes) -> None:
    r = run("bouncesaying", ["Go away.", *prog], tmp=tmp_path)
    assert (r.rc, r.out, r.err) == (rc, b"", err)


def test_bouncesaying_usage(tmp_path: Path) -> None:
    r = run("bouncesaying", [], tmp=tmp_path)
    assert (r.rc, r.err) == (100, b"bouncesaying: usage: bouncesaying error "
                                  b"[ program [ arg ... ] ]\n")


# except

@pytest.mark.parametrize("prog,rc,err", [
    (["true"], 100, b""), (["false"], 0, b""), (["sh", "-c", "exit 100"], 0, b""),
    (["sh", "-c", "exit 111"], 111, b"except: fatal: temporary child error\n"),
    (["no-such-program-x"], 0, b""),
    (["sh", "-c", "kill -9 $$"], 111, b"except: fatal: child crashed\n")])
def test_except(tmp_path: Path, prog: list, rc: int, err: bytes) -> None:
    r = run("except", prog, tmp=tmp_path)
    assert (r.rc, r.out, r.err) == (rc, b"", err)


def test_except_usage_and_stdin(tmp_path: Path) -> None:
    r = run("except", [], tmp=tmp_path)
    assert (r.rc, r.err) == (100, b"except: usage: except program [ arg ... ]\n")
    r = run("except", ["grep", "-q", "quoted"], tmp=tmp_path)  # the child reads our stdin
    assert r.rc == 100


def test_tools_in_a_qmail_file(tmp_path: Path) -> None:
    """condredirect and except as a .qmail uses them, through qmail-local."""
    home = tmp_path / "home"
    home.mkdir()
    qq = FakeQueue(tmp_path)
    (home / ".qmail").write_text("|condredirect boss@example.net grep -q quoted\n./Mailbox\n")
    env = {**qq.env, "PATH": f"{BIN}:/usr/bin:/bin"}
    r = run("qmail-local", ["joe", home, "joe", "", "", "example.com", "s@x.org", "./Mailbox"],
            tmp=tmp_path, env=env)
    assert r.rc == 0 and r.out == b"did 0+0+1\n"
    assert r.err.startswith(b"condredirect: qp ")
    assert qq.envelope == b"Fs@x.org\0Tboss@example.net\0\0"
    assert qq.message == b"Delivered-To: joe@example.com\n" + MESSAGE
    assert not (home / "Mailbox").exists()
