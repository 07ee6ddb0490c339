"""What the tcpserver and tcpclient tests share: servers on loopback, clients,
a fake identd on 127.0.0.1:113 and a fake DNS on 127.0.0.1:53, and masks.

Port 113 (ident) and port 53 (DNS: Debian's C resolver always asks port 53 of
``$DNSCACHEIP``) are one each on the machine, so a test holding either takes
a lock file first: the xdist workers take turns.  Every other test passes
``-R`` so it never talks to another test's identd.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import re
import select
import socket
import subprocess
import threading
import time
from pathlib import Path

from tests.helpers import OURS, wait_for
from tests.tcpserver.fakedns import FakeDNS

LOCK_DIR = Path("/tmp")


def sides(ref: Path) -> dict[str, Path]:
    """The two implementations' bin directories."""
    return {"ours": OURS, "C": ref}


def base_env(bindir: Path | None = None, **extra: str) -> dict[str, str]:
    """A plain environment: no DNS server that could hang a test, PATH with ``bindir`` first."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("TCP", "DNSCACHE", "PYTEST", "COV_"))}
    env["PATH"] = (f"{bindir}:" if bindir else "") + "/usr/local/bin:/usr/bin:/bin"
    # a resolver nobody answers quickly: the tests that look names up bring their own
    env["DNSCACHEIP"] = "127.0.0.1"
    env.update(extra)
    return env


@contextlib.contextmanager
def machine_lock(name: str, timeout: float = 120):
    """Hold ``/tmp/pyqmail-test-NAME.lock`` (shared by every xdist worker)."""
    path = LOCK_DIR / f"pyqmail-test-{name}.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise AssertionError(f"could not take {path} in {timeout}s")
                time.sleep(0.05)
        yield
    finally:
        os.close(fd)


def read_line(f, timeout: float = 10) -> bytes:
    """One line from the pipe ``f`` (unbuffered), within ``timeout`` seconds."""
    fd = f.fileno()
    out = b""
    deadline = time.monotonic() + timeout
    while not out.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            raise AssertionError(f"no line within {timeout}s (got {out!r})")
        ch = os.read(fd, 1)
        if not ch:
            break
        out += ch
    return out


class Server:
    """A tcpserver (ours or C) started with ``-1``, its stderr in a file."""

    def __init__(self, spawn, prog: str, opts: list[str], program: list[str], tmp: Path,
                 env: dict[str, str] | None = None, name: str = "server",
                 host: str = "127.0.0.1", port: str = "0", **kw) -> None:
        self.errpath = tmp / f"{name}.err"
        with open(self.errpath, "wb") as err:
            self.p = spawn.start([prog, "-1", *opts, host, port, *program],
                                 stdout=subprocess.PIPE, stderr=err, env=env, **kw)
        line = read_line(self.p.stdout)
        assert line.strip().isdigit(), (line, self.log())
        self.port = int(line)

    def log(self) -> str:
        return self.errpath.read_text(errors="replace")

    def lines(self) -> list[str]:
        return self.log().splitlines()

    def wait_log(self, pattern: str, count: int = 1, timeout: float = 10) -> list[str]:
        """Wait until ``count`` lines match the regex ``pattern``; return them."""
        rx = re.compile(pattern)
        return wait_for(lambda: (lambda m: m if len(m) >= count else None)(
            [line for line in self.lines() if rx.search(line)]),
            timeout=timeout, what=f"{count} log lines like {pattern!r} in:\n{self.log()}")

    def children(self) -> list[int]:
        """Pids of the server's children now."""
        try:
            with open(f"/proc/{self.p.pid}/task/{self.p.pid}/children") as f:
                return [int(x) for x in f.read().split()]
        except OSError:
            return []


class Client:
    """One connection to a server on 127.0.0.1."""

    def __init__(self, port: int, timeout: float = 10) -> None:
        self.s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.port = self.s.getsockname()[1]

    def send(self, data: bytes) -> None:
        self.s.sendall(data)

    def shut(self) -> None:
        self.s.shutdown(socket.SHUT_WR)

    def read_all(self, timeout: float = 10) -> bytes:
        """Everything until the server closes, within ``timeout``."""
        self.s.settimeout(timeout)
        out = b""
        deadline = time.monotonic() + timeout
        while True:
            try:
                data = self.s.recv(65536)
            except ConnectionResetError:
                break
            if not data:
                break
            out += data
            if time.monotonic() > deadline:
                raise AssertionError(f"no end of data within {timeout}s: {out!r}")
        return out

    def read_some(self, n: int, timeout: float = 10) -> bytes:
        """At least ``n`` bytes (or what came before the end)."""
        self.s.settimeout(timeout)
        out = b""
        while len(out) < n:
            data = self.s.recv(65536)
            if not data:
                break
            out += data
        return out

    def quiet(self, wait: float = 0.3) -> bool:
        """True if nothing arrives (and the connection stays open) for ``wait`` seconds."""
        return not select.select([self.s], [], [], wait)[0]

    def close(self) -> None:
        self.s.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def talk(port: int, data: bytes = b"", timeout: float = 10) -> tuple[bytes, int]:
    """Connect, send ``data``, shut down our side, read to the end: (reply, our port)."""
    with Client(port, timeout) as c:
        if data:
            c.send(data)
        c.shut()
        return c.read_all(timeout), c.port


def mask_ports(text: str, ports: dict[int, str]) -> str:
    """Each port number in ``ports`` replaced by its name (whole numbers only)."""
    for port, name in ports.items():
        text = re.sub(rf"(?<![0-9]){port}(?![0-9])", name, text)
    return text


def mask_log(text: str) -> str:
    """pids in tcpserver's -v lines masked."""
    text = re.sub(r"\b(pid|ok|deny|end) \d+", r"\1 PID", text)
    return text


class Identd:
    """A fake RFC 1413 server on 127.0.0.1:113 that says ``reply`` to each question.

    ``reply`` is bytes with ``{q}`` standing for the question's ports as
    asked (``12345 , 25``); None means say nothing and hold the connection.
    """

    def __init__(self, reply: bytes | None = b"{q} : USERID : UNIX : alice\r\n") -> None:
        self.reply = reply
        self.questions: list[bytes] = []
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 113))
        self.sock.listen(50)
        self.sock.settimeout(0.05)
        self._stop = threading.Event()
        self._held: list[socket.socket] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except (socket.timeout, OSError):
                continue
            try:
                conn.settimeout(5)
                data = b""
                while not data.endswith(b"\n"):
                    got = conn.recv(256)
                    if not got:
                        break
                    data += got
                self.questions.append(data)
                if self.reply is None:
                    self._held.append(conn)
                    continue
                conn.sendall(self.reply.replace(b"{q}", data.strip()))
                conn.close()
            except OSError:
                conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()
        for c in self._held:
            c.close()


@contextlib.contextmanager
def identd(reply: bytes | None = b"{q} : USERID : UNIX : alice\r\n"):
    with machine_lock("identd"):
        d = Identd(reply)
        try:
            yield d
        finally:
            d.close()


@contextlib.contextmanager
def no_identd():
    """Port 113 closed for the duration (no other test's identd answers)."""
    with machine_lock("identd"):
        yield


@contextlib.contextmanager
def dns53(records: dict, servfail: set[str] | None = None):
    """The fake DNS on 127.0.0.1:53, where the C resolver asks too."""
    with machine_lock("dns53"):
        d = FakeDNS(records, servfail, port=53).start()
        try:
            yield d
        finally:
            d.stop()
