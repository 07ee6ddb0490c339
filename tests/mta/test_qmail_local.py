"""qmail-local as a program: every .qmail line type, extensions, -owner senders,
loop detection, the permission deferrals, program exit codes and environment,
forwarding through a fake qmail-queue, -n."""
from __future__ import annotations

import mailbox
import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.helpers import ours
from tests.mta.util import MESSAGE, FakeQueue, run

DT = b"Delivered-To: joe@example.com\n"
RP = b"Return-Path: <a@example.org>\n"


@pytest.fixture
def box(tmp_path: Path):
    return Box(tmp_path)


class Box:
    """A throw-away home directory for user joe at example.com."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.home = tmp / "home"
        self.home.mkdir()
        self.home.chmod(0o755)
        for sub in ("tmp", "new", "cur"):
            (self.home / "Maildir" / sub).mkdir(parents=True)
        self.qq = FakeQueue(tmp)

    def qmail(self, name: str, text: str, mode: int = 0o644) -> Path:
        p = self.home / name
        p.write_text(text)
        p.chmod(mode)
        return p

    def deliver(self, ext: str = "", *, local: str | None = None, dash: str | None = None,
                sender: str = "a@example.org", default: str = "./Maildir/",
                message: bytes | None = MESSAGE, flags: list | None = None, env=None):
        if local is None:
            local = "joe" + ("-" + ext if ext else "")
        if dash is None:
            dash = "-" if ext else ""
        full = dict(self.qq.env)
        full.update(env or {})
        return run("qmail-local", [*(flags or []), "joe", self.home, local, dash, ext,
                                   "example.com", sender, default],
                   message=message, tmp=self.tmp, env=full)

    def maildir(self) -> list[bytes]:
        new = self.home / "Maildir" / "new"
        return [(new / n).read_bytes() for n in sorted(os.listdir(new))]


def test_default_delivery_to_maildir(box: Box) -> None:
    r = box.deliver()
    assert (r.rc, r.out, r.err) == (0, b"did 1+0+0\n", b"")
    assert box.maildir() == [RP + b"Delivered-To: joe@example.com\n" + MESSAGE]


def test_default_delivery_to_mailbox(box: Box) -> None:
    r = box.deliver(default="./Mailbox")
    assert (r.rc, r.out) == (0, b"did 1+0+0\n")
    data = (box.home / "Mailbox").read_bytes()
    assert re.match(rb"From a@example\.org \w{3} \w{3} \d\d \d\d:\d\d:\d\d \d{4}\n", data)
    assert data.split(b"\n", 1)[1] == (RP + DT + MESSAGE.replace(b"\nFrom the", b"\n>From the")
                                       .replace(b">From quoted", b">>From quoted") + b"\n")
    mb = mailbox.mbox(box.home / "Mailbox", create=False)
    assert [m["Delivered-To"] for m in mb] == ["joe@example.com"]
    mb.close()


def test_every_line_type(box: Box) -> None:
    box.qmail(".qmail", "# a comment\n./Maildir/  \n./Mailbox\t\n\n"
              f"{box.home}/Abs\n|cat > prog.out\n&fwd@example.net\nbare@example.net\n")
    r = box.deliver()
    assert (r.rc, r.err) == (0, b"")
    assert r.out == f"did 3+2+1\nqp {r.out.split()[-1].decode()}\n".encode()
    assert len(box.maildir()) == 1
    assert (box.home / "Mailbox").exists() and (box.home / "Abs").exists()
    assert (box.home / "prog.out").read_bytes() == MESSAGE
    assert box.qq.message == DT + MESSAGE
    assert box.qq.envelope == b"Fa@example.org\0Tfwd@example.net\0Tbare@example.net\0\0"
    assert (box.qq.dir / "cwd").read_text().strip() == str(box.qq.home)


def test_dash_n_describes(box: Box) -> None:
    box.qmail(".qmail", "./Maildir/\n./Mailbox\n|echo hi\n&x@y.z\nw@v.u\n#c\n")
    r = box.deliver(flags=["-n"], message=None)
    assert (r.rc, r.err) == (0, b"")
    assert r.out == (b"maildir ./Maildir/\nmbox ./Mailbox\nprogram echo hi\nforward x@y.z\n"
                     b"forward w@v.u\ndid 2+2+1\n")
    assert box.maildir() == [] and not box.qq.called


@pytest.mark.parametrize("ext,files,default", [
    ("foo-bar", [".qmail-foo-bar", ".qmail-foo-default", ".qmail-default"], None),
    ("foo-bar", [".qmail-foo-default", ".qmail-default"], b"bar"),
    ("foo-bar", [".qmail-default"], b"foo-bar"),
    ("Foo.Bar-Baz", [".qmail-foo:bar-baz"], None),
    ("Foo.Bar-Baz", [".qmail-foo:bar-default"], b"Baz"),
    ("a-b-c", [".qmail-a-default"], b"b-c"),
    ("x-", [".qmail-x-default", ".qmail-default"], b""),
])
def test_extension_lookup(box: Box, ext: str, files: list, default) -> None:
    for name in files:
        box.qmail(name, f"|echo {name} \"${{DEFAULT-unset}}\"\n")
    r = box.deliver(ext)
    assert r.rc == 0, r.err
    word = files[0]
    assert r.out == f"{word} {'unset' if default is None else default.decode()}\ndid 0+0+1\n".encode()


def test_no_such_extension_bounces(box: Box) -> None:
    r = box.deliver("nobody")
    assert (r.rc, r.out, r.err) == (100, b"", b"Sorry, no mailbox here by that name. (#5.1.1)\n")


def test_empty_qmail_ext_means_default_delivery(box: Box) -> None:
    box.qmail(".qmail-list", "")
    r = box.deliver("list")
    assert (r.rc, r.out) == (0, b"did 1+0+0\n")


def test_qmail_that_is_a_directory_is_not_there(box: Box) -> None:
    (box.home / ".qmail-dir").mkdir()
    assert box.deliver("dir").rc == 100


@pytest.mark.parametrize("sender,files,expected", [
    ("a@example.org", [], b"a@example.org"),
    ("a@example.org", [".qmail-list-owner"], b"joe-list-owner@example.com"),
    ("a@example.org", [".qmail-list-owner", ".qmail-list-owner-default"],
     b"joe-list-owner-@example.com-@[]"),
    ("", [".qmail-list-owner"], b""),
    ("#@[]", [".qmail-list-owner"], b"#@[]"),
])
def test_owner_sender(box: Box, sender: str, files: list, expected: bytes) -> None:
    for name in files:
        box.qmail(name, "./Maildir/\n")
    box.qmail(".qmail-list", "&member@example.net\n|printf %s \"$NEWSENDER\" > ns\n")
    r = box.deliver("list", sender=sender)
    assert r.rc == 0, r.err
    assert (box.home / "ns").read_bytes() == expected
    assert box.qq.envelope == b"F" + expected + b"\0Tmember@example.net\0\0"


def test_execute_bit_allows_only_forwards(box: Box) -> None:
    box.qmail(".qmail-fw", "&a@b.c\nd@e.f\n", 0o755)
    assert box.deliver("fw").rc == 0
    box.qmail(".qmail-mb", "&a@b.c\n./Mailbox\n", 0o755)
    r = box.deliver("mb")
    assert (r.rc, r.err) == (111, b"Uh-oh: .qmail has file delivery but has x bit set. (#4.7.0)\n")
    box.qmail(".qmail-pr", "|true\n", 0o744)
    r = box.deliver("pr")
    assert (r.rc, r.err) == (111, b"Uh-oh: .qmail has prog delivery but has x bit set. (#4.7.0)\n")
    box.qmail(".qmail-pl", "+list\n./Maildir/\n")
    assert box.deliver("pl").rc == 111


def test_loop_detection(box: Box) -> None:
    msg = b"Received: x\n" + DT + b"Subject: s\n\nbody\n"
    r = box.deliver(message=msg)
    assert (r.rc, r.out) == (100, b"")
    assert r.err == b"This message is looping: it already has my Delivered-To line. (#5.4.6)\n"
    # another recipient's line, a different case, or our line in the body: no loop
    for other in (b"Delivered-To: bob@example.com\n\n", b"delivered-to: joe@example.com\n\n",
                  b"Subject: s\n\n" + DT):
        assert box.deliver(message=other).rc == 0


@pytest.mark.parametrize("mode,rc,err", [
    (0o757, 111, b"Uh-oh: home directory is writable. (#4.7.0)\n"),
    (0o1755, 111, b"Home directory is sticky: user is editing his .qmail file. (#4.2.1)\n"),
    (0o775, 0, b""),  # conf-patrn 002: group-writable is allowed, as qmail's default build
])
def test_home_directory_checks(box: Box, mode: int, rc: int, err: bytes) -> None:
    box.home.chmod(mode)
    r = box.deliver()
    assert (r.rc, r.err) == (rc, err)
    assert len(box.maildir()) == (1 if rc == 0 else 0)


def test_sticky_home_with_dash_n_warns(box: Box) -> None:
    box.home.chmod(0o1755)
    r = box.deliver(flags=["-n"], message=None)
    assert (r.rc, r.out, r.err) == (0, b"maildir ./Maildir/\ndid 1+0+0\n",
                                    b"Warning: home directory is sticky.\n")


def test_world_writable_qmail_defers(box: Box) -> None:
    box.qmail(".qmail", "./Maildir/\n", 0o646)
    r = box.deliver()
    assert (r.rc, r.err) == (111, b"Uh-oh: .qmail file is writable. (#4.7.0)\n")
    assert box.maildir() == []


def test_first_line_blank_defers(box: Box) -> None:
    box.qmail(".qmail", "\n./Maildir/\n")
    r = box.deliver()
    assert (r.rc, r.err) == (111, b"Uh-oh: first line of .qmail file is blank. (#4.2.1)\n")
    box.qmail(".qmail", "  \t\n./Maildir/\n")
    assert box.deliver().rc == 111


def test_unreadable_qmail_defers(box: Box) -> None:
    box.qmail(".qmail", "./Maildir/\n")
    (box.home / ".qmail").unlink()
    (box.home / ".qmail").symlink_to(".qmail")  # ELOOP: not there
    assert box.deliver().rc == 0


def test_bad_home(box: Box, tmp_path: Path) -> None:
    r = run("qmail-local", ["joe", tmp_path / "none", "joe", "", "", "example.com", "", "./M"],
            tmp=tmp_path)
    assert (r.rc, r.err) == (111, f"Unable to switch to {tmp_path}/none: file does not exist. "
                                  "(#4.3.0)\n".encode())


@pytest.mark.parametrize("args", [[], ["a"] * 7, ["a"] * 9, ["u", "rel", "u", "", "", "d", "", "x"],
                                  ["-x", "u", "/", "u", "", "", "d", "", "x"]])
def test_usage(tmp_path: Path, args: list) -> None:
    r = run("qmail-local", args, tmp=tmp_path)
    assert r.rc == 100
    assert r.err.endswith(b"qmail-local: usage: qmail-local [ -nN ] user homedir local dash ext "
                          b"domain sender aliasempty\n")


@pytest.mark.parametrize("code,rc", [(0, 0), (99, 0), (100, 100), (64, 100), (65, 100),
                                     (70, 100), (76, 100), (77, 100), (78, 100), (112, 100),
                                     (111, 111), (1, 111), (2, 111), (75, 111), (101, 111)])
def test_program_exit_codes(box: Box, code: int, rc: int) -> None:
    box.qmail(".qmail", f"|echo said {code}; exit {code}\n./Maildir/\n")
    r = box.deliver()
    assert r.rc == rc
    assert r.out.startswith(f"said {code}\n".encode())
    assert r.out == f"said {code}\n".encode() + (b"did 0+0+1\n" if code == 99 else
                                                  b"did 1+0+1\n" if code == 0 else b"")
    assert r.err == b""
    assert len(box.maildir()) == (1 if code == 0 else 0)


def test_program_killed(box: Box) -> None:
    box.qmail(".qmail", "|kill -9 $$\n")
    r = box.deliver()
    assert (r.rc, r.err) == (111, b"Aack, child crashed. (#4.3.0)\n")


def test_exit_99_still_forwards_earlier_lines(box: Box) -> None:
    box.qmail(".qmail", "&early@example.net\n|exit 99\n&late@example.net\n./Maildir/\n")
    r = box.deliver()
    assert r.rc == 0 and r.out.startswith(b"did 0+1+1\nqp ")
    assert box.qq.envelope == b"Fa@example.org\0Tearly@example.net\0\0"
    assert box.maildir() == []


def test_failure_stops_before_forwarding(box: Box) -> None:
    box.qmail(".qmail", "&x@example.net\n|exit 111\n")
    assert box.deliver().rc == 111
    assert not box.qq.called


def test_program_environment(box: Box) -> None:
    box.qmail(".qmail-ab-c:d-default", "|env > env.out; pwd > pwd.out; cat > msg.out\n")
    r = box.deliver("Ab-c.d-x-y", sender="s p@x.org", local="joe-Ab-c.d-x-y",
                    env={"SENDER": "stale", "KEEPME": "1"})
    assert r.rc == 0, r.err
    got = dict(line.split(b"=", 1) for line in
               (box.home / "env.out").read_bytes().split(b"\n") if b"=" in line)
    recip = b"joe-Ab-c.d-x-y@example.com"
    expected = {
        b"SENDER": b"s p@x.org", b"NEWSENDER": b"s p@x.org", b"RECIPIENT": recip,
        b"USER": b"joe", b"HOME": str(box.home).encode(), b"HOST": b"example.com",
        b"HOST2": b"example", b"HOST3": b"example", b"HOST4": b"example",
        b"LOCAL": b"joe-Ab-c.d-x-y", b"EXT": b"Ab-c.d-x-y", b"EXT2": b"c.d-x-y",
        b"EXT3": b"x-y", b"EXT4": b"y", b"DEFAULT": b"x-y", b"KEEPME": b"1",
        b"RPLINE": b'Return-Path: <"s p"@x.org>',
    }
    for k, v in expected.items():
        assert got[k] == v, k
    assert got[b"DTLINE"] == b"Delivered-To: " + recip  # the newline ends env's line
    assert re.fullmatch(rb"From s-p@x\.org \w{3} \w{3} \d\d \d\d:\d\d:\d\d \d{4}", got[b"UFLINE"])
    assert (box.home / "pwd.out").read_text().strip() == str(box.home)
    assert (box.home / "msg.out").read_bytes() == MESSAGE


def test_host_parts(box: Box) -> None:
    box.qmail(".qmail", "|echo $HOST2 $HOST3 $HOST4\n")
    r = run("qmail-local", ["joe", box.home, "joe", "", "", "a.b.c.d.e", "", "./M"], tmp=box.tmp)
    assert r.out == b"a.b.c.d a.b.c a.b\ndid 0+0+1\n"


@pytest.mark.parametrize("sender,line", [
    ("", b"Return-Path: <>\n"), ("a@b", b"Return-Path: <a@b>\n"),
    ("a b@c", b'Return-Path: <"a b"@c>\n'), ("x.@c", b'Return-Path: <"x."@c>\n'),
    ('q"t@c', b'Return-Path: <"q\\"t"@c>\n'), ("noat", b"Return-Path: <noat>\n"),
    ("@c", b'Return-Path: <""@c>\n'), ("a@b@c", b'Return-Path: <"a@b"@c>\n'),
])
def test_return_path_quoting(box: Box, sender: str, line: bytes) -> None:
    assert box.deliver(sender=sender).rc == 0
    assert box.maildir()[0].startswith(line + b"Delivered-To: joe@example.com\n")


@pytest.mark.parametrize("code,rc,text", [
    (31, 100, b"Unable to forward message: mail server permanently rejected message (#5.3.0).\n"),
    (53, 111, b"Unable to forward message: qq write error or disk full (#4.3.0).\n"),
    (15, 100, b"Unable to forward message: qq permanent problem (#5.3.0).\n"),
    (120, 111, b"Unable to forward message: unable to exec qq (#4.3.0).\n"),
])
def test_forward_failures(box: Box, code: int, rc: int, text: bytes) -> None:
    box.qq.exit_with(code)
    box.qmail(".qmail", "&x@example.net\n")
    r = box.deliver()
    assert (r.rc, r.out, r.err) == (rc, b"", text)


def test_qmailqueue_variable(box: Box, tmp_path: Path) -> None:
    other = tmp_path / "filter"
    other.write_text('#!/bin/sh\necho filtered > "$QQ_DIR/filtered"\nexec bin/qmail-queue\n')
    other.chmod(0o755)
    box.qmail(".qmail", "&x@example.net\n")
    assert box.deliver(env={"QMAILQUEUE": str(other)}).rc == 0
    assert (box.qq.dir / "filtered").exists() and box.qq.envelope.endswith(b"Tx@example.net\0\0")
    (box.qq.home / "bin" / "qmail-queue").unlink()
    r = box.deliver()
    assert (r.rc, r.err) == (111, b"Unable to forward message: unable to exec qq (#4.3.0).\n")


def test_program_output_reaches_the_report(box: Box) -> None:
    box.qmail(".qmail", "|bouncesaying 'This address no longer accepts mail.'\n")
    r = box.deliver(env={"PATH": f"{Path(ours('bouncesaying')).parent}:/usr/bin:/bin"})
    assert (r.rc, r.out, r.err) == (100, b"", b"This address no longer accepts mail.\n")


def test_unseekable_stdin(box: Box) -> None:
    p = subprocess.run([ours("qmail-local"), "joe", str(box.home), "joe", "", "", "example.com",
                        "", "./Maildir/"], input=MESSAGE, capture_output=True)
    assert (p.returncode, p.stderr) == (111, b"Unable to rewind message. (#4.3.0)\n")


def test_maildir_errors_are_reported(box: Box) -> None:
    r = box.deliver(default="./NoMaildir/")
    assert (r.rc, r.err) == (111, b"Unable to chdir to maildir. (#4.2.1)\n")
    r = box.deliver(default="./nodir/Mailbox")
    assert (r.rc, r.err) == (111, b"Unable to open ./nodir/Mailbox: file does not exist. "
                                  b"(#4.2.1)\n")


def test_mbox_lock_is_an_flock_and_is_waited_for(box: Box) -> None:
    import fcntl
    import time

    mbox = box.home / "Mailbox"
    mbox.write_bytes(b"")
    holder = os.open(mbox, os.O_RDONLY)
    fcntl.flock(holder, fcntl.LOCK_EX)
    (box.tmp / "m").write_bytes(MESSAGE)
    with open(box.tmp / "m", "rb") as f:
        p = subprocess.Popen([ours("qmail-local"), "joe", str(box.home), "joe", "", "",
                              "example.com", "a@example.org", "./Mailbox"], stdin=f,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    time.sleep(0.5)
    assert p.poll() is None and mbox.read_bytes() == b""
    os.close(holder)
    out, err = p.communicate(timeout=20)
    assert (p.returncode, out, err) == (0, b"did 1+0+0\n", b"")
    assert mbox.read_bytes().endswith(b"last line\n\n")


def test_two_maildir_lines_same_dir(box: Box) -> None:
    """qmail forks a child (new pid) per Maildir line; ours must still make two names."""
    box.qmail(".qmail", "./Maildir/\n./Maildir/\n")
    r = box.deliver()
    assert (r.rc, r.out) == (0, b"did 2+0+0\n")
    assert len(box.maildir()) == 2
