"""rblsmtpd: the SMTP dialogue, the log line and the decisions, against Debian's.

With ``$RBLSMTPD`` set no DNS is needed, and ours and Debian's get the same
client input: their stdout, stderr (pid masked) and exit codes must be equal.
The DNS-driven decisions run ours against a fake DNS server on a random
loopback port (``DNSCACHEIP``/``DNSCACHEPORT``); a refusal's whole transcript
must equal Debian's under the ``$RBLSMTPD`` that says the same thing, and the
server's log shows which questions were asked.  (Debian's rblsmtpd only asks
port 53, so it cannot be pointed at the fake server without root.)
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers import OURS
from tests.tcpserver.fakedns import FakeDNS

IP = "1.2.3.4"
LONG = bytes(range(1, 256)) * 2  # 510 bytes, most of them not printable
ZONE = {
    "4.3.2.1.rbl.test": {"TXT": [[b"listed ", b"here"], [b"; see http://rbl.test/"]]},
    "4.3.2.1.other.test": {"TXT": [[b"other list"]]},
    "4.3.2.1.long.test": {"TXT": [[LONG[:255]], [LONG[255:]]]},
    "4.3.2.1.empty.test": {"TXT": [[b""]]},
    "4.3.2.1.aonly.test": {"A": ["127.0.0.2"]},
    "4.3.2.1.white.test": {"A": ["127.0.0.2"]},
    "4.3.2.1.txtonly.test": {"TXT": [[b"no A here"]]},
}
FAIL = {"4.3.2.1.fail.test"}
RBL_TEXT = b"listed here; see http://rbl.test/"

SESSION = (b"EHLO client.example\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\n"
           b"DATA\r\nRSET\r\nNOOP\r\nQUIT\r\n")


@dataclass
class Run:
    rc: int
    out: bytes
    err: bytes


def masked(err: bytes) -> bytes:
    return re.sub(rb" pid \d+: ", b" pid PID: ", err)


def env_with(**extra: str | bytes | None) -> dict:
    """A small fixed environment plus ``extra`` (None: leave the variable out)."""
    env = {b"PATH": os.environb.get(b"PATH", b"/usr/bin:/bin"), b"TCPREMOTEIP": IP.encode()}
    for k, v in extra.items():
        key = k.encode()
        if v is None:
            env.pop(key, None)
        else:
            env[key] = v if isinstance(v, bytes) else v.encode()
    return env


def run(prog: str, args: list[str], env: dict, input: bytes = SESSION) -> Run:
    p = subprocess.run([prog, *args], input=input, env=env, capture_output=True, timeout=60)
    return Run(p.returncode, p.stdout, masked(p.stderr))


def both(ref: Path, args: list[str], env: dict, input: bytes = SESSION) -> Run:
    mine = run(str(OURS / "rblsmtpd"), args, env, input)
    theirs = run(str(ref / "rblsmtpd"), args, env, input)
    assert mine == theirs
    return mine


@pytest.fixture(scope="module")
def dns_server():
    server = FakeDNS(ZONE, FAIL).start()
    yield server
    server.stop()


@pytest.fixture
def fakedns(dns_server):
    dns_server.questions.clear()
    return dns_server


# -- the dialogue, with $RBLSMTPD set ----------------------------------------

DIALOGUES = [
    ("go away", SESSION),
    ("-no mail from you", SESSION),
    ("-", SESSION),
    (LONG, SESSION),
    ("tab\there", b"helo\nehlo x\nmail\nrcpt\ndata\nquit\n"),
    ("case", b"HeLo x\r\nQuIt\r\n"),
    ("spaces", b"helo   x\r\n  helo\r\nquit   now\r\n"),
    ("empty lines", b"\r\n\n\r\r\nquit\r\n"),
    ("nul", b"quit\0x\r\nhelo\0\r\nquit\r\n"),
    ("crs", b"quit\r\r\nnoop\rx\r\nquit\r\n"),
    ("no quit", b"helo x\r\nrcpt to:<x>\r\n"),
    ("partial", b"helo x\r\nquit"),
    ("after quit", b"quit\r\nhelo x\r\nrcpt\r\n"),
    ("long line", b"rcpt " + b"x" * 100_000 + b"\r\nquit\r\n"),
    ("nothing", b""),
]


@pytest.mark.parametrize("text,input", DIALOGUES, ids=[str(i) for i in range(len(DIALOGUES))])
def test_dialogue_matches_debian(ref, text, input):
    r = both(ref, ["true"], env_with(RBLSMTPD=text), input)
    assert r.rc == 0
    assert r.out.startswith(b"220 rblsmtpd.local\r\n")
    assert r.err.startswith(b"rblsmtpd: 1.2.3.4 pid PID: ")


def test_dialogue_literally(ref):
    r = both(ref, ["true"], env_with(RBLSMTPD="go away"))
    assert r.out == (b"220 rblsmtpd.local\r\n250 rblsmtpd.local\r\n250 rblsmtpd.local\r\n"
                     b"451 go away\r\n451 go away\r\n250 rblsmtpd.local\r\n"
                     b"250 rblsmtpd.local\r\n221 rblsmtpd.local\r\n")
    assert r.err == b"rblsmtpd: 1.2.3.4 pid PID: 451 go away\n"
    r = both(ref, ["true"], env_with(RBLSMTPD="-bounce"), b"rcpt\r\n")
    assert r.out == b"220 rblsmtpd.local\r\n553 bounce\r\n"
    # at most 200 bytes of the reason, the unprintable ones as '?'
    r = both(ref, ["true"], env_with(RBLSMTPD=LONG), b"")
    assert r.err == b"rblsmtpd: 1.2.3.4 pid PID: 451 " + b"?" * 31 + LONG[31:126] + b"?" * 74 + b"\n"


@pytest.mark.parametrize("timeout", ["0", "0x", "x"])
def test_timeout_zero_refuses_at_once(ref, timeout):
    r = both(ref, ["-t", timeout, "true"], env_with(RBLSMTPD="-gone"), b"helo\r\n")
    assert r.out == b"553 gone\r\n"


def test_no_remote_ip(ref):
    r = both(ref, ["true"], env_with(RBLSMTPD="no", TCPREMOTEIP=None), b"")
    assert r.err == b"rblsmtpd:  pid PID: 451 no\n"


@pytest.mark.parametrize("side", ["ours", "theirs"])
def test_timeout_cuts_off_a_busy_client(ref, side):
    """-t is for the whole conversation, not for a quiet client."""
    prog = str((OURS if side == "ours" else ref) / "rblsmtpd")
    p = subprocess.Popen([prog, "-t", "2", "true"], env=env_with(RBLSMTPD="busy"),
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    start = time.monotonic()
    try:
        assert p.stdout.readline() == b"220 rblsmtpd.local\r\n"
        answers = 0
        while time.monotonic() - start < 15:
            try:
                p.stdin.write(b"noop\r\n")
                p.stdin.flush()
            except BrokenPipeError:
                break
            line = p.stdout.readline()
            if not line:
                break
            assert line == b"250 rblsmtpd.local\r\n"
            answers += 1
        assert p.wait(10) == 0
    finally:
        p.kill()
        p.wait()
        for f in (p.stdin, p.stdout):
            try:
                f.close()
            except BrokenPipeError:
                pass
    elapsed = time.monotonic() - start
    assert answers > 10
    assert 1.5 < elapsed < 10


@pytest.mark.parametrize("side", ["ours", "theirs"])
def test_timeout_quiet_client(ref, side):
    prog = str((OURS if side == "ours" else ref) / "rblsmtpd")
    start = time.monotonic()
    p = subprocess.Popen([prog, "-t1", "true"], env=env_with(RBLSMTPD="quiet"),
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        out = p.stdout.read()  # ends when rblsmtpd exits, stdin still open
        assert p.wait(10) == 0
    finally:
        p.kill()
        p.wait()
        p.stdin.close()
        p.stdout.close()
    assert out == b"220 rblsmtpd.local\r\n"
    assert 0.5 < time.monotonic() - start < 10


# -- usage, options, running the program --------------------------------------

@pytest.mark.parametrize("args", [
    [],
    ["-R", "true"],
    ["-t"],
    ["-b", "-x", "true"],
    ["-r"],
    ["-b", "-B", "-c", "-C", "-t", "5"],
    ["--", "no-such-program-here"],
    ["/nonexistent/smtpd"],
])
@pytest.mark.parametrize("rbl", [None, "", "refused"])
def test_usage_and_failures_match_debian(ref, args, rbl):
    r = both(ref, args, env_with(RBLSMTPD=rbl), b"")
    assert r.rc in (0, 100, 111)


def test_usage_literally(ref):
    r = both(ref, ["-R", "true"], env_with(RBLSMTPD=None))
    assert r.rc == 100
    assert r.err == (b"rblsmtpd: illegal option -- R\nrblsmtpd: usage: rblsmtpd [ -b ] [ -R ] "
                     b"[ -t timeout ] [ -r base ] [ -a base ] smtpd [ arg ... ]\n")
    r = both(ref, ["nope-not-here"], env_with(RBLSMTPD=""))
    assert (r.rc, r.err) == (111, b"rblsmtpd: fatal: unable to run nope-not-here: file does not exist\n")


@pytest.mark.parametrize("rbl", ["", None])
def test_pass_through_keeps_environment_and_io(ref, rbl):
    env = env_with(RBLSMTPD=rbl, FOO="bar", EMPTY="", LC_CTYPE=None, LANG=None, LC_ALL=None)
    r = both(ref, ["-t", "1", "env"], env, b"")
    assert sorted(r.out.splitlines()) == sorted(k + b"=" + v for k, v in env.items())
    r = both(ref, ["sh", "-c", 'echo "$0 $*"; cat; exit 9', "zero", "one"], env, b"stdin\n")
    assert (r.rc, r.out) == (9, b"zero one\nstdin\n")


def test_no_default_rbl(ref, fakedns):
    """Debian's rblsmtpd has no default RBL: without -r it asks nothing."""
    r = both(ref, ["echo", "ok"], env_with(RBLSMTPD=None, **fakedns.env()))
    assert r.out == b"ok\n"
    assert fakedns.questions == []


def test_preset_rblsmtpd_asks_nothing(ref, fakedns):
    r = run(str(OURS / "rblsmtpd"), ["-r", "rbl.test", "-a", "white.test", "true"],
            env_with(RBLSMTPD="preset", **fakedns.env()), b"")
    assert r.err == b"rblsmtpd: 1.2.3.4 pid PID: 451 preset\n"
    assert fakedns.questions == []


# -- decisions from the DNS ----------------------------------------------------

ASK_RBL = ("4.3.2.1.rbl.test.", "TXT")
DECISIONS = [
    # args, expected ($RBLSMTPD giving the same refusal, or None: run the program), questions
    (["-r", "rbl.test"], RBL_TEXT, [ASK_RBL]),
    (["-b", "-r", "rbl.test"], b"-" + RBL_TEXT, [ASK_RBL]),
    (["-r", "rbl.test", "-b"], RBL_TEXT, [ASK_RBL]),
    (["-b", "-B", "-r", "rbl.test"], RBL_TEXT, [ASK_RBL]),
    (["-r", "nx.test", "-r", "other.test", "-r", "rbl.test"], b"other list",
     [("4.3.2.1.nx.test.", "TXT"), ("4.3.2.1.other.test.", "TXT")]),
    (["-r", "long.test"], LONG, [("4.3.2.1.long.test.", "TXT")]),
    (["-r", "empty.test"], None, [("4.3.2.1.empty.test.", "TXT")]),
    (["-r", "aonly.test"], None, [("4.3.2.1.aonly.test.", "TXT")]),
    (["-a", "white.test", "-r", "rbl.test"], None, [("4.3.2.1.white.test.", "A")]),
    (["-r", "rbl.test", "-a", "white.test"], RBL_TEXT, [ASK_RBL]),
    (["-a", "nx.test", "-a", "txtonly.test", "-r", "rbl.test"], RBL_TEXT,
     [("4.3.2.1.nx.test.", "A"), ("4.3.2.1.txtonly.test.", "A"), ASK_RBL]),
    # a name of digits and dots is an address to djb's dns_ip4: no question
    (["-a", "127.0.0.2", "-r", "rbl.test"], None, []),
    # fail-open (the default): a failed RBL lookup is no listing...
    (["-r", "fail.test"], None, [("4.3.2.1.fail.test.", "TXT")]),
    (["-r", "fail.test", "-r", "rbl.test"], RBL_TEXT, [("4.3.2.1.fail.test.", "TXT"), ASK_RBL]),
    # ...but a later listing is 451 even with -b
    (["-b", "-r", "fail.test", "-r", "rbl.test"], RBL_TEXT,
     [("4.3.2.1.fail.test.", "TXT"), ASK_RBL]),
    # and a failed anti-RBL lookup is an anti-listing
    (["-a", "fail.test", "-r", "rbl.test"], None, [("4.3.2.1.fail.test.", "A")]),
    # fail-closed
    (["-c", "-r", "fail.test", "-r", "rbl.test"], b"temporary RBL lookup error",
     [("4.3.2.1.fail.test.", "TXT")]),
    (["-c", "-b", "-r", "fail.test"], b"temporary RBL lookup error",
     [("4.3.2.1.fail.test.", "TXT")]),
    (["-r", "fail.test", "-c"], None, [("4.3.2.1.fail.test.", "TXT")]),
    (["-c", "-a", "fail.test", "-b", "-r", "rbl.test"], RBL_TEXT,
     [("4.3.2.1.fail.test.", "A"), ASK_RBL]),
    (["-c", "-a", "fail.test", "-r", "nx.test"], None,
     [("4.3.2.1.fail.test.", "A"), ("4.3.2.1.nx.test.", "TXT")]),
    (["-c", "-C", "-r", "fail.test"], None, [("4.3.2.1.fail.test.", "TXT")]),
]


@pytest.mark.parametrize("args,expected,questions", DECISIONS,
                         ids=[" ".join(d[0]) for d in DECISIONS])
def test_dns_decisions(ref, fakedns, args, expected, questions):
    env = env_with(RBLSMTPD=None, **fakedns.env())
    mine = run(str(OURS / "rblsmtpd"), [*args, "echo", "passed"], env)
    assert fakedns.questions == questions
    if expected is None:
        assert mine == Run(0, b"passed\n", b"")
    else:
        theirs = run(str(ref / "rblsmtpd"), ["echo", "passed"], env_with(RBLSMTPD=expected))
        assert mine == theirs
        assert mine.out.startswith(b"220 ")


def test_dns_refusal_literally(fakedns):
    r = run(str(OURS / "rblsmtpd"), ["-r", "rbl.test", "true"],
            env_with(RBLSMTPD=None, **fakedns.env()), b"rcpt to:<x@y>\r\nquit\r\n")
    assert r.err == b"rblsmtpd: 1.2.3.4 pid PID: 451 " + RBL_TEXT + b"\n"
    assert r.out == (b"220 rblsmtpd.local\r\n451 " + RBL_TEXT + b"\r\n221 rblsmtpd.local\r\n")


def test_reversed_names(fakedns):
    env = env_with(RBLSMTPD=None, TCPREMOTEIP="10.20.30.40", **fakedns.env())
    run(str(OURS / "rblsmtpd"), ["-r", "rbl.test", "-a", "white.test", "true"], env)
    assert fakedns.questions == [("40.30.20.10.rbl.test.", "TXT"), ("40.30.20.10.white.test.", "A")]


def test_light_imports():
    """rblsmtpd runs per connection: no dnspython, typing or re until a lookup."""
    code = ("import sys, tcpserver.rblsmtpd; "
            "print(sorted(m for m in ('dns', 're', 'typing', 'argparse', 'subprocess') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
