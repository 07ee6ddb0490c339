"""tcpserver: ours against Debian's C tcpserver 0.88, with real processes on loopback.

Most scenarios run twice, once with each tcpserver, and compare what a client,
the program and the log see, pids and port numbers masked.  Where the C
original cannot be pointed at the test's fake services (its resolver asks port
53 only) the fake runs on port 53 under a lock; the rest asserts the manual's
behaviour.  The last part checks the preloaded path: a child running one of
our own programs without exec looks to the world as an exec'd one would.
"""
from __future__ import annotations

import os
import pwd
import re
import subprocess
import select
import shutil
import signal
import socket
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests.helpers import OURS, cmd, pid_alive, wait_for
from tests.tcpserver.fakedns import FakeDNS
from tests.tcpserver.harness import (Client, Server, base_env, dns53, identd, mask_log,
                                     mask_ports, no_identd, talk)

USAGE = ("tcpserver: usage: tcpserver [ -1UXpPhHrRoOdDqQv ] [ -c limit ] [ -x rules.cdb ] "
         "[ -B banner ] [ -g gid ] [ -u uid ] [ -b backlog ] [ -l localname ] "
         "[ -t timeout ] host port program\n")
NOBODY = pwd.getpwnam("nobody")
QUIET = ["-RHl0"]


@pytest.fixture
def both(ref):
    """(name, bin directory) of each implementation."""
    return [("ours", OURS), ("C", ref)]


def serve(spawn, tmp_path, bindir: Path, opts, program, name="server", env=None, **kw) -> Server:
    return Server(spawn, str(bindir / "tcpserver"), opts, program, tmp_path,
                  env=env or base_env(), name=f"{name}-{bindir.name}", **kw)


def stop(server: Server) -> int:
    server.p.send_signal(signal.SIGTERM)
    return server.p.wait(timeout=10)


def env_of(reply: bytes, ports: dict[int, str]) -> list[str]:
    """The ``env`` output a program sent back, ports masked, bash's ``_`` dropped."""
    text = mask_ports(reply.decode(), ports)
    return [line for line in text.splitlines() if not line.startswith("_=")]


def verbose(opts: list[str]) -> bool:
    """True if the options leave tcpserver at -v."""
    level = False
    for o in opts:
        if o.startswith("-") and not o.startswith(("-x", "-B", "-t", "-c", "-u", "-g", "-b", "-l")):
            for ch in o[1:]:
                level = True if ch == "v" else False if ch in "qQ" else level
    return level


def one_env(spawn, tmp_path, bindir, opts, env=None, program=("env",), data=b""):
    """Serve ``program`` once; return (env lines, log lines), ports and pids masked."""
    s = serve(spawn, tmp_path, bindir, opts, list(program), env=env)
    reply, port = talk(s.port, data)
    if verbose(opts):
        s.wait_log(r"^tcpserver: end ")
    stop(s)
    ports = {s.port: "LPORT", port: "RPORT"}
    return env_of(reply, ports), mask_log(mask_ports(s.log(), ports)).splitlines()


# -- the environment -----------------------------------------------------------

def test_environment_as_c(spawn, tmp_path, both):
    """-RHl0: the same variables in the same order, old TCP ones replaced or removed."""
    env = base_env(FOO="bar", TCPREMOTEHOST="stale", TCPREMOTEINFO="stale",
                   TCPLOCALHOST="old", LC_CTYPE="C.UTF-8", ZZZ="last")
    got = {name: one_env(spawn, tmp_path, d, ["-v", *QUIET], env) for name, d in both}
    assert got["ours"] == got["C"]
    lines = got["ours"][0]
    assert "TCPREMOTEHOST=stale" not in lines and "TCPREMOTEINFO=stale" not in lines
    tcp = sorted(line for line in lines if line.startswith(("TCP", "PROTO")))
    assert tcp == ["PROTO=TCP", "TCPLOCALHOST=0", "TCPLOCALIP=127.0.0.1", "TCPLOCALPORT=LPORT",
                   "TCPREMOTEIP=127.0.0.1", "TCPREMOTEPORT=RPORT"]
    assert "LC_CTYPE=C.UTF-8" in lines and "FOO=bar" in lines
    assert got["ours"][1] == [
        "tcpserver: status: 0/40", "tcpserver: status: 1/40",
        "tcpserver: pid PID from 127.0.0.1",
        "tcpserver: ok PID 0:127.0.0.1:LPORT :127.0.0.1::RPORT",
        "tcpserver: end PID status 0", "tcpserver: status: 0/40"]


PTR = "1.0.0.127.in-addr.arpa"


@pytest.mark.parametrize("case", ["names", "paranoid-ok", "paranoid-liar", "no-ptr"])
def test_names_from_dns(spawn, tmp_path, both, case):
    """-h (default) and -p: TCPLOCALHOST and TCPREMOTEHOST from PTR (and A) records."""
    records = {
        "names": {PTR: {"PTR": ["client.example."]}},
        "paranoid-ok": {PTR: {"PTR": ["client.example."]}, "client.example": {"A": ["127.0.0.1"]}},
        "paranoid-liar": {PTR: {"PTR": ["liar.example."]}, "liar.example": {"A": ["10.9.9.9"]}},
        "no-ptr": {},
    }[case]
    opts = ["-vR"] + (["-p"] if case.startswith("paranoid") else [])
    with dns53(records):
        got = {name: one_env(spawn, tmp_path, d, opts, base_env()) for name, d in both}
    assert got["ours"] == got["C"]
    env, log = got["ours"]
    host = {"names": "client.example", "paranoid-ok": "client.example",
            "paranoid-liar": None, "no-ptr": None}[case]
    local = None if case == "no-ptr" else ("liar.example" if case == "paranoid-liar"
                                           else "client.example")
    assert (f"TCPREMOTEHOST={host}" in env) if host else not any(
        v.startswith("TCPREMOTEHOST=") for v in env)
    assert (f"TCPLOCALHOST={local}" in env) if local else not any(
        v.startswith("TCPLOCALHOST=") for v in env)
    assert f"tcpserver: ok PID {local or ''}:127.0.0.1:LPORT {host or ''}:127.0.0.1::RPORT" in log


def test_dnscacheport(spawn, tmp_path):
    """Ours asks $DNSCACHEIP on $DNSCACHEPORT (for tests: the C one only knows port 53)."""
    dns = FakeDNS({PTR: {"PTR": ["here.example."]}}).start()
    try:
        env = base_env(**dns.env())
        lines, log = one_env(spawn, tmp_path, OURS, ["-vR"], env)
    finally:
        dns.stop()
    assert "TCPREMOTEHOST=here.example" in lines and "TCPLOCALHOST=here.example" in lines
    assert (PTR + ".", "PTR") in dns.questions


@pytest.mark.parametrize("reply", [b"{q} : USERID : UNIX : alice\r\n",
                                   b"{q} : USERID : UNIX :  bob smith:x \r\n",
                                   b"{q} : ERROR : NO-USER\r\n", b"garbage\r\n", None])
def test_remoteinfo(spawn, tmp_path, both, reply):
    """-r: TCPREMOTEINFO from a fake identd on port 113, as the C original reads it;
    an identd that never answers gives up after -t seconds."""
    got = {}
    with identd(reply) as d:
        for name, bindir in both:
            got[name] = one_env(spawn, tmp_path, bindir, ["-v", "-Hl0", "-t1"], base_env())
        assert len(d.questions) == 2
        assert re.fullmatch(rb"\d+ , \d+\r\n", d.questions[0])
    assert got["ours"] == got["C"]
    info = [v for v in got["ours"][0] if v.startswith("TCPREMOTEINFO")]
    expect = {b"{q} : USERID : UNIX : alice\r\n": ["TCPREMOTEINFO=alice"],
              b"{q} : USERID : UNIX :  bob smith:x \r\n": ["TCPREMOTEINFO=bobsmith:x"],
              b"{q} : ERROR : NO-USER\r\n": ["TCPREMOTEINFO="],
              b"garbage\r\n": ["TCPREMOTEINFO="], None: []}[reply]
    assert info == expect


def test_remoteinfo_refused(spawn, tmp_path, both):
    """-r with nothing on port 113: TCPREMOTEINFO is removed, the ok line's field empty."""
    with no_identd():
        got = {name: one_env(spawn, tmp_path, d, ["-v", "-Hl0"],
                             base_env(TCPREMOTEINFO="old")) for name, d in both}
    assert got["ours"] == got["C"]
    assert not any(v.startswith("TCPREMOTEINFO") for v in got["ours"][0])


# -- the log and the options that shape a connection ---------------------------------

def test_quiet_and_default_messages(spawn, tmp_path, both):
    """-Q (default) prints warnings only, -q nothing, -v everything: ours as C."""
    got = {}
    for name, d in both:
        for opt in ("-q", "-Q", "-v"):
            s = serve(spawn, tmp_path, d, [opt, *QUIET], ["/nonexistent/prog"], name=opt)
            reply, port = talk(s.port)
            assert reply == b""
            if opt == "-v":
                s.wait_log("^tcpserver: end ")
            else:
                wait_for(lambda: not s.children(), what="the child to end")
            stop(s)
            got[name, opt] = mask_log(mask_ports(s.log(), {s.port: "L", port: "R"}))
    for opt in ("-q", "-Q", "-v"):
        assert got["ours", opt] == got["C", opt], opt
    assert got["ours", "-q"] == ""
    drop = ("tcpserver: warning: dropping connection, unable to run /nonexistent/prog: "
            "file does not exist\n")
    assert got["ours", "-Q"] == drop
    assert drop in got["ours", "-v"] and "end PID status 28416" in got["ours", "-v"]


def test_banner(spawn, tmp_path, both):
    """-B: the banner goes out before the program says anything."""
    replies = {}
    for name, d in both:
        s = serve(spawn, tmp_path, d, [*QUIET, "-B", "220 hi there\r\n"], ["echo", "program"])
        replies[name] = talk(s.port)[0]
        stop(s)
    assert replies["ours"] == replies["C"] == b"220 hi there\r\nprogram\n"


@pytest.mark.parametrize("opts", [[], ["-D"], ["-d"], ["-D", "-d"], ["-o"], ["-O"]])
def test_socket_options(spawn, tmp_path, both, opts):
    """-D sets TCP_NODELAY on the connection the program gets; -d and -o/-O leave it off."""
    probe = [sys.executable, "-c",
             "import socket; s = socket.socket(fileno=0); "
             "print(s.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0, "
             "s.getsockopt(socket.SOL_SOCKET, socket.SO_TYPE)); s.detach()"]
    replies = {}
    for name, d in both:
        s = serve(spawn, tmp_path, d, [*QUIET, *opts], probe)
        replies[name] = talk(s.port)[0]
        stop(s)
    assert replies["ours"] == replies["C"]
    assert replies["ours"].split()[0] == (b"True" if opts[-1:] == ["-D"] else b"False")


@pytest.mark.parametrize("path", ["spawned", "forked"])
def test_program_signals(spawn, tmp_path, both, path):
    """The program starts with the signal state an exec from C's child gives:
    nothing blocked, nothing caught, nothing ignored that was not (glibc's
    posix_spawn would leave signals 32 and 33 ignored).  A long banner makes
    ours fork a child instead of starting the program itself."""
    banner = ["-B", "b" * 3000] if path == "forked" else []
    replies = {}
    for name, d in both:
        s = serve(spawn, tmp_path, d, [*QUIET, *banner],
                  ["grep", "-E", "^Sig(Ign|Blk|Cgt)", "/proc/self/status"])
        replies[name] = talk(s.port)[0]
        stop(s)
    assert replies["ours"] == replies["C"]
    # what a plain exec from here ignores (our caller may ignore some: CI's does)
    plain = subprocess.run(["grep", "-E", "^SigIgn", "/proc/self/status"],
                           capture_output=True).stdout
    assert plain in replies["ours"]


def test_connect_and_close_at_once(spawn, tmp_path, both):
    """A client that goes away before the program runs leaves the server serving."""
    for name, d in both:
        s = serve(spawn, tmp_path, d, ["-v", *QUIET], ["sh", "-c", "sleep 0.2; echo late"])
        for _ in range(5):
            c = socket.create_connection(("127.0.0.1", s.port), timeout=5)
            c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\1\0\0\0\0\0\0\0")
            c.close()  # a reset, at once
        s.wait_log("^tcpserver: end ", count=5)
        assert talk(s.port)[0] == b"late\n", name
        s.wait_log("^tcpserver: end ", count=6)
        wait_for(lambda: s.lines()[-1] == "tcpserver: status: 0/40", what="status 0")
        assert s.p.poll() is None
        stop(s)


def test_limit_backlog_and_status(spawn, tmp_path, both):
    """-c 10: ten programs run, the eleventh connection waits in the backlog (no
    child, no log line) until one ends; the status lines count the children."""
    logs = {}
    for name, d in both:
        s = serve(spawn, tmp_path, d, ["-v", *QUIET, "-c", "10"], ["cat"])
        clients = []
        for i in range(10):
            c = Client(s.port)
            clients.append(c)
            s.wait_log("^tcpserver: ok ", count=i + 1)
        assert len(s.children()) == 10
        eleventh = Client(s.port)  # the kernel completes it; tcpserver does not accept it
        eleventh.send(b"waiting\n")
        assert eleventh.quiet(0.5)
        assert len(s.lines()) == 1 + 10 * 3 and len(s.children()) == 10
        clients[0].send(b"first\n")
        clients[0].shut()
        assert clients[0].read_all() == b"first\n"
        s.wait_log("^tcpserver: ok ", count=11)
        eleventh.shut()
        assert eleventh.read_all() == b"waiting\n"
        s.wait_log("^tcpserver: end ", count=2)
        for c in clients[1:]:
            c.shut()
            c.read_all()
        s.wait_log("^tcpserver: end ", count=11)
        wait_for(lambda: s.lines()[-1] == "tcpserver: status: 0/10", what="status 0")
        stop(s)
        parent = [line for line in s.lines() if line.startswith(("tcpserver: status", "tcpserver: end"))]
        logs[name] = [re.sub(r"end \d+", "end PID", line) for line in parent]
        for c in clients + [eleventh]:
            c.close()
    assert logs["ours"] == logs["C"]
    assert logs["ours"][:12] == [f"tcpserver: status: {n}/10" for n in range(11)] + [
        "tcpserver: end PID status 0"]
    assert logs["ours"][12:14] == ["tcpserver: status: 9/10", "tcpserver: status: 10/10"]


def test_backlog(spawn, tmp_path, both):
    """-b: with the one child busy, the kernel completes -b + 1 more handshakes."""
    completed = {}
    for name, d in both:
        s = serve(spawn, tmp_path, d, [*QUIET, "-c1", "-b2"], ["cat"])
        busy = Client(s.port)
        wait_for(lambda: s.children(), what="the busy child")
        socks = []
        for _ in range(6):
            c = socket.socket()
            c.setblocking(False)
            c.connect_ex(("127.0.0.1", s.port))
            socks.append(c)
        time.sleep(0.5)
        completed[name] = sum(1 for c in socks if c.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0
                              and _connected(c))
        for c in socks:
            c.close()
        busy.close()
        stop(s)
    assert completed["ours"] == completed["C"] == 3


def _connected(s: socket.socket) -> bool:
    try:
        s.getpeername()
        return True
    except OSError:
        return False


def test_flood_beyond_limit(spawn, tmp_path, both):
    """300 connections, 30 at a time, against -c 5: every one is served, none lost."""
    import concurrent.futures

    for name, d in both:
        s = serve(spawn, tmp_path, d, ["-v", *QUIET, "-c5", "-b100"], ["echo", "hi"])
        with concurrent.futures.ThreadPoolExecutor(30) as pool:
            replies = list(pool.map(lambda _: talk(s.port, timeout=30)[0], range(300)))
        assert replies == [b"hi\n"] * 300, name
        s.wait_log("^tcpserver: end ", count=300, timeout=30)
        s.wait_log("^tcpserver: status: 0/5$")
        counts = [int(m.group(1)) for m in re.finditer(r"status: (\d+)/5", s.log())]
        assert max(counts) == 5 and min(counts) == 0
        assert s.p.poll() is None
        stop(s)


def test_sigterm(spawn, tmp_path, both):
    """SIGTERM: the server exits 0 at once; a running child goes on to the end."""
    for name, d in both:
        s = serve(spawn, tmp_path, d, [*QUIET], ["cat"])
        with Client(s.port) as c:
            child = wait_for(lambda: s.children(), what="the child")[0]
            assert stop(s) == 0, name
            assert pid_alive(child)
            c.send(b"still here\n")
            c.shut()
            assert c.read_all() == b"still here\n"
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", s.port), timeout=5).close()


def test_uid_gid(spawn, tmp_path, both):
    """-u and -g as root: the program runs as them, with the one supplementary group."""
    replies = {}
    for name, d in both:
        s = serve(spawn, tmp_path, d, [*QUIET, "-u", str(NOBODY.pw_uid), "-g",
                                       str(NOBODY.pw_gid)], ["id"])
        replies[name] = talk(s.port)[0]
        status = Path(f"/proc/{s.p.pid}/status").read_text()
        assert re.search(rf"^Uid:\s+{NOBODY.pw_uid}\s", status, re.M), name
        stop(s)
    assert replies["ours"] == replies["C"]
    assert replies["ours"].startswith(b"uid=%d" % NOBODY.pw_uid)


def test_envuidgid_U(spawn, tmp_path, both):
    """-U takes $UID and $GID."""
    replies = {}
    for name, d in both:
        env = base_env(UID=str(NOBODY.pw_uid), GID=str(NOBODY.pw_gid))
        s = serve(spawn, tmp_path, d, [*QUIET, "-U"], ["id", "-u"], env=env)
        replies[name] = talk(s.port)[0]
        stop(s)
    assert replies["ours"] == replies["C"] == b"%d\n" % NOBODY.pw_uid


# -- rules ---------------------------------------------------------------------------

def tcprules(ref: Path, cdb: Path, text: str) -> None:
    """Debian's tcprules makes ``cdb`` from ``text``."""
    r = cmd([str(ref / "tcprules"), str(cdb), str(cdb) + ".tmp"], input=text.encode())
    assert r.rc == 0, r


RULES = {
    "allow": '127.0.0.1:allow,RELAYCLIENT="",GREETING="hello there"\n:deny\n',
    "deny": "127.0.0.:deny\n:allow\n",
    "prefix": '127.:allow,WHO="one two",TCPREMOTEHOST="ruled"\n',
    "nomatch": "10.:deny\n",
    "default-deny": "10.:allow\n:deny\n",
}


@pytest.mark.parametrize("case", sorted(RULES))
def test_rules_same_cdb(spawn, tmp_path, both, ref, case):
    """-x: ours and C reading the same cdb made by Debian's tcprules agree."""
    cdb = tmp_path / "rules.cdb"
    tcprules(ref, cdb, RULES[case])
    got = {name: one_env(spawn, tmp_path, d, ["-v", *QUIET, "-x", str(cdb)]) for name, d in both}
    assert got["ours"] == got["C"]
    env, log = got["ours"]
    if "deny" in case:
        assert env == []
        assert "tcpserver: deny PID 0:127.0.0.1:LPORT :127.0.0.1::RPORT" in log
        assert "tcpserver: end PID status 25600" in log
    else:
        assert "tcpserver: ok PID 0:127.0.0.1:LPORT :127.0.0.1::RPORT" in log
    if case == "allow":
        assert env[-2:] == ["RELAYCLIENT=", "GREETING=hello there"]
    if case == "prefix":
        assert "TCPREMOTEHOST=ruled" in env and "WHO=one two" in env


@pytest.mark.parametrize("case", ["missing", "missing-X", "empty", "garbage", "truncated",
                                  "directory", "unreadable"])
def test_rules_unusable(spawn, tmp_path, both, ref, case):
    """A cdb that is missing (dropped, unless -X), empty, corrupt or cut short."""
    cdb = tmp_path / "rules.cdb"
    if case == "empty":
        cdb.write_bytes(b"")
    elif case == "garbage":
        cdb.write_bytes(b"garbage")
    elif case == "truncated":
        tcprules(ref, cdb, RULES["allow"])
        cdb.write_bytes(cdb.read_bytes()[:2060])
    elif case == "directory":
        cdb.mkdir()
    elif case == "unreadable":
        tcprules(ref, cdb, RULES["allow"])
        cdb.chmod(0)
    opts = ["-v", *QUIET, "-x", str(cdb)] + (["-X"] if case == "missing-X" else [])
    uid = ["-u", str(NOBODY.pw_uid)] if case == "unreadable" else []
    got = {}
    for name, d in both:
        if case == "directory" and name == "C":
            continue  # Debian's tcpserver crashes (SIGSEGV) on a directory
        got[name] = one_env(spawn, tmp_path, d, opts + uid, program=("echo", "ran"))
    env, log = got["ours"]
    if case != "directory":
        assert got["ours"] == got["C"]
    reason = {"missing": "file does not exist", "empty": "invalid argument",
              "garbage": "protocol error", "truncated": "protocol error",
              "directory": "is a directory", "unreadable": "access denied"}.get(case)
    if reason is None:
        assert env == ["ran"]
    else:
        assert env == []
        assert (f"tcpserver: warning: dropping connection, unable to read {cdb}: {reason}"
                in log)
        assert "tcpserver: end PID status 28416" in log


def test_rules_on_names_and_info(spawn, tmp_path, both, ref):
    """Rules keyed on ``info@ip``, ``=host`` and host suffixes, with -h, -p and -r:
    ours and C pick the same rule from the same cdb."""
    cdb = tmp_path / "rules.cdb"
    tcprules(ref, cdb, 'alice@127.0.0.1:allow,WHO="alice@ip"\n'
                       '=client.example:allow,WHO="host"\n'
                       '=.example:allow,WHO="suffix"\n:deny\n')
    got = {}
    for reply, ptr in ((b"{q} : USERID : UNIX : alice\r\n", "client.example."),
                       (b"{q} : USERID : UNIX : bob\r\n", "client.example."),
                       (b"{q} : USERID : UNIX : bob\r\n", "other.example."),
                       (b"{q} : USERID : UNIX : bob\r\n", "other.test.")):
        records = {PTR: {"PTR": [ptr]}, ptr.rstrip("."): {"A": ["127.0.0.1"]}}
        with dns53(records), identd(reply):
            for name, d in both:
                got[name, reply, ptr] = one_env(spawn, tmp_path, d, ["-vp", "-x", str(cdb)],
                                                program=("sh", "-c", "echo $WHO"))
    for key in [k for k in got if k[0] == "ours"]:
        assert got[key] == got[("C",) + key[1:]], key
    assert [got["ours", r, p][0] for _, r, p in [k for k in got if k[0] == "ours"]] == [
        ["alice@ip"], ["host"], ["suffix"], []]


def test_banner_then_deny_and_long_banner(spawn, tmp_path, both, ref):
    """A denied client still gets the banner first; a long banner (more than the
    parent writes itself) comes whole."""
    cdb = tmp_path / "rules.cdb"
    tcprules(ref, cdb, ":deny\n")
    long = "x" * 5000 + "\r\n"
    replies = {}
    for name, d in both:
        s = serve(spawn, tmp_path, d, [*QUIET, "-B", "hi\r\n", "-x", str(cdb)], ["echo", "no"])
        replies[name, "deny"] = talk(s.port)[0]
        stop(s)
        s = serve(spawn, tmp_path, d, [*QUIET, "-B", long], ["echo", "yes"])
        replies[name, "long"] = talk(s.port)[0]
        stop(s)
    assert replies["ours", "deny"] == replies["C", "deny"] == b"hi\r\n"
    assert replies["ours", "long"] == replies["C", "long"] == long.encode() + b"yes\n"


def test_port_line_then_standard_output_closed(spawn, tmp_path, both):
    """-1 prints the port, then standard output is let go: its reader sees the end."""
    for name, d in both:
        s = serve(spawn, tmp_path, d, QUIET, ["true"])
        assert select.select([s.p.stdout], [], [], 5)[0], name
        assert os.read(s.p.stdout.fileno(), 100) == b"", name  # the end, at once
        stop(s)


def test_new_rules_at_once(spawn, tmp_path, ref, both):
    """A new cdb from tcprules applies to the next connection, with no restart."""
    cdb = tmp_path / "rules.cdb"
    for name, d in both:
        tcprules(ref, cdb, ':allow,V="1"\n')
        s = serve(spawn, tmp_path, d, [*QUIET, "-x", str(cdb)], ["sh", "-c", "echo $V"])
        assert talk(s.port)[0] == b"1\n"
        tcprules(ref, cdb, ':allow,V="2"\n')
        assert talk(s.port)[0] == b"2\n"
        tcprules(ref, cdb, ":deny\n")
        assert talk(s.port)[0] == b""
        cdb.unlink()
        assert talk(s.port)[0] == b""
        stop(s)


# -- golden transcripts of failures ------------------------------------------------

GOLDEN = [
    [],
    ["-Z", "127.0.0.1", "0", "true"],
    ["-c"],
    ["-q", "-Z"],
    ["127.0.0.1"],
    ["127.0.0.1", "0"],
    ["-q", "127.0.0.1"],
    ["-q", "127.0.0.1", "0"],
    ["127.0.0.1", "nosuchservice", "true"],
    ["127.0.0.1", "nosuchservice"],
    ["127.0.0.1", "22x", "true"],
    ["-x", "127.0.0.1", "0", "true"],
    ["-v", "127.0.0.1", "no/such", "true"],
    ["-q", "127.0.0.1", "nosuchservice", "true"],
    ["192.0.2.1", "0", "true"],
    ["-u", "1", "1.2.3", "0", "true"],
]


@pytest.mark.parametrize("args", GOLDEN, ids=lambda a: " ".join(a) or "none")
def test_golden_failures(ref, args):
    """Usage errors and start-up failures: same exit code, stdout and stderr."""
    r = {name: cmd([str(d / "tcpserver"), *args], env=base_env(), timeout=20)
         for name, d in (("ours", OURS), ("C", ref))}
    assert r["ours"] == r["C"]
    assert r["ours"].rc in (100, 111)


def test_bind_failure(ref, tmp_path):
    """A port in use: ``unable to bind: address already used`` (exit 111), ours as C."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = str(taken.getsockname()[1])
        for opts in ([], ["-q"], ["-v"]):
            r = {name: cmd([str(d / "tcpserver"), *opts, "127.0.0.1", port, "true"],
                           env=base_env()) for name, d in (("ours", OURS), ("C", ref))}
            assert r["ours"] == r["C"]
            assert r["ours"].rc == 111
            assert r["ours"].err == ("" if opts == ["-q"] else
                                     "tcpserver: fatal: unable to bind: address already used\n")


def test_port_zero_from_empty_and_wrapping(spawn, tmp_path, both):
    """An empty port is 0 (a free port); numbers wrap at 65536 as uint16."""
    for name, d in both:
        for port in ("", "65536", "131072"):
            s = serve(spawn, tmp_path, d, QUIET, ["echo", "x"], port=port)
            assert s.port > 0 and talk(s.port)[0] == b"x\n"
            stop(s)


# -- the preloaded path: our own programs run in the forked child ---------------------

def proc_view(pid: int) -> dict:
    """What /proc shows of a process: exe, comm, cmdline words, descriptors, ids."""
    fds = {}
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            fds[int(fd)] = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            pass
    proc = Path(f"/proc/{pid}")
    status = dict(line.split(":", 1) for line in (proc / "status").read_text().splitlines())
    return {
        "exe": os.readlink(proc / "exe"),
        "comm": (proc / "comm").read_text().strip(),
        "cmdline": (proc / "cmdline").read_bytes().replace(b"\0", b" ").split(),
        "fds": fds,
        "ids": [status[k].split() for k in ("Uid", "Gid", "Groups")],
        "sigign": int(status["SigIgn"], 16), "sigblk": int(status["SigBlk"], 16),
        "sigcgt": int(status["SigCgt"], 16),
    }


def test_preloaded_child_is_not_execd(spawn, tmp_path, ref):
    """Our tai64n is called in the child: the interpreter is not started again, yet
    the process shows tai64n's argv and name, only descriptors 0, 1 and 2 (0 and 1
    the connection), the ids of -u/-g, and the signal state of an exec'd program."""
    views = {}
    for name, d in (("ours", OURS), ("C", ref)):
        env = base_env(d)
        s = serve(spawn, tmp_path, d, ["-v", *QUIET, "-u", str(NOBODY.pw_uid),
                                       "-g", str(NOBODY.pw_gid)], ["tai64n", "an", "arg"], env=env)
        with Client(s.port) as c:
            c.send(b"hello\n")
            line = c.read_some(32)
            assert re.fullmatch(rb"@[0-9a-f]{24} hello\n", line), line
            pid = int(s.wait_log(r"^tcpserver: ok ")[0].split()[2])
            assert s.children() == [pid]
            views[name] = proc_view(pid)
            c.shut()
            assert c.read_all() == b""
        s.wait_log("^tcpserver: end ")
        assert f"tcpserver: end {pid} status 0" in s.lines()
        stop(s)
    ours, c = views["ours"], views["C"]
    assert os.path.realpath(ours["exe"]) == os.path.realpath(sys.executable)
    assert ours["comm"] == c["comm"] == "tai64n"
    assert ours["cmdline"] == [b"tai64n", b"an", b"arg"]
    assert sorted(ours["fds"]) == sorted(c["fds"]) == [0, 1, 2]
    assert ours["fds"][0] == ours["fds"][1] and ours["fds"][0].startswith("socket:")
    assert ours["ids"] == c["ids"] == [[str(NOBODY.pw_uid)] * 4, [str(NOBODY.pw_gid)] * 4,
                                       [str(NOBODY.pw_gid)]]
    assert ours["sigblk"] == c["sigblk"] == 0
    assert ours["sigign"] == c["sigign"] and ours["sigcgt"] == c["sigcgt"] == 0


def test_preloaded_environment(spawn, tmp_path, ref):
    """Our pgrphack, preloaded, hands env the environment exec would have: the same
    as Debian's tcpserver running Debian's pgrphack, in the same order."""
    cdb = tmp_path / "rules.cdb"
    tcprules(ref, cdb, '127.0.0.1:allow,FROMRULE="yes",TCPREMOTEHOST="r",FOO=""\n')
    env = {}
    for name, d in (("ours", OURS), ("C", ref)):
        e = base_env(d, FOO="bar", TCPREMOTEINFO="stale", LC_CTYPE="C.UTF-8")
        env[name] = one_env(spawn, tmp_path, d, ["-v", *QUIET, "-x", str(cdb)], e,
                            program=("pgrphack", "env"))
    assert env["ours"][0] == [line.replace(str(ref), str(OURS)) for line in env["C"][0]]
    assert "FROMRULE=yes" in env["ours"][0] and "LC_CTYPE=C.UTF-8" in env["ours"][0]
    assert env["ours"][1] == env["C"][1]


@pytest.mark.parametrize("prog", ["svstat", "delcr"])
def test_preloaded_programs_answer_as_c(spawn, tmp_path, ref, prog):
    """svstat and delcr answer over the connection as the C ones do."""
    args, data = {"svstat": (["svstat", "/nonexistent", str(tmp_path)], b""),
                  "delcr": (["delcr"], b"a\r\nb\r\r\nc\r")}[prog]
    replies = {}
    for name, d in (("ours", OURS), ("C", ref)):
        s = serve(spawn, tmp_path, d, ["-v", *QUIET], args, env=base_env(d))
        replies[name] = talk(s.port, data)[0]
        s.wait_log("^tcpserver: end ")
        replies[name, "end"] = [line for line in s.lines() if " end " in line][0].split()[-1]
        stop(s)
    assert replies["ours"] == replies["C"]
    assert replies["ours", "end"] == replies["C", "end"]


def test_preloaded_with_lookups_as_nobody(spawn, tmp_path, ref, request):
    """-u nobody with names, identd and rules: nothing is imported after root is given
    up (nobody cannot read the interpreter's library here), and the child still
    runs our program."""
    public = Path(tempfile.mkdtemp(prefix="pyqmail-tcpserver-"))  # nobody can read it
    request.addfinalizer(lambda: shutil.rmtree(public, ignore_errors=True))
    public.chmod(0o755)
    cdb = public / "rules.cdb"
    tcprules(ref, cdb, 'alice@127.0.0.1:allow,WHO="alice"\n')
    cdb.chmod(0o644)
    with dns53({PTR: {"PTR": ["client.example."]}, "client.example": {"A": ["127.0.0.1"]}}), \
            identd():
        s = serve(spawn, tmp_path, OURS, ["-vp", "-x", str(cdb), "-u", str(NOBODY.pw_uid),
                                          "-g", str(NOBODY.pw_gid)],
                  ["pgrphack", "sh", "-c", "echo $WHO $TCPREMOTEHOST $TCPREMOTEINFO"],
                  env=base_env(OURS))
        assert talk(s.port)[0] == b"alice client.example alice\n", s.log()
        stop(s)


def test_preloaded_program_missing_later(spawn, tmp_path):
    """A program that is not ours (or is gone) is exec'd per connection as before."""
    prog = tmp_path / "prog"
    prog.write_text("#!/bin/sh\necho one\n")
    prog.chmod(0o755)
    s = serve(spawn, tmp_path, OURS, QUIET, [str(prog)])
    assert talk(s.port)[0] == b"one\n"
    prog.unlink()
    assert talk(s.port)[0] == b""
    wait_for(lambda: "unable to run" in s.log(), what="the warning")
    assert s.log() == (f"tcpserver: warning: dropping connection, unable to run {prog}: "
                       "file does not exist\n")
    stop(s)
