"""qmail-newmrh: control/morercpthosts to control/morercpthosts.cdb, as qmail 1.03's."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from pyqmail import cdb
from tests.helpers import cmd, ours


@pytest.fixture
def home(tmp_path: Path) -> Path:
    (tmp_path / "control").mkdir()
    return tmp_path


def newmrh(home: Path):
    return cmd([ours("qmail-newmrh")], env={**os.environ, "QMAILHOME": str(home)})


def records(path: Path) -> list[tuple[bytes, bytes]]:
    with cdb.Reader(str(path)) as r:
        return list(r)


def test_keys(home: Path) -> None:
    (home / "control" / "morercpthosts").write_bytes(
        b"Example.COM\n# a comment\n\n   \n.Sub.Example \t \ncr.example\r\n"
        b"dup.example\ndup.example\n  lead.example\nlast.example")
    r = newmrh(home)
    assert (r.rc, r.out, r.err) == (0, "", "")
    assert records(home / "control" / "morercpthosts.cdb") == [
        (b"example.com", b""), (b".sub.example", b""), (b"cr.example\r", b""),
        (b"dup.example", b""), (b"dup.example", b""), (b"  lead.example", b""),
        (b"last.example", b"")]
    assert not (home / "control" / "morercpthosts.tmp").exists()
    assert (home / "control" / "morercpthosts.cdb").stat().st_mode & 0o777 == 0o644


def test_empty(home: Path) -> None:
    (home / "control" / "morercpthosts").write_bytes(b"")
    assert newmrh(home).rc == 0
    assert records(home / "control" / "morercpthosts.cdb") == []
    assert (home / "control" / "morercpthosts.cdb").stat().st_size == 2048


def test_plain_cdb(home: Path, tmp_path: Path) -> None:
    """The CDB is plain cdb, byte for byte what cdb_make writes for the same keys."""
    (home / "control" / "morercpthosts").write_bytes(b"a.example\nb.example\n")
    assert newmrh(home).rc == 0
    other = tmp_path / "other.cdb"
    with open(other, "wb") as f:
        w = cdb.Writer(f)
        w.add(b"a.example", b"")
        w.add(b"b.example", b"")
        w.finish()
    assert (home / "control" / "morercpthosts.cdb").read_bytes() == other.read_bytes()


def test_missing_source(home: Path) -> None:
    r = newmrh(home)
    assert (r.rc, r.err) == (111, "qmail-newmrh: fatal: unable to read control/morercpthosts: "
                                  "file does not exist\n")


def test_missing_home(tmp_path: Path) -> None:
    r = newmrh(tmp_path / "nowhere")
    assert (r.rc, r.err) == (111, f"qmail-newmrh: fatal: unable to chdir to {tmp_path}/nowhere: "
                                  "file does not exist\n")


def test_unwritable_tmp(home: Path) -> None:
    (home / "control" / "morercpthosts").write_bytes(b"a.example\n")
    (home / "control" / "morercpthosts.tmp").mkdir()
    r = newmrh(home)
    assert (r.rc, r.err) == (111, "qmail-newmrh: fatal: unable to write to "
                                  "control/morercpthosts.tmp: is a directory\n")


def test_rename_failure_keeps_the_old_cdb(home: Path) -> None:
    (home / "control" / "morercpthosts").write_bytes(b"a.example\n")
    (home / "control" / "morercpthosts.cdb").mkdir()
    (home / "control" / "morercpthosts.cdb" / "x").write_text("")
    r = newmrh(home)
    # qmail's message has no ": " before the reason
    assert r.rc == 111
    assert r.err.startswith("qmail-newmrh: fatal: unable to move control/morercpthosts.tmp "
                            "to control/morercpthosts.cdb")
    assert r.err.endswith("\n") and ": " not in r.err[len("qmail-newmrh: fatal: "):]
