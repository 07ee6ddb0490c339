"""IPv6 in tcpserver and tcpclient: ours against Debian's ucspi-tcp-ipv6, on ::1.

Each scenario runs with both tcpservers (or tcpclients) and compares what the
program and the ``-v`` log see, pids and port numbers masked: the environment
of an IPv6 connection (PROTO=TCP6, each TCP variable followed by its TCP6
twin), the listening hosts ``::1`` and ``0`` (``::``, IPv4 too), ``-6``,
``-4``, and rules for IPv6 addresses and prefixes.  One deliberate difference
is checked against ucspi-tcp 0.88 instead: an IPv4 connection without ``-6``
gets 0.88's environment and log line, even when it arrives on ``::``
(ucspi-tcp6 adds TCP6 variables holding the mapped address).
"""
from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests import reference
from tests.helpers import OURS, cmd
from tests.tcpserver.harness import Server, base_env, dns53, mask_log, mask_ports


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


pytestmark = pytest.mark.skipif(not _ipv6_loopback(), reason="no ::1 here")
QUIET = ["-RH", "-l", "lname"]


@pytest.fixture(scope="module")
def ref6() -> Path:
    return reference.ipv6_bindir()


@pytest.fixture
def both6(ref6):
    return [("ours", OURS), ("C", ref6)]


def talk(ip: str, port: int, data: bytes = b"", timeout: float = 10) -> tuple[bytes, int]:
    """Connect to ``ip``, send ``data``, shut our side, read to the end: (reply, our port)."""
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    with socket.socket(family) as s:
        s.settimeout(timeout)
        s.connect((ip, port))
        if data:
            s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        out = b""
        while True:
            got = s.recv(65536)
            if not got:
                return out, s.getsockname()[1]
            out += got


def one(spawn, tmp_path, bindir: Path, opts: list[str], host: str, connect: str,
        env=None, program=("env",)) -> tuple[list[str], list[str]]:
    """Serve ``program`` on ``host`` once, connect from ``connect``: (env lines, log lines)."""
    s = Server(spawn, str(bindir / "tcpserver"), ["-v", *opts], list(program), tmp_path,
               env=env or base_env(), name=f"server-{bindir.parent.parent.name}", host=host)
    reply, port = talk(connect, s.port)
    s.wait_log(r"^tcpserver: end ")
    s.p.send_signal(signal.SIGTERM)
    s.p.wait(timeout=10)
    ports = {s.port: "LPORT", port: "RPORT"}
    lines = [line for line in mask_ports(reply.decode(), ports).splitlines()
             if not line.startswith("_=")]
    return lines, mask_log(mask_ports(s.log(), ports)).splitlines()


def compare(spawn, tmp_path, both6, opts, host, connect, env=None):
    got = {name: one(spawn, tmp_path, d, opts, host, connect, env) for name, d in both6}
    assert got["ours"] == got["C"]
    return got["ours"]


@pytest.mark.parametrize("host", ["::1", "0"])
def test_environment_ipv6(spawn, tmp_path, both6, host):
    """An IPv6 connection: PROTO=TCP6, the TCP6 twins, compressed addresses, the log."""
    env, log = compare(spawn, tmp_path, both6, QUIET, host, "::1")
    assert "PROTO=TCP6" in env and "TCP6REMOTEIP=::1" in env and "TCPLOCALIP=::1" in env
    assert "tcpserver: ok PID lname:::1:LPORT :::1::RPORT" in log


def test_environment_replaces_and_keeps(spawn, tmp_path, both6):
    """Variables already set: a TCP6 one the connection has not is removed, its
    slot going to the last; TCP6INTERFACE (no scope on ::1) is left alone."""
    env = base_env(TCP6INTERFACE="pre", TCP6REMOTEHOST="pre", TCPREMOTEINFO="x")
    got, _ = compare(spawn, tmp_path, both6, QUIET, "::1", "::1", env)
    assert "TCP6INTERFACE=pre" in got and not any(v.startswith("TCP6REMOTEHOST") for v in got)


def test_flag6_ipv4_connection(spawn, tmp_path, both6):
    """-6: an IPv4 connection described as IPv6, with mapped addresses."""
    env, log = compare(spawn, tmp_path, both6, ["-6", *QUIET], "0", "127.0.0.1")
    assert "TCPREMOTEIP=::ffff:127.0.0.1" in env and "PROTO=TCP6" in env


def test_flag4_ipv6_host(spawn, tmp_path, both6):
    """-4 with an IPv6 address cannot bind."""
    out = {name: cmd([str(d / "tcpserver"), "-4", "::1", "0", "true"], env=base_env())
           for name, d in both6}
    assert (out["ours"].rc, out["ours"].out, out["ours"].err) == \
        (out["C"].rc, out["C"].out, out["C"].err)
    assert out["ours"].rc == 111


def test_ipv4_on_all_stays_088(spawn, tmp_path, ref):
    """``0`` listens on IPv6 too, yet an IPv4 connection sees exactly 0.88's
    environment and log (ours on ``0`` against 0.88 on ``0``)."""
    got = {name: one(spawn, tmp_path, d, QUIET, "0", "127.0.0.1")
           for name, d in (("ours", OURS), ("C", ref))}
    assert got["ours"] == got["C"]
    assert "PROTO=TCP" in got["ours"][0]
    assert not any(v.startswith("TCP6") for v in got["ours"][0])


RULES6 = {
    "exact deny": "::1:deny\n:allow,WHO=\"all\"\n",
    "prefix allow with env": "fe80::deny\n:::allow,WHO=\"colon prefix\"\n:deny\n",
    "prefix deny": ":::deny\n:allow,WHO=\"all\"\n",
    "ipv4 rules only": "127.:deny\n:allow,WHO=\"default\"\n",
    "exact over prefix": "::1:allow,WHO=\"exact\"\n:::deny\n",
}


@pytest.mark.parametrize("case", sorted(RULES6))
def test_rules_ipv6(spawn, tmp_path, both6, ref6, case):
    """-x: an IPv6 remote address looked up in a cdb made by Debian's ipv6 tcprules."""
    cdb = tmp_path / "rules.cdb"
    r = subprocess.run([str(ref6 / "tcprules"), str(cdb), str(cdb) + ".tmp"],
                       input=RULES6[case].encode(), capture_output=True)
    assert r.returncode == 0, r.stderr
    env, log = compare(spawn, tmp_path, both6, [*QUIET, "-x", str(cdb)], "::1", "::1")
    assert any(line.startswith(("tcpserver: ok", "tcpserver: deny")) for line in log)


# -- tcpclient ---------------------------------------------------------------
PROGRAM = ["sh", "-c", "env | grep -E '^(PROTO|TCP)' ; echo hi >&7"]


def client_run(bindir: Path, args: list[str], port: int) -> tuple[int, str, str]:
    r = cmd([str(bindir / "tcpclient"), *args], env=base_env())
    ports = {port: "PORT"}
    out, err = mask_ports(r.out, ports), mask_ports(r.err, ports)
    out = re.sub(r"TCPLOCALPORT=\d+", "TCPLOCALPORT=LP", out)
    return r.rc, out, err


@pytest.fixture
def listener6():
    s = socket.socket(socket.AF_INET6)
    s.bind(("::1", 0))
    s.listen(50)
    yield s
    s.close()


@pytest.mark.parametrize("opts", [["-v", "-RH", "-l", "ln"], ["-RH", "-l", "ln", "-i", "::1"],
                                  ["-v", "-RHD", "-l", "ln", "-6"]])
def test_tcpclient_ipv6(both6, listener6, opts):
    port = listener6.getsockname()[1]
    got = {name: client_run(d, [*opts, "::1", str(port), *PROGRAM], port)
           for name, d in both6}
    assert got["ours"] == got["C"]
    assert "PROTO=TCP6" in got["ours"][1] and "TCPREMOTEIP=::1" in got["ours"][1]


def test_tcpclient_ipv6_refused(both6):
    with socket.socket(socket.AF_INET6) as s:
        s.bind(("::1", 0))
        port = s.getsockname()[1]  # bound, not listening: refused
        got = {name: client_run(d, ["-v", "-RH", "::1", str(port), "true"], port)
               for name, d in both6}
    assert got["ours"] == got["C"]
    assert got["ours"][0] == 111


def test_tcpclient_to_our_server(spawn, tmp_path, both6):
    """Each tcpclient against our tcpserver on ::1: the server's TCP6 view of it."""
    s = Server(spawn, str(OURS / "tcpserver"), QUIET, ["sh", "-c", "echo $PROTO $TCPREMOTEIP"],
               tmp_path, env=base_env(), host="::1")
    for _, d in both6:
        r = cmd([str(d / "tcpclient"), "-RH", "-l", "ln", "::1", str(s.port), sys.executable, "-c",
                 "import os; print(os.read(6, 100).decode(), end='')"],
                env=base_env())
        assert r.out == "TCP6 ::1\n"


PTR6 = "1." + "0." * 31 + "ip6.arpa"


@pytest.mark.parametrize("case", ["names", "paranoid-ok", "paranoid-liar", "no-ptr"])
def test_names_from_dns_ipv6(spawn, tmp_path, both6, case):
    """-h and -p on ::1: TCPLOCALHOST/TCPREMOTEHOST (and TCP6 twins) from ip6.arpa PTR and AAAA."""
    records = {
        "names": {PTR6: {"PTR": ["client.example."]}},
        "paranoid-ok": {PTR6: {"PTR": ["client.example."]}, "client.example": {"AAAA": ["::1"]}},
        "paranoid-liar": {PTR6: {"PTR": ["liar.example."]}, "liar.example": {"AAAA": ["::2"]}},
        "no-ptr": {},
    }[case]
    opts = ["-R"] + (["-p"] if case.startswith("paranoid") else [])
    with dns53(records):
        env, log = compare(spawn, tmp_path, both6, opts, "::1", "::1")
    if case in ("names", "paranoid-ok"):
        assert "TCP6REMOTEHOST=client.example" in env


def _link_local() -> tuple[str, str] | None:
    """(address, interface) of a link-local IPv6 address here, if any."""
    try:
        with open("/proc/net/if_inet6") as f:
            for line in f:
                hexip, _, _, scope, _, iface = line.split()
                if scope == "20":
                    ip = socket.inet_ntop(socket.AF_INET6, bytes.fromhex(hexip))
                    return ip, iface
    except (OSError, ValueError):
        pass
    return None


@pytest.mark.skipif(_link_local() is None, reason="no link-local IPv6 address here")
def test_interface_link_local(spawn, tmp_path, both6):
    """-I: listening on a link-local address; TCP6INTERFACE names the interface."""
    ip, iface = _link_local()
    got = {}
    for name, d in both6:
        s = Server(spawn, str(d / "tcpserver"), ["-v", *QUIET, "-I", iface], ["env"], tmp_path,
                   env=base_env(), name=f"server-{name}", host=ip)
        with socket.socket(socket.AF_INET6) as c:
            c.settimeout(10)
            c.connect((ip, s.port, 0, socket.if_nametoindex(iface)))
            c.shutdown(socket.SHUT_WR)
            reply, rport = b"", c.getsockname()[1]
            while True:
                data = c.recv(65536)
                if not data:
                    break
                reply += data
        s.wait_log(r"^tcpserver: end ")
        ports = {s.port: "LPORT", rport: "RPORT"}
        got[name] = ([v for v in mask_ports(reply.decode(), ports).splitlines()
                      if not v.startswith("_=")],
                     mask_log(mask_ports(s.log(), ports)).splitlines())
    assert got["ours"] == got["C"]
    assert f"TCP6INTERFACE={iface}" in got["ours"][0]


def test_remoteinfo_ipv6(spawn, tmp_path, both6):
    """-r on ::1: the ident question goes to [::1]:113; TCPREMOTEINFO and its twin."""
    import threading

    from tests.tcpserver.harness import machine_lock

    with machine_lock("identd"):
        d = socket.socket(socket.AF_INET6)
        d.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        d.bind(("::1", 113))
        d.listen(10)
        d.settimeout(0.05)
        stop = threading.Event()

        def serve() -> None:
            while not stop.is_set():
                try:
                    conn, _ = d.accept()
                except OSError:
                    continue
                with conn:
                    conn.settimeout(5)
                    q = b""
                    while not q.endswith(b"\n"):
                        got = conn.recv(256)
                        if not got:
                            break
                        q += got
                    conn.sendall(q.strip() + b" : USERID : UNIX : alice\r\n")

        t = threading.Thread(target=serve, daemon=True)
        t.start()
        try:
            env, log = compare(spawn, tmp_path, both6, ["-H", "-l", "lname"], "::1", "::1")
        finally:
            stop.set()
            t.join(5)
            d.close()
    assert "TCPREMOTEINFO=alice" in env and "TCP6REMOTEINFO=alice" in env


@pytest.mark.parametrize("args", [["-i", "::1", "127.0.0.1"], ["-6", "127.0.0.1"],
                                  ["-4", "-i", "::1", "::1"], ["-i", "::1", "::1"]])
def test_tcpclient_failures(both6, args):
    """Transcripts of failures: IPv6 local address to an IPv4 host, -6 to a
    closed IPv4 port, -4 with an IPv6 local address, a closed IPv6 port."""
    with socket.socket(socket.AF_INET6) as s4, socket.socket(socket.AF_INET) as s6:
        s4.bind(("::1", 0))
        port = s4.getsockname()[1]  # bound on ::1, not listening: refused
        try:
            s6.bind(("127.0.0.1", port))
        except OSError:
            pytest.skip("port taken on 127.0.0.1")
        got = {name: client_run(d, ["-v", "-RH", "-l", "ln", *args[:-1], args[-1], str(port),
                                    "true"], port)
               for name, d in both6}
    assert got["ours"] == got["C"]
    assert got["ours"][0] == 111
