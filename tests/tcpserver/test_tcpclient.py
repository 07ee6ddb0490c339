"""tcpclient: ours against Debian's C tcpclient 0.88, and each against the other's tcpserver.

The program a tcpclient runs reports its environment and descriptors on its
standard output; both clients connect to the same server, and the reports
must match once port numbers are masked.  Failures are golden transcripts:
exit code, stdout and stderr of both, compared.
"""
from __future__ import annotations

import re
import socket
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import OURS, cmd
from tests.tcpserver.harness import Server, base_env, dns53, identd, mask_ports

USAGE = ("tcpclient: usage: tcpclient [ -hHrRdDqQv ] [ -i localip ] [ -p localport ] "
         "[ -T timeoutconn ] [ -l localname ] [ -t timeoutinfo ] host port program\n")
PTR = "1.0.0.127.in-addr.arpa"
#: prints the descriptors a program got and whether 6 and 7 are one TCP socket
PROBE = [sys.executable, "-c", """
import os, socket
fds = [fd for fd in range(64) if os.path.exists(f"/proc/self/fd/{fd}")]
s = socket.socket(fileno=6)
same = os.fstat(6).st_ino == os.fstat(7).st_ino
print(fds, same, s.type == socket.SOCK_STREAM,
      s.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0, os.get_blocking(6))
s.sendall(b"ping\\n")
s.shutdown(socket.SHUT_WR)
print(s.makefile("rb").read().decode().strip())
s.detach()
"""]


def both(ref: Path) -> list[tuple[str, Path]]:
    return [("ours", OURS), ("C", ref)]


def client(bindir: Path, args: list[str], env=None, timeout: float = 30):
    return cmd([str(bindir / "tcpclient"), *args], env=env or base_env(), timeout=timeout)


@pytest.fixture
def echo_server(spawn, tmp_path, ref):
    """Debian's tcpserver running cat: what the client sends comes back."""
    return Server(spawn, str(ref / "tcpserver"), ["-RHl0"], ["cat"], tmp_path, env=base_env())


def env_lines(out: str, ports: dict[int, str]) -> list[str]:
    """The TCP variables (and PROTO) an ``env`` program printed, in order, masked."""
    lines = [line for line in out.splitlines() if line.startswith(("TCP", "PROTO"))]
    text = mask_ports("\n".join(lines), ports)
    return re.sub(r"^TCPLOCALPORT=\d+$", "TCPLOCALPORT=LOCAL", text, flags=re.M).splitlines()


def test_environment_as_c(echo_server, ref):
    """-RHl0 and a stale TCP environment: the same variables, in the same order."""
    env = base_env(TCPREMOTEHOST="stale", TCPREMOTEINFO="stale", TCPLOCALHOST="stale", ZZZ="z")
    got = {}
    for name, d in both(ref):
        r = client(d, ["-RHl0", "127.0.0.1", str(echo_server.port), "env"], env)
        assert r.rc == 0 and r.err == "", r
        got[name] = [line for line in r.out.splitlines() if not line.startswith("_=")]
        got[name] = mask_ports("\n".join(got[name]), {echo_server.port: "PORT"})
        got[name] = re.sub(r"TCPLOCALPORT=\d+", "TCPLOCALPORT=LOCAL", got[name])
    assert got["ours"] == got["C"]
    tcp = [line for line in got["ours"].splitlines() if line.startswith(("TCP", "PROTO"))]
    assert sorted(tcp) == ["PROTO=TCP", "TCPLOCALHOST=0", "TCPLOCALIP=127.0.0.1",
                           "TCPLOCALPORT=LOCAL", "TCPREMOTEIP=127.0.0.1", "TCPREMOTEPORT=PORT"]


@pytest.mark.parametrize("case", ["names", "no-ptr"])
def test_names(echo_server, ref, case):
    """-h: a PTR name sets TCPLOCALHOST/TCPREMOTEHOST; no name sets them empty."""
    records = {PTR: {"PTR": ["here.example."]}} if case == "names" else {}
    got = {}
    with dns53(records):
        for name, d in both(ref):
            r = client(d, ["-R", "127.0.0.1", str(echo_server.port), "env"])
            assert r.rc == 0, r
            got[name] = env_lines(r.out, {echo_server.port: "PORT"})
    assert got["ours"] == got["C"]
    host = "here.example" if case == "names" else ""
    assert f"TCPLOCALHOST={host}" in got["ours"] and f"TCPREMOTEHOST={host}" in got["ours"]


def test_remoteinfo(echo_server, ref):
    """-r asks the server's identd (port 113 of the server's address)."""
    got = {}
    with identd(b"{q} : USERID : UNIX : carol\r\n") as d:
        for name, bindir in both(ref):
            r = client(bindir, ["-Hl0", "-t2", "127.0.0.1", str(echo_server.port), "env"])
            assert r.rc == 0, r
            got[name] = env_lines(r.out, {echo_server.port: "PORT"})
        assert len(d.questions) == 2
        assert all(q.startswith(b"%d , " % echo_server.port) for q in d.questions)
    assert got["ours"] == got["C"]
    assert "TCPREMOTEINFO=carol" in got["ours"]


@pytest.mark.parametrize("opts", [["-RHl0"], ["-RHl0", "-D"], ["-RHl0", "-D", "-d"]])
def test_descriptors(echo_server, ref, opts):
    """The program gets the connection on 6 (read) and 7 (write), blocking, and
    nothing else new; -D sets TCP_NODELAY."""
    got = {}
    for name, d in both(ref):
        r = client(d, [*opts, "127.0.0.1", str(echo_server.port), *PROBE])
        assert r.rc == 0 and r.err == "", r
        got[name] = r.out
    assert got["ours"] == got["C"]
    nodelay = opts[-1] == "-D"
    assert got["ours"] == f"[0, 1, 2, 6, 7] True True {nodelay} True\nping\n"


@pytest.mark.parametrize("direction", ["ours->C", "C->ours"])
def test_client_meets_server(spawn, tmp_path, ref, direction):
    """Our tcpclient with Debian's tcpserver, and Debian's tcpclient with ours:
    data both ways, and each side's environment names the other end."""
    server_dir, client_dir = (ref, OURS) if direction == "ours->C" else (OURS, ref)
    s = Server(spawn, str(server_dir / "tcpserver"), ["-RHl0"],
               ["sh", "-c", 'echo "$TCPREMOTEPORT"; cat'], tmp_path, env=base_env())
    r = client(client_dir, ["-RHl0", "127.0.0.1", str(s.port), "sh", "-c",
                            'echo hello >&7; exec 7>&-; echo "$TCPLOCALPORT"; '
                            'exec python3 -c "import os,socket; s=socket.socket(fileno=6); '
                            's.shutdown(socket.SHUT_WR); os.write(1, s.makefile(\'rb\').read())"'])
    assert r.rc == 0, r
    local, remote_seen, echoed = r.out.splitlines()
    assert local == remote_seen and echoed == "hello"


def test_local_address_and_port(echo_server, ref):
    """-i and -p choose the local end; -l names it."""
    for name, d in both(ref):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            free = probe.getsockname()[1]
        r = client(d, ["-RH", "-l", "me.example", "-i", "127.0.0.1", "-p", str(free),
                       "127.0.0.1", str(echo_server.port), "env"])
        assert r.rc == 0, (name, r)
        assert f"TCPLOCALPORT={free}" in r.out and "TCPLOCALHOST=me.example" in r.out


def test_verbose(echo_server, ref):
    """-v says which address and port it connected to."""
    for name, d in both(ref):
        r = client(d, ["-vRHl0", "127.0.0.1", str(echo_server.port), "true"])
        assert (r.rc, r.out, r.err) == (
            0, "", f"tcpclient: connected to 127.0.0.1 port {echo_server.port}\n"), name


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


GOLDEN = [
    [], ["-Z"], ["-q", "-Z"], ["127.0.0.1"], ["127.0.0.1", "1"], ["-q", "127.0.0.1", "1"],
    ["127.0.0.1", "nosuchservice", "true"], ["127.0.0.1", "nosuchservice"],
    ["-i", "1.2.3", "127.0.0.1", "1", "true"], ["-i", "10.0.0.1", "127.0.0.1", "1", "true"],
    ["-i", "1.2.3.4x", "127.0.0.1", "1", "true"],
    ["-RHl0", "127.0.0.1", "CLOSED", "true"], ["-vRHl0", "127.0.0.1", "CLOSED", "true"],
    ["-qRHl0", "127.0.0.1", "CLOSED", "true"], ["-RHl0", "", "CLOSED", "true"],
    ["-RHl0", "0", "CLOSED", "true"], ["-RHl0", "-T", "0", "127.0.0.1", "CLOSED", "true"],
    ["-RHl0", "127.0.0.1", "ECHO", "/nonexistent/prog"],
    ["-qRHl0", "127.0.0.1", "ECHO", "/nonexistent/prog"],
    ["-RHl0", "-p", "ECHO", "127.0.0.1", "ECHO", "true"],
    ["-RHl0", "127.0.0.1", "ECHO", "sh", "-c", "exit 7"],
]


@pytest.mark.parametrize("args", GOLDEN, ids=lambda a: " ".join(a) or "none")
def test_golden(echo_server, ref, args):
    """Usage errors, refusals, bind failures, a missing program: same code, stdout, stderr."""
    port, free = str(echo_server.port), str(closed_port())
    args = [port if a == "ECHO" else free if a == "CLOSED" else a for a in args]
    r = {name: client(d, args) for name, d in both(ref)}
    assert r["ours"] == r["C"]
    assert r["ours"].rc in (7, 100, 111)


@pytest.mark.parametrize("case", ["nxdomain", "servfail", "address"])
def test_golden_dns(echo_server, ref, case):
    """A name with no address, one the DNS fails on, one that resolves."""
    host = {"nxdomain": "none.example", "servfail": "broken.example",
            "address": "server.example"}[case]
    with dns53({"server.example": {"A": ["127.0.0.1"]}}, servfail={"broken.example"}):
        r = {name: client(d, ["-RHl0", host, str(echo_server.port), "echo", "connected"],
                          timeout=60) for name, d in both(ref)}
    assert r["ours"] == r["C"]
    assert r["ours"].out + r["ours"].err == {
        "nxdomain": "tcpclient: fatal: no IP address for none.example\n",
        "servfail": "tcpclient: fatal: temporarily unable to figure out IP address for "
                    "broken.example: temporary failure\n",
        "address": "connected\n"}[case]


def test_timeout(ref):
    """-T: a server whose backlog is full never answers the SYN: ``timed out``
    after x seconds (one address gets x+y)."""
    with socket.socket() as full:
        full.bind(("127.0.0.1", 0))
        full.listen(0)
        port = full.getsockname()[1]
        fillers = []
        try:
            for _ in range(3):  # the accept queue is full after the first
                f = socket.socket()
                f.setblocking(False)
                f.connect_ex(("127.0.0.1", port))
                fillers.append(f)
            time.sleep(0.2)
            for opts, seconds in ((["-T1"], 1), (["-T", "1+1"], 2)):
                results = {}
                for name, d in both(ref):
                    t = time.monotonic()
                    results[name] = client(d, ["-RHl0", *opts, "127.0.0.1", str(port), "true"])
                    took = time.monotonic() - t
                    assert seconds - 0.1 < took < seconds + 1.5, (name, took)
                assert results["ours"] == results["C"]
                assert results["ours"].err == (f"tcpclient: unable to connect to 127.0.0.1 "
                                               f"port {port}: timed out\n")
        finally:
            for f in fillers:
                f.close()


def test_fds_6_and_7_closed_first(echo_server, ref):
    """Descriptors 6 and 7 the caller left open are closed before anything else."""
    got = {}
    for name, d in both(ref):
        script = (f'exec 6</dev/null 7>/dev/null; exec {d}/tcpclient -RHl0 127.0.0.1 '
                  f'{echo_server.port} ls -l /proc/self/fd/6 /proc/self/fd/7')
        r = cmd(["sh", "-c", script], env=base_env())
        assert r.rc == 0, r
        got[name] = re.findall(r"-> (socket):", r.out)
    assert got["ours"] == got["C"] == ["socket", "socket"]
