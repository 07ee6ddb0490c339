"""qmail-qread and qmail-qstat over queue trees built by hand (qmail 1.03's layout)."""
from __future__ import annotations

import calendar
import os
import subprocess
from pathlib import Path

import pytest

from tests.helpers import ours

SPLIT = 23
#: 24 Nov 2026 10:00:00 GMT
BIRTH = calendar.timegm((2026, 11, 24, 10, 0, 0))


class Queue:
    """A qmail queue under ``home``/queue, filled file by file."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.q = home / "queue"
        for d in ("todo", "intd", "bounce", "pid", "lock"):
            (self.q / d).mkdir(parents=True)
        for d in ("mess", "info", "local", "remote"):
            for i in range(SPLIT):
                (self.q / d / str(i)).mkdir(parents=True)

    def path(self, d: str, n: int) -> Path:
        return self.q / d / str(n % SPLIT) / str(n)

    def mess(self, n: int, body: bytes = b"Subject: x\n\nhi\n") -> None:
        self.path("mess", n).write_bytes(body)

    def todo(self, n: int, sender: bytes, recips: list[bytes]) -> None:
        """A message injected but not yet preprocessed by qmail-send."""
        self.mess(n)
        env = b"u0\0p123\0F" + sender + b"\0" + b"".join(b"T" + r + b"\0" for r in recips) + b"\0"
        (self.q / "todo" / str(n)).write_bytes(env)

    def message(self, n: int, sender: bytes, *, local: list[bytes] | None = None,
                remote: list[bytes] | None = None, birth: int = BIRTH,
                body: bytes = b"Subject: x\n\nhi\n", bounce: bool = False) -> None:
        """A preprocessed message: mess/N, info/N, local/N and remote/N."""
        self.mess(n, body)
        info = self.path("info", n)
        info.write_bytes(b"F" + sender + b"\0")
        os.utime(info, (birth, birth))
        for channel, recips in (("local", local), ("remote", remote)):
            if recips is not None:
                self.path(channel, n).write_bytes(b"".join(r + b"\0" for r in recips))
        if bounce:
            (self.q / "bounce" / str(n)).write_bytes(b"")


@pytest.fixture
def queue(tmp_path) -> Queue:
    return Queue(tmp_path)


def run(prog: str, home: Path, *args: str) -> subprocess.CompletedProcess:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "QMAILHOME": str(home)}
    return subprocess.run([ours(prog), *args], env=env, capture_output=True, timeout=30)


def qread(home: Path) -> tuple[int, str, bytes]:
    p = run("qmail-qread", home)
    return p.returncode, p.stdout.decode("latin-1"), p.stderr


def qstat(home: Path) -> tuple[int, str, bytes]:
    p = run("qmail-qstat", home)
    return p.returncode, p.stdout.decode("latin-1"), p.stderr


# -- qmail-qread ---------------------------------------------------------------

def test_empty_queue(queue):
    assert qread(queue.home) == (0, "", b"")
    assert qstat(queue.home) == (0, "messages in queue: 0\n"
                                 "messages in queue but not yet preprocessed: 0\n", b"")


def test_listing(queue):
    # numbers in different subdirectories (1, 5, 7), so the order is the scan's
    queue.message(24, b"joe@example.com", local=[b"Tjoe@here", b"Dann@here"],
                  remote=[b"Tbob@far.example", b"Dcarol@far.example"], body=b"x" * 456)
    queue.message(28, b"", remote=[b"Tpostmaster@example.net"], bounce=True,
                  birth=calendar.timegm((2026, 1, 5, 3, 4, 5)), body=b"")
    queue.message(30, b"a@b", local=[b"Dx@here"])
    assert qread(queue.home) == (0, (
        "24 Nov 2026 10:00:00 GMT  #24  456  <joe@example.com> \n"
        "\tlocal\tjoe@here\n"
        "  done\tlocal\tann@here\n"
        "\tremote\tbob@far.example\n"
        "  done\tremote\tcarol@far.example\n"
        "5 Jan 2026 03:04:05 GMT  #28  0  <>  bouncing\n"
        "\tremote\tpostmaster@example.net\n"
        "24 Nov 2026 10:00:00 GMT  #30  15  <a@b> \n"
        "  done\tlocal\tx@here\n"), b"")


def test_todo_not_listed_but_counted(queue):
    queue.message(24, b"joe@example.com", local=[b"Tjoe@here"])
    queue.todo(25, b"sue@example.com", [b"a@here", b"b@far"])
    queue.todo(26, b"", [b"c@here"])
    rc, out, err = qread(queue.home)
    assert (rc, err) == (0, b"")
    assert "#25" not in out and "#26" not in out and out.startswith(
        "24 Nov 2026 10:00:00 GMT  #24  15  <joe@example.com> \n")
    assert qstat(queue.home) == (0, "messages in queue: 3\n"
                                 "messages in queue but not yet preprocessed: 2\n", b"")


def test_unprintable_bytes_and_odd_records(queue):
    queue.message(1, "jöe\t@x".encode(),
                  local=[b"T\x01ctl@here", b"Xignored", b"", b"Tok@here"])
    # a last record without its NUL is not printed
    with open(queue.path("local", 1), "ab") as f:
        f.write(b"Tpartial@here")
    assert qread(queue.home) == (0, (
        "24 Nov 2026 10:00:00 GMT  #1  15  <j__e_@x> \n"
        "\tlocal\t_ctl@here\n"
        "\tlocal\tok@here\n"), b"")


def test_info_without_nul_and_extra_fields(queue):
    queue.message(2, b"s@x")
    queue.path("info", 2).write_bytes(b"Fs@x")
    os.utime(queue.path("info", 2), (BIRTH, BIRTH))
    queue.message(3, b"t@x")
    queue.path("info", 3).write_bytes(b"Ft@x\0junk\0")
    os.utime(queue.path("info", 3), (BIRTH, BIRTH))
    rc, out, _ = qread(queue.home)
    assert rc == 0 and out == ("24 Nov 2026 10:00:00 GMT  #2  15  <s@x> \n"
                               "24 Nov 2026 10:00:00 GMT  #3  15  <t@x> \n")


def test_unreadable_messages_are_warnings(queue):
    queue.message(1, b"ok@x", local=[b"Tl@here"], remote=[b"Tr@far"])
    # info/N that cannot be opened (a symbolic link loop: root reads through modes)
    queue.message(2, b"lost@x", local=[b"Tl@here"])
    info = queue.path("info", 2)
    info.unlink()
    info.symlink_to(info.name)
    # mess/N missing
    queue.message(3, b"gone@x")
    queue.path("mess", 3).unlink()
    # local/N that cannot be opened: a warning after the line, remote/N still read
    queue.message(4, b"half@x", local=[b"Tl@here"], remote=[b"Tr@far"])
    loc = queue.path("local", 4)
    loc.unlink()
    loc.symlink_to(loc.name)
    # names that are not message numbers are skipped
    (queue.q / "info" / "5" / "tmp28").write_bytes(b"Fx\0")
    (queue.q / "info" / "5" / ".28").write_bytes(b"Fx\0")
    assert qread(queue.home) == (0, (
        "24 Nov 2026 10:00:00 GMT  #1  15  <ok@x> \n"
        "\tlocal\tl@here\n"
        "\tremote\tr@far\n"
        "warning: trouble with #2: symbolic link loop\n"
        "warning: trouble with #3: file does not exist\n"
        "24 Nov 2026 10:00:00 GMT  #4  15  <half@x> \n"
        "warning: trouble with #4: symbolic link loop\n"
        "\tremote\tr@far\n"), b"")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their modes")
def test_info_without_permission(queue):
    queue.message(1, b"ok@x")
    queue.path("info", 1).chmod(0)
    assert qread(queue.home) == (0, "warning: trouble with #1: access denied\n", b"")


def test_info_that_cannot_be_read_is_fatal(queue):
    queue.message(1, b"ok@x", local=[b"Tl@here"])
    queue.message(2, b"dir@x")
    info = queue.path("info", 2)
    info.unlink()
    info.mkdir()
    queue.message(3, b"never@x")
    assert qread(queue.home) == (111, (
        "24 Nov 2026 10:00:00 GMT  #1  15  <ok@x> \n"
        "\tlocal\tl@here\n"
        "fatal: out of memory\n"), b"")


def test_missing_subdirectory_is_fatal(queue):
    queue.message(1, b"ok@x")
    queue.message(9, b"late@x")
    (queue.q / "info" / "4").rmdir()
    assert qread(queue.home) == (111, (
        "24 Nov 2026 10:00:00 GMT  #1  15  <ok@x> \n"
        "fatal: unable to opendir info/4: file does not exist\n"), b"")


def test_no_queue_is_fatal(tmp_path):
    assert qread(tmp_path / "nothere") == (
        111, "fatal: unable to chdir: file does not exist\n", b"")
    (tmp_path / "home").mkdir()
    assert qread(tmp_path / "home") == (
        111, "fatal: unable to chdir: file does not exist\n", b"")


def test_many_messages(queue):
    for n in range(1, 301):
        queue.message(n, b"s%d@x" % n, remote=[b"T%d@far" % n])
    rc, out, err = qread(queue.home)
    assert (rc, err) == (0, b"")
    lines = out.splitlines()
    assert len(lines) == 600
    ids = [int(line.split("#")[1].split()[0]) for line in lines[::2]]
    assert sorted(ids) == list(range(1, 301))
    assert [i % SPLIT for i in ids] == sorted(i % SPLIT for i in ids)


# -- qmail-qstat ---------------------------------------------------------------

def test_qstat_counts_like_find(queue):
    for n in (1, 2, 24, 47):
        queue.message(n, b"x@y", local=[b"Tz@here"])
    queue.todo(5, b"x@y", [b"a@here"])
    # anything below mess/<split> counts, at any depth; mess/ itself and dot entries do not
    (queue.q / "mess" / "3" / "stray").mkdir()
    (queue.q / "mess" / "3" / "stray" / "f").write_bytes(b"")
    (queue.q / "mess" / "notasplit").write_bytes(b"")
    (queue.q / "mess" / ".hidden").mkdir()
    (queue.q / "mess" / ".hidden" / "f").write_bytes(b"")
    (queue.q / "todo" / ".dot").write_bytes(b"")
    assert qstat(queue.home) == (0, "messages in queue: 7\n"
                                 "messages in queue but not yet preprocessed: 2\n", b"")


def test_qstat_ignores_arguments(queue):
    queue.todo(5, b"x@y", [b"a@here"])
    p = run("qmail-qstat", queue.home, "-x", "junk")
    assert (p.returncode, p.stdout) == (0, b"messages in queue: 1\n"
                                           b"messages in queue but not yet preprocessed: 1\n")


def test_qstat_unreadable_directory(queue):
    queue.message(1, b"x@y")
    todo = queue.q / "todo"
    todo.rmdir()
    todo.symlink_to("todo")
    rc, out, err = qstat(queue.home)
    assert (rc, out) == (111, "messages in queue: 1\n"
                              "messages in queue but not yet preprocessed: 0\n")
    assert err == b"qmail-qstat: warning: unable to read todo: symbolic link loop\n"


def test_qstat_no_queue(tmp_path):
    rc, out, err = qstat(tmp_path / "nothere")
    assert (rc, out) == (111, "")
    assert err.decode() == (f"qmail-qstat: fatal: unable to chdir to {tmp_path}/nothere/queue:"
                            " file does not exist\n")
