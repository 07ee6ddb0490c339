"""mconnect, mconnect-io and tcpcat against Debian's.

mconnect-io is compared directly, with its descriptors 6 and 7 on pipes.  The
argument lists mconnect and tcpcat give tcpclient are compared with those of
Debian's scripts (their tcpclient swapped for one that prints its arguments).
Whole sessions run ours (with our tcpclient) and Debian's tcpclient with
Debian's mconnect-io against Debian's tcpserver serving a small program.
"""
from __future__ import annotations

import os
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import OURS, write_script


def _read_until(fd: int, want: bytes, timeout: float = 10.0) -> bytes:
    got = b""
    deadline = time.monotonic() + timeout
    while not got.startswith(want) and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        if ready:
            chunk = os.read(fd, 4096)
            if not chunk:
                break
            got += chunk
    return got


#: exec argv[3] with descriptor argv[1] on 6 and argv[2] on 7 (whatever their numbers)
ON_6_AND_7 = """import fcntl, os, sys
a, b = (fcntl.fcntl(int(fd), fcntl.F_DUPFD, 10) for fd in sys.argv[1:3])
os.close(int(sys.argv[1])); os.close(int(sys.argv[2]))
os.dup2(a, 6); os.dup2(b, 7); os.close(a); os.close(b)
os.execv(sys.argv[3], sys.argv[3:])
"""


def run_mconnect_io(prog: str, typed: bytes, server_says: bytes) -> tuple[int, bytes, bytes, bytes]:
    """Run ``prog`` as tcpclient would: the server is read on 6 and written on 7.

    Returns the exit code, stdout, stderr and what reached the server.
    """
    r6, w6 = os.pipe()
    r7, w7 = os.pipe()
    try:
        p = subprocess.Popen([sys.executable, "-c", ON_6_AND_7, str(r6), str(w7), prog],
                             pass_fds=(r6, w7), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
        os.close(r6)
        os.close(w7)
        r6 = w7 = -1
        try:
            p.stdin.write(typed)
            p.stdin.close()
            to_server = _read_until(r7, typed.replace(b"\n", b"\r\n"))
            os.write(w6, server_says)
            os.close(w6)
            w6 = -1
            out = p.stdout.read()
            err = p.stderr.read()
            rc = p.wait(20)
        finally:
            p.kill()
            p.wait()
            p.stdout.close()
            p.stderr.close()
        to_server += _read_until(r7, b"\xff" * 100, timeout=5)  # the rest, up to the end
        return rc, out, err, to_server
    finally:
        for fd in (r6, w6, r7, w7):
            if fd >= 0:
                os.close(fd)


@pytest.mark.parametrize("typed,server_says", [
    (b"HELO x\nQUIT\n", b"220 hi\r\n250 ok\r\n221 bye\r\n"),
    (b"", b"220 only\r\n"),
    (b"no newline", b""),
    (b"a\r\nb\n\n" * 1000, b"x" * 100_000),
])
def test_mconnect_io_matches_debian(ref, typed, server_says):
    mine = run_mconnect_io(str(OURS / "mconnect-io"), typed, server_says)
    theirs = run_mconnect_io(str(ref / "mconnect-io"), typed, server_says)
    assert mine == theirs
    assert mine == (0, server_says, b"", typed.replace(b"\n", b"\r\n"))


def test_mconnect_io_without_a_connection(ref):
    for prog in (OURS / "mconnect-io", ref / "mconnect-io"):
        p = subprocess.run([str(prog)], input=b"hello\n", capture_output=True, timeout=20)
        assert (p.returncode, p.stdout, p.stderr) == (0, b"", b"")


# -- the arguments the scripts give tcpclient ---------------------------------

@pytest.fixture
def fake_bin(tmp_path, ref) -> Path:
    """Our mconnect and tcpcat, and Debian's scripts, beside a tcpclient that prints its argv."""
    d = tmp_path / "bin"
    d.mkdir()
    for name in ("mconnect", "tcpcat"):
        shutil.copy(OURS / name, d / name)  # a copy: the directory is what counts
        theirs = (ref / name).read_text().replace("/usr/bin/", f"{d}/")
        write_script(d / f"debian-{name}", theirs.split("\n", 1)[1])
    write_script(d / "tcpclient", 'for a in "$0" "$@"; do printf "[%s]\\n" "$a"; done; exit 7')
    return d


@pytest.mark.parametrize("name", ["mconnect", "tcpcat"])
@pytest.mark.parametrize("args", [[], ["mail.example"], ["mail.example", "2525"],
                                  ["h", "p", "extra"], ["", ""], ["-v"]])
def test_scripts_run_tcpclient_alike(fake_bin, name, args):
    mine = subprocess.run([str(fake_bin / name), *args], capture_output=True, timeout=20)
    theirs = subprocess.run([str(fake_bin / f"debian-{name}"), *args], capture_output=True,
                            timeout=20)
    assert (mine.returncode, mine.stdout, mine.stderr) == (theirs.returncode, theirs.stdout,
                                                           theirs.stderr)
    assert mine.returncode == 7
    lines = mine.stdout.decode().splitlines()
    assert lines[:3] == [f"[{fake_bin}/tcpclient]", "[-RHl0]", "[--]"]
    host = args[0] if args else "0"
    port = args[1] if len(args) > 1 else ("25" if name == "mconnect" else "17")
    assert lines[3:5] == [f"[{host}]", f"[{port}]"]


def test_mconnect_runs_the_tcpclient_beside_it(tmp_path):
    d = tmp_path / "bin"
    d.mkdir()
    shutil.copy(OURS / "mconnect", d / "mconnect")
    p = subprocess.run([str(d / "mconnect")], capture_output=True, timeout=20)
    assert p.returncode == 111
    assert p.stderr == (f"mconnect: fatal: unable to run {d}/tcpclient: "
                        "file does not exist\n").encode()


# -- whole sessions through Debian's tcpserver (needs our tcpclient) ----------

def serve(spawn, ref: Path, script: str) -> int:
    """Debian's tcpserver on a free loopback port running ``sh -c script``; its port."""
    p = spawn.start([str(ref / "tcpserver"), "-1", "-RHl0", "127.0.0.1", "0", "sh", "-c", script],
                    stdout=subprocess.PIPE)
    line = p.stdout.readline()
    assert line.strip().isdigit(), p.stderr.read() if p.poll() is not None else line
    return int(line)


SMTP = r"""printf '220 test ESMTP\r\n'
while IFS= read -r line; do
  printf '%s\n' "$line" >> "$0"
  case "$line" in
    QUIT*) printf '221 bye\r\n'; exit 0;;
    *) printf '250 ok\r\n';;
  esac
done"""


def test_mconnect_session(spawn, ref, tmp_path):
    log = tmp_path / "log"
    port = serve(spawn, ref, SMTP.replace('"$0"', f'"{log}"'))
    typed = b"HELO client\nMAIL FROM:<a@b>\nQUIT\n"
    mine = subprocess.run([str(OURS / "mconnect"), "127.0.0.1", str(port)], input=typed,
                          capture_output=True, timeout=30)
    said = log.read_bytes() if log.exists() else b""
    log.unlink(missing_ok=True)
    theirs = subprocess.run([str(ref / "tcpclient"), "-RHl0", "--", "127.0.0.1", str(port),
                             str(ref / "mconnect-io")], input=typed, capture_output=True, timeout=30)
    assert (mine.returncode, mine.stdout, mine.stderr) == (theirs.returncode, theirs.stdout,
                                                           theirs.stderr)
    assert mine.stdout == b"220 test ESMTP\r\n250 ok\r\n250 ok\r\n221 bye\r\n"
    assert said == log.read_bytes() == typed.replace(b"\n", b"\r\n")


def test_tcpcat_session(spawn, ref, tmp_path):
    data = tmp_path / "data"
    data.write_bytes(bytes(range(256)) * 1000 + b"\r\n\n")
    port = serve(spawn, ref, f'exec cat "{data}"')
    mine = subprocess.run([str(OURS / "tcpcat"), "127.0.0.1", str(port)],
                          stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
    theirs = subprocess.run([str(ref / "tcpclient"), "-RHl0", "--", "127.0.0.1", str(port),
                             "sh", "-c", "exec cat <&6"], stdin=subprocess.DEVNULL,
                            capture_output=True, timeout=30)
    assert (mine.returncode, mine.stdout, mine.stderr) == (theirs.returncode, theirs.stdout,
                                                           theirs.stderr)
    assert mine.stdout == data.read_bytes()
