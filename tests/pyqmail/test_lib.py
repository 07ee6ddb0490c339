"""Unit tests for the shared library: TAI64N, error texts, getopt, file helpers."""
from __future__ import annotations

import errno
import os
import stat
import subprocess
import sys
import time

import pytest

from pyqmail import errstr, fsutil, sgetopt, tai64
from svtools.status import Status


def test_tai64n_epoch_and_label():
    data = tai64.pack(0, 0)
    assert data.hex() == "400000000000000a00000000"
    assert tai64.label(data) == "@400000000000000a00000000"
    assert tai64.unpack(tai64.pack(1_700_000_000, 123)) == (1_700_000_000, 123)


def test_tai64n_now_is_now():
    sec, nano = tai64.unpack(tai64.now_pack())
    assert abs(sec - time.time()) < 2
    assert 0 <= nano < 1_000_000_000
    assert len(tai64.now_label()) == 25


def test_tai64n_label_read_by_reference_tai64nlocal(ref):
    stamp = tai64.pack(1_000_000_000, 500_000_000)
    line = tai64.label(stamp) + " hello\n"
    out = subprocess.run([str(ref / "tai64nlocal")], input=line.encode(), capture_output=True,
                         env={"TZ": "UTC"}).stdout
    assert out == b"2001-09-09 01:46:40.500000000 hello\n"


def test_error_texts_are_djbs():
    assert errstr.error_str(errno.ENOENT) == "file does not exist"
    assert errstr.error_str(errno.EAGAIN) == "temporary failure"
    assert errstr.error_str(errno.EACCES) == "access denied"
    assert errstr.error_str(errno.ENXIO) == "device not configured"
    assert errstr.error_str(None) == "unknown error"
    assert errstr.error_str(99999) == "unknown error"


def test_error_texts_appear_in_reference_binary(ref):
    """Every text we use is one the C binaries carry."""
    blob = (ref / "svc").read_bytes()
    for num in (errno.ENOENT, errno.EACCES, errno.ENOTDIR, errno.ELOOP, errno.ENOSPC):
        assert errstr.error_str(num).encode() + b"\0" in blob


def test_sgetopt_stops_at_first_non_option():
    opts, rest = sgetopt.sgetopt(["prog", "-ab", "x", "-c"], "abc")
    assert opts == [("a", ""), ("b", "")]
    assert rest == ["x", "-c"]


def test_sgetopt_messages(capfd):
    with pytest.raises(sgetopt.OptError):
        sgetopt.sgetopt(["/usr/bin/prog", "-z"], "ab")
    assert capfd.readouterr().err == "prog: illegal option -- z\n"
    with pytest.raises(sgetopt.OptError):
        sgetopt.sgetopt(["prog", "-x"], "x:")
    assert capfd.readouterr().err == "prog: option requires an argument -- x\n"


def test_fifo_and_nonblocking_write(tmp_path):
    fifo = str(tmp_path / "f")
    fsutil.fifo_make(fifo)
    fsutil.fifo_make(fifo)  # a second call leaves it alone
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    with pytest.raises(OSError) as e:
        fsutil.open_write(fifo)
    assert e.value.errno == errno.ENXIO
    r = fsutil.open_read(fifo)
    w = fsutil.open_write(fifo)
    fsutil.write_all(w, b"ud")
    assert os.read(r, 10) == b"ud"
    os.close(r)
    os.close(w)


def test_lock_is_exclusive_across_processes(tmp_path):
    path = str(tmp_path / "lock")
    fd = fsutil.open_append(path)
    fsutil.lock_exnb(fd)
    code = "import sys; from pyqmail import fsutil\n" \
           "fd = fsutil.open_append(sys.argv[1])\n" \
           "try:\n    fsutil.lock_exnb(fd)\nexcept OSError as e:\n    sys.exit(e.errno)\n"
    r = subprocess.run([sys.executable, "-c", code, path])
    assert r.returncode == errno.EAGAIN
    os.close(fd)
    assert subprocess.run([sys.executable, "-c", code, path]).returncode == 0


def test_replace_file(tmp_path):
    path = str(tmp_path / "state")
    fsutil.replace_file(path, b"one")
    fsutil.replace_file(path, b"two")
    with open(path, "rb") as f:
        assert f.read() == b"two"
    assert not os.path.exists(path + ".new")


def test_status_roundtrip():
    st = Status(tai64.pack(5, 6), 0x01020304, True, b"d")
    data = st.pack()
    assert len(data) == 18
    assert data[12:16] == bytes([4, 3, 2, 1])
    assert data[16:] == b"\x01d"
    assert Status.unpack(data) == st
    with pytest.raises(ValueError):
        Status.unpack(data[:17])


@pytest.mark.parametrize("argv,optstring,opts,rest", [
    (["p"], "ab", [], []),
    (["p", "-a", "-b", "x"], "ab", [("a", ""), ("b", "")], ["x"]),
    (["p", "-", "-a"], "a", [], ["-", "-a"]),
    (["p", "--", "-a"], "a", [], ["-a"]),
    (["p", "-xfoo", "-x", "bar", "y"], "x:", [("x", "foo"), ("x", "bar")], ["y"]),
    (["p", "-vRHl0", "-x", "r.cdb", "0", "25", "prog", "-x"], "vRHl:x:",
     [("v", ""), ("R", ""), ("H", ""), ("l", "0"), ("x", "r.cdb")], ["0", "25", "prog", "-x"]),
])
def test_sgetopt_table(argv, optstring, opts, rest):
    assert sgetopt.sgetopt(argv, optstring) == (opts, rest)
