"""Maildir delivery and reading (pyqmail.maildir), read back with stdlib mailbox."""
from __future__ import annotations

import mailbox
import os
import re
import subprocess
import time
from pathlib import Path

import pytest

from pyqmail import maildir
from pyqmail.strerr import Die
from tests.helpers import ours
from tests.mta.util import MESSAGE

HEAD = b"Return-Path: <a@example.org>\nDelivered-To: u@example.com\n"


def make(path: Path) -> Path:
    for sub in ("tmp", "new", "cur"):
        (path / sub).mkdir(parents=True, exist_ok=True)
    return path


def msgfd(tmp_path: Path, data: bytes = MESSAGE) -> int:
    p = tmp_path / "msg"
    p.write_bytes(data)
    return os.open(p, os.O_RDONLY)


def test_deliver_writes_new_and_leaves_tmp_empty(tmp_path: Path) -> None:
    md = make(tmp_path / "Maildir")
    fd = msgfd(tmp_path)
    os.lseek(fd, 10, os.SEEK_SET)  # delivery starts from the beginning whatever the offset
    cwd = os.getcwd()
    name = maildir.deliver(str(md), fd, HEAD)
    os.close(fd)
    assert os.getcwd() == cwd
    assert re.fullmatch(rf"new/\d+\.{os.getpid()}\.{re.escape(maildir.hostname())}", name)
    assert os.listdir(md / "tmp") == []
    assert (md / name).read_bytes() == HEAD + MESSAGE
    box = mailbox.Maildir(md, factory=None, create=False)
    (msg,) = list(box)
    assert msg["Return-Path"] == "<a@example.org>"
    assert msg["Delivered-To"] == "u@example.com"
    assert msg.get_payload() == "From the body\n>From quoted\nlast line\n"


def test_two_deliveries_in_one_process_get_two_names(tmp_path: Path) -> None:
    md = make(tmp_path / "Maildir")
    fd = msgfd(tmp_path)
    names = {maildir.deliver(str(md), fd, b"") for _ in range(2)}
    os.close(fd)
    assert len(names) == 2
    assert sorted(os.listdir(md / "new")) == sorted(n[4:] for n in names)


def test_concurrent_deliveries_all_unique(tmp_path: Path) -> None:
    """Twelve qmail-local processes at once into one Maildir: twelve files."""
    home = tmp_path / "home"
    home.mkdir()
    make(home / "Maildir")
    (tmp_path / "m").write_bytes(MESSAGE)
    procs = []
    for i in range(12):
        with open(tmp_path / "m", "rb") as f:
            procs.append(subprocess.Popen(
                [ours("qmail-local"), "u", str(home), "u", "", "", "example.com", f"s{i}@x.org",
                 "./Maildir/"], stdin=f, stdout=subprocess.PIPE, stderr=subprocess.PIPE))
    for p in procs:
        out, err = p.communicate(timeout=30)
        assert (p.returncode, out, err) == (0, b"did 1+0+0\n", b"")
    files = os.listdir(home / "Maildir" / "new")
    assert len(files) == 12
    senders = {(home / "Maildir" / "new" / f).read_bytes().split(b"\n")[0] for f in files}
    assert senders == {f"Return-Path: <s{i}@x.org>".encode() for i in range(12)}


def test_missing_maildir(tmp_path: Path) -> None:
    fd = msgfd(tmp_path)
    with pytest.raises(Die) as e:
        maildir.deliver(str(tmp_path / "nope"), fd, b"")
    assert (e.value.code, e.value.message) == (111, "Unable to chdir to maildir. (#4.2.1)")


def test_missing_tmp_is_a_temporary_error(tmp_path: Path) -> None:
    md = tmp_path / "Maildir"
    (md / "new").mkdir(parents=True)
    fd = msgfd(tmp_path)
    with pytest.raises(Die) as e:
        maildir.deliver(str(md), fd, b"")
    assert e.value.message == "Temporary error on maildir delivery. (#4.3.0)"


def test_missing_new_leaves_nothing_in_tmp(tmp_path: Path) -> None:
    md = tmp_path / "Maildir"
    (md / "tmp").mkdir(parents=True)
    fd = msgfd(tmp_path)
    with pytest.raises(Die) as e:
        maildir.deliver(str(md), fd, b"")
    assert e.value.message == "Temporary error on maildir delivery. (#4.3.0)"
    assert os.listdir(md / "tmp") == []


def test_unreadable_message(tmp_path: Path) -> None:
    md = make(tmp_path / "Maildir")
    fd = os.open(tmp_path / "w", os.O_WRONLY | os.O_CREAT)  # reads fail with EBADF
    with pytest.raises(Die) as e:
        maildir.deliver(str(md), fd, b"")
    os.close(fd)
    assert e.value.message == "Unable to read message. (#4.3.0)"
    assert os.listdir(md / "tmp") == [] and os.listdir(md / "new") == []


def test_unseekable_message(tmp_path: Path) -> None:
    md = make(tmp_path / "Maildir")
    r, w = os.pipe()
    with pytest.raises(Die) as e:
        maildir.deliver(str(md), r, b"")
    os.close(r)
    os.close(w)
    assert e.value.message == "Unable to rewind message. (#4.3.0)"


def test_timeout(tmp_path: Path, monkeypatch) -> None:
    md = make(tmp_path / "Maildir")
    fd = msgfd(tmp_path)

    def slow(src, dst, header):
        time.sleep(5)

    monkeypatch.setattr(maildir, "TIMEOUT", 1)
    monkeypatch.setattr(maildir, "_copy", slow)
    with pytest.raises(Die) as e:
        maildir.deliver(str(md), fd, b"")
    assert e.value.message == "Timeout on maildir delivery. (#4.3.0)"
    assert os.listdir(md / "tmp") == [] and os.listdir(md / "new") == []


def test_clean_removes_only_old_tmp_files(tmp_path: Path) -> None:
    md = make(tmp_path / "Maildir")
    old, fresh, dot = md / "tmp" / "1.2.h", md / "tmp" / "3.4.h", md / "tmp" / ".x"
    for p in (old, fresh, dot):
        p.write_bytes(b"x")
    long_ago = time.time() - maildir.TMP_AGE - 10
    os.utime(old, (long_ago, long_ago))
    os.utime(dot, (long_ago, long_ago))
    maildir.clean(str(md))
    assert sorted(os.listdir(md / "tmp")) == [".x", "3.4.h"]


def test_scan_by_mtime_new_and_cur(tmp_path: Path) -> None:
    md = make(tmp_path / "Maildir")
    now = time.time()
    files = {"new/b": now - 100, "cur/a:2,S": now - 300, "new/c": now - 200,
             "new/.hidden": now - 400, "new/current": now + 5}
    for name, t in files.items():
        (md / name).write_bytes(b"x")
        os.utime(md / name, (t, t))
    got = maildir.scan(str(md))
    assert [n for _, n in got] == ["cur/a:2,S", "new/c", "new/b"]
    assert [n for _, n in maildir.scan(str(md), cur=False)] == ["new/c", "new/b"]
    assert got[0][0] == int(now - 300)


def test_scan_error(tmp_path: Path) -> None:
    with pytest.raises(maildir.ScanError) as e:
        maildir.scan(str(tmp_path))
    assert e.value.what == "unable to scan $MAILDIR/new: "


def test_two_maildirs_in_one_second_do_not_wait(tmp_path: Path) -> None:
    a, b = make(tmp_path / "A"), make(tmp_path / "B")
    fd = msgfd(tmp_path)
    start = time.monotonic()
    na = maildir.deliver(str(a), fd, b"")
    nb = maildir.deliver(str(b), fd, b"")
    os.close(fd)
    assert time.monotonic() - start < 0.9 or na != nb
    assert (a / na).read_bytes() == (b / nb).read_bytes() == MESSAGE
