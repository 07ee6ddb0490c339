"""pyqmail.cdb against tinycdb's ``cdb`` as the oracle: same bytes out, same records in.

tinycdb writes the very layout djb's cdb_make does (checked here against
Debian's tcprules too, in test_tcprules), so "byte-identical to tinycdb" is
"byte-identical to djb's".  Corrupt and truncated files must give
:class:`cdb.FormatError` (an ``OSError``) and nothing else.
"""
from __future__ import annotations

import errno
import io
import os
import random
import subprocess
from collections import defaultdict
from pathlib import Path

import pytest

from pyqmail import cdb, errstr
from tests import reference


@pytest.fixture(scope="module")
def tinycdb() -> tuple[str, dict[str, str]]:
    return reference.cdb_tool()


def cdbmake_input(records: list[tuple[bytes, bytes]]) -> bytes:
    """The records in cdbmake's ``+klen,dlen:key->data`` format."""
    return b"".join(b"+%d,%d:%s->%s\n" % (len(k), len(v), k, v) for k, v in records) + b"\n"


def tiny_make(tool, path: Path, records: list[tuple[bytes, bytes]]) -> bytes:
    prog, env = tool
    subprocess.run([prog, "-c", str(path)], input=cdbmake_input(records), env=env, check=True)
    return path.read_bytes()


def our_make(path: Path, records: list[tuple[bytes, bytes]]) -> bytes:
    with open(path, "wb") as f:
        w = cdb.Writer(f)
        for k, v in records:
            w.add(k, v)
        w.finish()
    return path.read_bytes()


def random_records(seed: int, n: int, *, dups: float = 0.1, maxk: int = 24,
                   maxv: int = 40) -> list[tuple[bytes, bytes]]:
    rnd = random.Random(seed)
    out = []
    for _ in range(n):
        k = rnd.randbytes(rnd.randrange(maxk + 1))
        out.append((k, rnd.randbytes(rnd.randrange(maxv + 1))))
        while rnd.random() < dups:
            out.append((k, rnd.randbytes(rnd.randrange(maxv + 1))))
    return out


SETS = {
    "nothing": [],
    "one": [(b"key", b"value")],
    "empty key and value": [(b"", b""), (b"", b"x"), (b"k", b"")],
    "same key many times": [(b"dup", b"%d" % i) for i in range(300)],
    "large values": [(b"big", b"x" * 1_000_000), (b"k" * 70_000, b"y" * 100_000), (b"s", b"t")],
    "random, with duplicates": random_records(1, 5000),
    "random, long keys": random_records(2, 500, maxk=3000, maxv=10),
    "dotted quads": [(b"%d.%d.%d.%d" % (a, b, c, d), b"D\0")
                     for a in (10, 192) for b in range(4) for c in range(16) for d in range(0, 256, 7)],
}


@pytest.mark.parametrize("name", list(SETS))
def test_writer_is_byte_identical_to_tinycdb(name: str, tmp_path: Path, tinycdb) -> None:
    records = SETS[name]
    ours = our_make(tmp_path / "ours.cdb", records)
    theirs = tiny_make(tinycdb, tmp_path / "theirs.cdb", records)
    assert ours == theirs


@pytest.mark.parametrize("name", list(SETS))
def test_reader_finds_what_was_written(name: str, tmp_path: Path, tinycdb) -> None:
    records = SETS[name]
    tiny_make(tinycdb, tmp_path / "t.cdb", records)
    by_key: dict[bytes, list[bytes]] = defaultdict(list)
    for k, v in records:
        by_key[k].append(v)
    with cdb.Reader(tmp_path / "t.cdb") as r:
        assert list(r) == records
        for k, vs in by_key.items():
            assert r.find(k) == vs[0]
            assert r.find_all(k) == vs
            assert k in r
        for miss in (b"missing", b"\0", b"k" * 100):
            if miss not in by_key:
                assert r.find(miss) is None
                assert r.find_all(miss) == []
                assert miss not in r


def test_tinycdb_reads_ours(tmp_path: Path, tinycdb) -> None:
    prog, env = tinycdb
    records = random_records(3, 2000, maxk=12) + [(b"dup", b"1"), (b"dup", b"2"), (b"", b"e")]
    our_make(tmp_path / "o.cdb", records)
    dump = subprocess.run([prog, "-d", str(tmp_path / "o.cdb")], env=env, capture_output=True,
                          check=True).stdout
    assert dump == cdbmake_input(records)
    for args, want in ((["-n", "1", "dup"], b"1"), (["-n", "2", "dup"], b"2"), (["dup"], b"12"),
                       (["-m", "dup"], b"1\n2\n"),
                       ([""], b"".join(v for k, v in records if k == b""))):
        out = subprocess.run([prog, "-q", str(tmp_path / "o.cdb"), *args], env=env,
                             capture_output=True).stdout
        assert out == want


def test_hash_is_djbs() -> None:
    assert cdb.cdb_hash(b"") == 5381
    assert cdb.cdb_hash(b"a") == (5381 * 33) ^ 97
    for key in (b"x" * 10, b"\xff" * 30, bytes(range(256)) * 3):
        h = 5381
        for c in key:
            h = (((h << 5) + h) & 0xFFFFFFFF) ^ c
        assert cdb.cdb_hash(key) == h


def test_writer_on_descriptor_and_file_object_agree(tmp_path: Path) -> None:
    records = random_records(4, 3000)
    fd = os.open(tmp_path / "fd.cdb", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.write(fd, b"junk written before")
    w = cdb.Writer(fd)
    for k, v in records:
        w.add(k, v)
    w.finish()
    os.close(fd)
    buf = io.BytesIO()
    w = cdb.Writer(buf)
    for k, v in records:
        w.add(k, v)
    w.finish()
    assert (tmp_path / "fd.cdb").read_bytes() == buf.getvalue() == our_make(tmp_path / "f.cdb", records)
    with pytest.raises(ValueError):
        w.finish()


def test_reader_on_descriptor_leaves_it_open(tmp_path: Path) -> None:
    our_make(tmp_path / "r.cdb", [(b"a", b"1")])
    fd = os.open(tmp_path / "r.cdb", os.O_RDONLY)
    try:
        with cdb.Reader(fd) as r:
            assert r.find(b"a") == b"1"
        os.fstat(fd)  # still open
    finally:
        os.close(fd)


def test_missing_file_is_oserror(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        cdb.Reader(tmp_path / "nope.cdb")


def test_format_error_reads_as_djbs_protocol_error() -> None:
    e = cdb.FormatError()
    assert isinstance(e, OSError) and e.errno == errno.EPROTO
    assert errstr.exc_str(e) == "protocol error"


def test_empty_file_is_invalid_argument_as_debians(tmp_path: Path) -> None:
    (tmp_path / "e.cdb").write_bytes(b"")
    with cdb.Reader(tmp_path / "e.cdb") as r:
        with pytest.raises(cdb.FormatError) as info:
            r.find(b"x")
    assert info.value.errno == errno.EINVAL


def test_directory_reads_as_is_a_directory(tmp_path: Path) -> None:
    with cdb.Reader(tmp_path) as r:
        with pytest.raises(OSError) as info:
            r.find(b"x")
    assert info.value.errno == errno.EISDIR


def test_zeroed_header_is_an_empty_database(tmp_path: Path) -> None:
    (tmp_path / "z.cdb").write_bytes(bytes(2048))
    with cdb.Reader(tmp_path / "z.cdb") as r:
        assert r.find(b"x") is None
        assert list(r) == []


def _probe(path: Path, keys: list[bytes]) -> None:
    """Every lookup and the iteration either work or raise FormatError, nothing else."""
    with cdb.Reader(path) as r:
        for k in keys:
            try:
                r.find_all(k)
            except cdb.FormatError:
                pass
        try:
            list(r)
        except cdb.FormatError:
            pass


def test_truncated_files_raise_format_error_only(tmp_path: Path) -> None:
    records = random_records(5, 60, dups=0.3, maxk=6)
    data = our_make(tmp_path / "full.cdb", records)
    keys = [k for k, _ in records] + [b"missing"]
    cut = tmp_path / "cut.cdb"
    sizes = sorted(set(range(0, 2100, 7)) | set(range(2048, len(data), 3)))
    for n in sizes:
        cut.write_bytes(data[:n])
        _probe(cut, keys)
    cut.write_bytes(data[:2040])
    with cdb.Reader(cut) as r, pytest.raises(cdb.FormatError):
        for k in keys:
            r.find(k)


def test_corrupt_files_raise_format_error_only(tmp_path: Path) -> None:
    records = random_records(6, 200, dups=0.2, maxk=8)
    data = bytearray(our_make(tmp_path / "full.cdb", records))
    keys = [k for k, _ in records[:40]] + [b"missing"]
    rnd = random.Random(7)
    bad = tmp_path / "bad.cdb"
    for _ in range(300):
        copy = bytearray(data)
        for _ in range(rnd.randrange(1, 6)):
            pos = rnd.randrange(len(copy))
            copy[pos] = rnd.randrange(256)
        if rnd.random() < 0.3:  # a wild table pointer or slot count in the header
            i = rnd.randrange(256) * 8 + rnd.choice((0, 4))
            copy[i:i + 4] = rnd.randrange(2**32).to_bytes(4, "little")
        bad.write_bytes(bytes(copy))
        _probe(bad, keys)


def test_huge_slot_count_ends(tmp_path: Path) -> None:
    """A table claiming 2**32-1 slots: the probe runs off the file, not for ever."""
    data = bytearray(our_make(tmp_path / "c.cdb", [(b"a", b"1")]))
    h = cdb.cdb_hash(b"a")
    i = (h & 255) * 8
    data[i + 4:i + 8] = (2**32 - 1).to_bytes(4, "little")
    (tmp_path / "c.cdb").write_bytes(bytes(data))
    with cdb.Reader(tmp_path / "c.cdb") as r, pytest.raises(cdb.FormatError):
        r.find(b"a")
