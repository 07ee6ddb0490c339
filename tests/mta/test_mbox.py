"""mbox delivery (pyqmail.mbox): qmail's From_ line and mboxrd quoting, read back
with stdlib mailbox; locking; a full disk leaves the mbox as it was."""
from __future__ import annotations

import calendar
import fcntl
import mailbox
import os
import re
import subprocess
from pathlib import Path

import pytest

from pyqmail import mbox
from pyqmail.strerr import Die

HEAD = b"Return-Path: <a@example.org>\nDelivered-To: u@example.com\n"
TRICKY = (b"Subject: quoting\n\nFrom here\n>From there\n>>From everywhere\nFrom\n"
          b"From:x\n From indented\nFrom \nno newline at the end")


def unquote_mboxrd(text: bytes) -> bytes:
    return re.sub(rb"(?m)^>(>*From )", rb"\1", text)


def msgfd(tmp_path: Path, data: bytes) -> int:
    p = tmp_path / "msg"
    p.write_bytes(data)
    return os.open(p, os.O_RDONLY)


def test_myctime_and_ufline() -> None:
    t = calendar.timegm((2026, 3, 5, 7, 8, 9))
    assert mbox.myctime(t) == "Thu Mar 05 07:08:09 2026\n"
    assert mbox.ufline(b"a b\tc@d", t) == b"From a-b-c@d Thu Mar 05 07:08:09 2026\n"
    assert mbox.ufline(b"", t) == b"From MAILER-DAEMON Thu Mar 05 07:08:09 2026\n"


@pytest.mark.parametrize("line,quoted", [
    (b"From x", True), (b">From x", True), (b">>>From x", True), (b"From", False),
    (b"From:", False), (b" From x", False), (b"from x", False), (b">", False),
    (b"From ", True), (b">>From\n", False)])
def test_gfrom(line: bytes, quoted: bool) -> None:
    assert mbox.gfrom(line) is quoted


def test_quoter_across_pieces() -> None:
    q = mbox.Quoter()
    out = q.feed(b"a\nFr") + q.feed(b"om x\n>") + q.feed(b"From y\nend") + q.end()
    assert out == b"a\n>From x\n>>From y\nend\n"


def test_deliver_then_read_back(tmp_path: Path) -> None:
    path = tmp_path / "Mailbox"
    uf = mbox.ufline(b"a@example.org", 0)
    for body in (TRICKY, b"Subject: second\n\nplain\n", b""):
        fd = msgfd(tmp_path, body)
        os.lseek(fd, 5, os.SEEK_SET)
        mbox.deliver(str(path), fd, uf + HEAD)
        os.close(fd)
    data = path.read_bytes()
    assert data.startswith(b"From a@example.org Thu Jan 01 00:00:00 1970\n" + HEAD
                           + b"Subject: quoting\n\n>From here\n>>From there\n>>>From every")
    assert b"\nFrom\nFrom:x\n From indented\n>From \nno newline at the end\n\n" in data
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    box = mailbox.mbox(path, create=False)
    msgs = list(box)
    assert len(msgs) == 3
    assert msgs[0].get_from() == "a@example.org Thu Jan 01 00:00:00 1970"
    # stored: the original after mboxrd unquoting, with the newline it lacked (the
    # blank line qmail adds is the separator mailbox takes off)
    stored = msgs[0].as_bytes(unixfrom=False)
    assert unquote_mboxrd(stored) == HEAD + TRICKY + b"\n"
    assert msgs[1]["Subject"] == "second"
    assert msgs[1].get_payload() == "plain\n"
    assert msgs[2]["Delivered-To"] == "u@example.com" and msgs[2].get_payload() == ""
    box.close()


def test_open_failure(tmp_path: Path) -> None:
    fd = msgfd(tmp_path, b"x\n")
    with pytest.raises(Die) as e:
        mbox.deliver(str(tmp_path / "no" / "Mailbox"), fd, b"")
    assert (e.value.code, e.value.message) == (
        111, f"Unable to open {tmp_path}/no/Mailbox: file does not exist. (#4.2.1)")


def test_waits_for_lock_30_seconds(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "Mailbox"
    path.write_bytes(b"")
    holder = os.open(path, os.O_RDONLY)
    fcntl.flock(holder, fcntl.LOCK_EX)
    monkeypatch.setattr(mbox, "LOCK_TIMEOUT", 1)
    fd = msgfd(tmp_path, b"x\n")
    with pytest.raises(Die) as e:
        mbox.deliver(str(path), fd, b"From x\n")
    os.close(holder)
    assert e.value.message == "File has been locked for 30 seconds straight. (#4.3.0)"
    assert path.read_bytes() == b""


def test_read_error_truncates_back(tmp_path: Path) -> None:
    path = tmp_path / "Mailbox"
    path.write_bytes(b"From old\n\nold\n\n")
    fd = os.open(tmp_path / "w", os.O_WRONLY | os.O_CREAT)  # reads fail with EBADF
    with pytest.raises(Die) as e:
        mbox.deliver(str(path), fd, b"From new Thu Jan 01 00:00:00 1970\n")
    assert e.value.message == "Unable to read message: file descriptor not open. (#4.3.0)"
    assert path.read_bytes() == b"From old\n\nold\n\n"


root_only = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to mount a tmpfs")


@root_only
def test_full_disk_leaves_mbox_as_it_was(tmp_path: Path) -> None:
    mnt = tmp_path / "small"
    mnt.mkdir()
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k,mode=0755", "tmpfs", str(mnt)],
                       capture_output=True)
    if p.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {p.stderr.decode(errors='replace').strip()}")
    try:
        before = b"From old Thu Jan 01 00:00:00 1970\n\nold message\n\n"
        (mnt / "Mailbox").write_bytes(before)
        big = b"Subject: big\n\n" + b"x" * 70 + b"\n"
        fd = msgfd(tmp_path, big * 6000)  # 500 kB into 256 kB
        with pytest.raises(Die) as e:
            mbox.deliver(str(mnt / "Mailbox"), fd, b"From a Thu Jan 01 00:00:00 1970\n" + HEAD)
        os.close(fd)
        assert e.value.code == 111
        assert e.value.message == f"Unable to write {mnt}/Mailbox: out of disk space. (#4.3.0)"
        assert (mnt / "Mailbox").read_bytes() == before
        # and once there is room, the same delivery goes through
        fd = msgfd(tmp_path, big * 100)
        mbox.deliver(str(mnt / "Mailbox"), fd, b"From a Thu Jan 01 00:00:00 1970\n" + HEAD)
        os.close(fd)
        box = mailbox.mbox(mnt / "Mailbox", create=False)
        assert len(list(box)) == 2
        box.close()
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)
