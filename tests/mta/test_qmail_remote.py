"""qmail-remote against a scripted SMTP server and a fake DNS server on loopback.

Most tests route the host through control/smtproutes to the server's port;
the tests of MX order, A fallback, literal addresses and the refusal to send
to ourselves need port 25 and so run as root (as CI does).  Each server takes
a random 127.x.y.z address so that runs in parallel do not meet.  The
reports are compared byte for byte with qmail-remote.c's texts.
"""
from __future__ import annotations

import os
import random
import socket
import struct
import subprocess
import time
from pathlib import Path

import pytest

from mta import qmail_remote as qr
from pyqmail import mxip, quote
from tests.helpers import ours
from tests.mta.smtpsink import CLOSE, HANG, Sink
from tests.tcpserver.fakedns import FakeDNS

MSG = b"Subject: test\n\nhello\n"
OK_TEXT = b"Remote host said: 250 ok 1234567890 qp 4242\n"


def loopback() -> str:
    return f"127.{random.randint(100, 254)}.{random.randint(0, 255)}.{random.randint(2, 254)}"


def sink_on(port: int = 0, **script) -> Sink:
    for _ in range(20):
        try:
            return Sink(loopback(), port, **script)
        except OSError:
            continue
    raise RuntimeError("no free loopback address")


@pytest.fixture
def home(tmp_path):
    (tmp_path / "control").mkdir()
    (tmp_path / "queue" / "lock").mkdir(parents=True)
    (tmp_path / "control" / "me").write_text("me.test\n")
    (tmp_path / "queue" / "lock" / "tcpto").write_bytes(bytes(1024))
    return tmp_path


@pytest.fixture
def sinks():
    made: list[Sink] = []

    def make(port: int = 0, **script) -> Sink:
        s = sink_on(port, **script)
        made.append(s)
        return s

    yield make
    for s in made:
        s.close()


@pytest.fixture
def dns():
    servers: list[FakeDNS] = []

    def make(records=None, servfail=None) -> FakeDNS:
        d = FakeDNS(records, servfail).start()
        servers.append(d)
        return d

    yield make
    for d in servers:
        d.stop()


def route(home: Path, *lines: str) -> None:
    (home / "control" / "smtproutes").write_text("".join(line + "\n" for line in lines))


def remote(home: Path, *args: str | bytes, msg: bytes = MSG, dns: FakeDNS | None = None,
           timeout: float = 30) -> list[bytes]:
    """Run qmail-remote; its reports without their NULs (the last is what
    follows the final NUL, always empty)."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "QMAILHOME": str(home),
           # a DNS server that is not there unless the test gives one
           "DNSCACHEIP": "127.0.0.1", "DNSCACHEPORT": "9"}
    if dns is not None:
        env.update(dns.env())
    p = subprocess.run([ours("qmail-remote"), *args], input=msg, env=env, capture_output=True,
                       timeout=timeout)
    assert p.returncode == 0
    assert p.stderr == b""
    reports = p.stdout.split(b"\0")
    assert reports[-1] == b""
    return reports[:-1]


def routed(home: Path, sink: Sink, domain: str = "dest.test") -> None:
    route(home, f"{domain}:[{sink.ip}]:{sink.port}")


def tcpto_table(home: Path) -> bytes:
    return (home / "queue" / "lock" / "tcpto").read_bytes()


def tcpto_record(ip: str, count: int, when: int) -> bytes:
    return socket.inet_aton(ip) + bytes([count, 0, 0, 0]) + struct.pack("<I", when) + bytes(4)


# -- usage and controls

def test_usage(home):
    assert remote(home, "dest.test", "a@b") == [b"DI (qmail-remote) was invoked improperly. (#5.3.5)\n"]


def test_controls_missing(home):
    (home / "control" / "me").unlink()
    assert remote(home, "dest.test", "a@b", "c@dest.test") == [
        b"ZUnable to read control files. (#4.3.0)\n"]


def test_no_home(tmp_path):
    assert remote(tmp_path / "nothere", "dest.test", "a@b", "c@dest.test") == [
        b"ZUnable to switch to home directory. (#4.3.0)\n"]


# -- the dialogue

def test_success_dialogue_and_bytes(home, sinks):
    s = sinks()
    routed(home, s)
    (home / "control" / "helohost").write_text("helo.test\n")
    msg = b".starts with a dot\nSubject: x\n\n.dot\n..two\nbare\r\n.\nend\n"
    assert remote(home, "dest.test", "from@src.test", "to@dest.test", msg=msg) == [
        b"r", b"K" + s.ip.encode() + b" accepted message.\n" + OK_TEXT]
    sess = s.sessions[0]
    assert sess.done.wait(5)
    assert sess.commands == [b"HELO helo.test\r\n", b"MAIL FROM:<from@src.test>\r\n",
                             b"RCPT TO:<to@dest.test>\r\n", b"DATA\r\n", b"QUIT\r\n"]
    assert sess.data == (b"..starts with a dot\r\nSubject: x\r\n\r\n..dot\r\n...two\r\n"
                         b"bare\r\r\n..\r\nend\r\n.\r\n")


def test_big_message_dot_at_block_boundary(home, sinks):
    s = sinks()
    routed(home, s)
    first = b"x" * (qr.BLOCK - 1) + b"\n"
    msg = first + b".next block\n" + b"y" * 100000 + b"\n"
    assert remote(home, "dest.test", "", "to@dest.test", msg=msg)[-1].startswith(b"K")
    s.sessions[0].done.wait(5)
    assert s.sessions[0].data == first[:-1] + b"\r\n..next block\r\n" + b"y" * 100000 + b"\r\n.\r\n"
    assert s.sessions[0].commands[:2] == [b"HELO me.test\r\n", b"MAIL FROM:<>\r\n"]


def test_empty_message(home, sinks):
    s = sinks()
    routed(home, s)
    assert remote(home, "dest.test", "a@b", "to@dest.test", msg=b"")[-1].startswith(b"K")
    s.sessions[0].done.wait(5)
    assert s.sessions[0].data == b".\r\n"


def test_quoting_of_local_parts(home, sinks):
    s = sinks()
    routed(home, s)
    remote(home, "dest.test", 'we ird"@src.test', "a.b@dest.test", "a..b@dest.test", ".x@dest.test")
    s.sessions[0].done.wait(5)
    assert s.sessions[0].commands[1:5] == [
        b'MAIL FROM:<"we ird\\""@src.test>\r\n', b"RCPT TO:<a.b@dest.test>\r\n",
        b'RCPT TO:<"a..b"@dest.test>\r\n', b'RCPT TO:<".x"@dest.test>\r\n']


def test_mixed_recipients(home, sinks):
    def rcpt(addr: bytes) -> bytes:
        if addr.startswith(b"<bad"):
            return b"550 no such user\r\n"
        if addr.startswith(b"<later"):
            return b"451-try\r\n451 later\r\n"
        return b"250 ok\r\n"

    s = sinks(rcpt=rcpt)
    routed(home, s)
    ip = s.ip.encode()
    assert remote(home, "dest.test", "a@b", "good@dest.test", "bad@dest.test", "later@dest.test",
                  "good2@dest.test") == [
        b"r",
        b"h" + ip + b" does not like recipient.\nRemote host said: 550 no such user\n",
        b"s" + ip + b" does not like recipient.\nRemote host said: 451-try\n451 later\n",
        b"r",
        b"K" + ip + b" accepted message.\n" + OK_TEXT]


def test_all_recipients_refused(home, sinks):
    s = sinks(rcpt=b"550 no\r\n")
    routed(home, s)
    ip = s.ip.encode()
    assert remote(home, "dest.test", "a@b", "x@dest.test", "y@dest.test") == [
        b"h" + ip + b" does not like recipient.\nRemote host said: 550 no\n",
        b"h" + ip + b" does not like recipient.\nRemote host said: 550 no\n",
        b"DGiving up on " + ip + b".\n"]
    s.sessions[0].done.wait(5)
    assert s.sessions[0].commands[-1] == b"QUIT\r\n"
    assert b"DATA\r\n" not in s.sessions[0].commands


@pytest.mark.parametrize("stage,reply,report", [
    ("greeting", b"554 go away\r\n", b"ZConnected to IP but greeting failed.\nRemote host said: 554 go away\n"),
    ("greeting", b"hello there\r\n", b"ZConnected to IP but greeting failed.\nRemote host said: hello there\n"),
    ("helo", b"501 bad\r\n", b"ZConnected to IP but my name was rejected.\nRemote host said: 501 bad\n"),
    ("mail", b"553 sender\r\n", b"DConnected to IP but sender was rejected.\nRemote host said: 553 sender\n"),
    ("mail", b"451 later\r\n", b"ZConnected to IP but sender was rejected.\nRemote host said: 451 later\n"),
    ("mail", b"what?\r\n", b"DConnected to IP but sender was rejected.\nRemote host said: what?\n"),
    ("data", b"554 no data\r\n", b"DIP failed on DATA command.\nRemote host said: 554 no data\n"),
    ("data", b"451 not now\r\n", b"ZIP failed on DATA command.\nRemote host said: 451 not now\n"),
    ("end", b"554 spam\r\n", b"DIP failed after I sent the message.\nRemote host said: 554 spam\n"),
    ("end", b"452-full\r\n452 disk\r\n",
     b"ZIP failed after I sent the message.\nRemote host said: 452-full\n452 disk\n"),
    ("greeting", b"220-one\r\n220-two\r\n220 three\x00\r\n", b"K"),
])
def test_replies_at_each_stage(home, sinks, stage, reply, report):
    s = sinks(**{stage: reply})
    routed(home, s)
    got = remote(home, "dest.test", "a@b", "c@dest.test")[-1]
    if report == b"K":
        assert got == b"KIP accepted message.\n".replace(b"IP", s.ip.encode()) + OK_TEXT
    else:
        assert got == report.replace(b"IP", s.ip.encode())
        s.sessions[0].done.wait(5)
        assert s.sessions[0].commands[-1] == b"QUIT\r\n"


@pytest.mark.parametrize("stage,critical", [("greeting", False), ("mail", False), ("end", True)])
def test_connection_dropped(home, sinks, stage, critical):
    s = sinks(**{stage: CLOSE})
    routed(home, s)
    dup = b"Possible duplicate! " if critical else b""
    assert remote(home, "dest.test", "a@b", "c@dest.test")[-1] == (
        b"ZConnected to " + s.ip.encode() + b" but connection died. " + dup + b"(#4.4.2)\n")


@pytest.mark.parametrize("stage,critical", [("rcpt", False), ("end", True)])
def test_timeoutremote(home, sinks, stage, critical):
    (home / "control" / "timeoutremote").write_text("1\n")
    s = sinks(**{stage: HANG})
    routed(home, s)
    t = time.monotonic()
    reports = remote(home, "dest.test", "a@b", "c@dest.test")
    assert time.monotonic() - t < 10
    dup = b"Possible duplicate! " if critical else b""
    assert reports[-1] == b"ZConnected to " + s.ip.encode() + b" but connection died. " + dup + b"(#4.4.2)\n"


def test_partial_final_line(home, sinks):
    s = sinks()
    routed(home, s)
    assert remote(home, "dest.test", "a@b", "c@dest.test", msg=b"no newline")[-1] == (
        b"DSMTP cannot transfer messages with partial final lines. (#5.6.2)\n")
    s.sessions[0].done.wait(5)
    assert b".\r\n" not in s.sessions[0].data.splitlines(keepends=True)


def test_connection_refused(home):
    port = _unused_port()
    route(home, f"dest.test:127.0.0.1:{port}")
    assert remote(home, "dest.test", "a@b", "c@dest.test") == [
        b"ZSorry, I wasn't able to establish an SMTP connection. (#4.4.1)\n"]
    assert tcpto_table(home) == bytes(1024)  # a refusal is not a timeout


def _unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- smtproutes

def test_route_table():
    r = [b"#x:y", b"dest.test:relay.test:2525", b".sub.test:[10.0.0.1]", b"mx.test:",
         b":default.test", b"DEST.TEST:last.test", b"nocolon"]
    assert mxip.route(b"dest.test", r) == (b"last.test", 25)  # the last line wins
    assert mxip.route(b"a.b.sub.test", r) == (b"[10.0.0.1]", 25)
    assert mxip.route(b"sub.test", r) == (b"default.test", 25)
    assert mxip.route(b"mx.test", r) == (None, 25)
    assert mxip.route(b"other.test", r) == (b"default.test", 25)
    assert mxip.route(b"x.test", [b"x.test:r.test:26"]) == (b"r.test", 26)
    assert mxip.route(b"x.test", []) == (None, 25)


def test_mx_order_unit(monkeypatch):
    mxs = {"d.test": [(20, "b.test"), (10, "a.test"), (20, "c.test"), (5, "10.0.0.9"), (30, "")]}
    ips = {"a.test": ["10.0.0.1", "10.0.0.2"], "b.test": ["10.0.0.3"], "c.test": ["10.0.0.4"]}
    monkeypatch.setattr(mxip.dnsq, "mx", lambda n: list(mxs.get(n, [])))
    monkeypatch.setattr(mxip.dnsq, "ip4_hard", lambda n: ips.get(n, []))
    seen = set()
    for r in range(40):
        found, soft = mxip.mx_addresses("d.test", r * 7919)
        assert not soft
        assert found[:3] == [(5, "10.0.0.9"), (10, "10.0.0.1"), (10, "10.0.0.2")]
        assert sorted(found[3:]) == [(20, "10.0.0.3"), (20, "10.0.0.4")]
        seen.add(found[3])
    assert len(seen) == 2  # equal preferences come in either order
    assert mxip.mx_addresses("[10.1.2.3]", 0) == ([(0, "10.1.2.3")], False)
    assert mxip.mx_addresses("nosuch.test", 0) == (None, False)


def test_quote():
    assert quote.quote2(b"a.b-c+d@x") == b"a.b-c+d@x"
    assert quote.quote2(b'a"b\\c@d@x') == b'"a\\"b\\\\c@d"@x'
    assert quote.quote2(b"") == b""
    assert quote.quote(b"") == b'""'
    assert quote.quote(b"a b\r\n") == b'"a b\\\r\\\n"'


def test_routes_suffix_and_default(home, sinks):
    a, b = sinks(), sinks()
    route(home, f".sub.test:[{a.ip}]:{a.port}", f":{b.ip}:{b.port}")
    assert remote(home, "deep.sub.test", "a@b", "c@deep.sub.test")[-1].startswith(b"K" + a.ip.encode())
    assert remote(home, "else.test", "a@b", "c@else.test")[-1].startswith(b"K" + b.ip.encode())
    assert remote(home, "sub.test", "a@b", "c@sub.test")[-1].startswith(b"K" + b.ip.encode())


def test_route_by_name_and_no_cname_lookups(home, sinks, dns):
    s = sinks()
    d = dns({"relay.test": {"A": [s.ip]}, "dest.test": {"CNAME": ["other.test."]}})
    route(home, f"dest.test:relay.test:{s.port}")
    assert remote(home, "dest.test", "a@b", "c@dest.test", dns=d)[-1].startswith(b"K")
    assert ("relay.test.", "A") in d.questions
    assert not any(t in ("CNAME", "MX") for _, t in d.questions)
    s.sessions[0].done.wait(5)
    assert s.sessions[0].commands[2] == b"RCPT TO:<c@dest.test>\r\n"


def test_route_to_unknown_relay(home, dns):
    d = dns({})
    route(home, "dest.test:nosuch.test:2525")
    assert remote(home, "dest.test", "a@b", "c@dest.test", dns=d) == [
        b"DSorry, I couldn't find any host named nosuch.test. (#5.1.2)\n"]


# -- DNS without connecting

def test_dns_no_such_host(home, dns):
    d = dns({})
    assert remote(home, "nosuch.test", "a@b", "c@nosuch.test", dns=d) == [
        b"DSorry, I couldn't find any host named nosuch.test. (#5.1.2)\n"]
    assert ("nosuch.test.", "MX") in d.questions and ("nosuch.test.", "A") in d.questions


def test_dns_unsafe_host_name_shown_safely(home, dns):
    d = dns({})
    assert remote(home, "a\tb\xe9.test", "a@b", "c@x", dns=d) == [
        b"DSorry, I couldn't find any host named a?b??.test. (#5.1.2)\n"]


def test_dns_names_that_cannot_be_asked(home, dns):
    d = dns({})
    assert remote(home, "a..b.test", "a@b", "c@x..y", dns=d) == [
        b"DSorry, I couldn't find any host named a..b.test. (#5.1.2)\n"]
    assert remote(home, "x" * 300 + ".test", "a@b", "c@d", dns=d)[0].startswith(
        b"DSorry, I couldn't find any host named xxx")


def test_dns_temporary_failure(home, dns):
    d = dns({}, servfail={"flaky.test"})
    assert remote(home, "flaky.test", "a@b", "c@other.test", dns=d) == [
        b"ZSorry, I couldn't find any host by that name. (#4.1.2)\n"]


def test_cname_temporary_failure(home, dns):
    d = dns({}, servfail={"flaky.test"})
    assert remote(home, "dest.test", "a@b", "c@flaky.test", dns=d) == [
        b"ZCNAME lookup failed temporarily. (#4.4.3)\n"]


def test_mx_without_addresses(home, dns):
    d = dns({"dest.test": {"MX": ["10 nowhere.test.", "20 ."]}})
    assert remote(home, "dest.test", "a@b", "c@dest.test", dns=d) == [
        b"DSorry, I couldn't find a mail exchanger or IP address. (#5.4.4)\n"]


def test_mx_address_lookup_fails_softly(home, dns):
    d = dns({"dest.test": {"MX": ["10 flaky.test."]}}, servfail={"flaky.test"})
    assert remote(home, "dest.test", "a@b", "c@dest.test", dns=d) == [
        b"ZSorry, I couldn't find any host by that name. (#4.1.2)\n"]


# -- MX on port 25 (root)

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="port 25 needs root")


@needs_root
def test_mx_preference_order_and_fallback(home, sinks, dns):
    best, second = sinks(25), sinks(25)
    down = loopback()  # nothing listens there: refused
    d = dns({"dest.test": {"MX": ["30 third.test.", "10 down.test.", "20 second.test."]},
             "down.test": {"A": [down]}, "second.test": {"A": [second.ip]},
             "third.test": {"A": [best.ip]}})
    assert remote(home, "dest.test", "a@b", "c@dest.test", dns=d)[-1].startswith(
        b"K" + second.ip.encode())
    assert best.sessions == []
    questions = [q for q in d.questions if q[1] == "A"]
    assert questions == [("down.test.", "A"), ("second.test.", "A"), ("third.test.", "A")]


@needs_root
def test_equal_preferences_all_tried(home, sinks, dns):
    s = sinks(25)
    d = dns({"dest.test": {"MX": ["10 a.test.", "10 b.test.", "10 c.test."]},
             "a.test": {"A": [loopback()]}, "b.test": {"A": [loopback()]},
             "c.test": {"A": [s.ip]}})
    assert remote(home, "dest.test", "a@b", "c@dest.test", dns=d)[-1].startswith(b"K" + s.ip.encode())


@needs_root
def test_a_fallback_literal_and_cname(home, sinks, dns):
    s = sinks(25)
    d = dns({"dest.test": {"A": [s.ip]}, "alias.test": {"CNAME": ["real.test."]}})
    assert remote(home, "dest.test", "a@b", "u@alias.test", "v@dest.test", dns=d)[-1].startswith(b"K")
    assert ("dest.test.", "MX") in d.questions
    s.sessions[0].done.wait(5)
    assert s.sessions[0].commands[2:4] == [b"RCPT TO:<u@real.test>\r\n", b"RCPT TO:<v@dest.test>\r\n"]
    assert remote(home, f"[{s.ip}]", "a@b", "w@dest.test", dns=d)[-1].startswith(b"K" + s.ip.encode())


@needs_root
def test_refuses_to_send_to_itself(home, dns):
    d = dns({"dest.test": {"MX": ["10 me.test."]}, "me.test": {"A": ["127.0.0.1"]},
             "two.test": {"MX": ["5 down.test.", "10 me.test."]}, "down.test": {"A": [loopback()]}})
    ambig = (b"DSorry. Although I'm listed as a best-preference MX or A for that host,\n"
             b"it isn't in my control/locals file, so I don't treat it as local. (#5.4.6)\n")
    assert remote(home, "dest.test", "a@b", "c@dest.test", dns=d) == [ambig]
    assert remote(home, "[127.0.0.1]", "a@b", "c@dest.test", dns=d) == [ambig]
    # a better MX than ourselves is tried, but never ourselves
    assert remote(home, "two.test", "a@b", "c@two.test", dns=d) == [
        b"ZSorry, I wasn't able to establish an SMTP connection. (#4.4.1)\n"]


# -- tcpto

def test_tcpto_skips_recent_repeated_timeouts(home, sinks):
    s = sinks()
    routed(home, s)
    now = int(time.time())
    table = tcpto_record(s.ip, 2, now - 10) + bytes(1024 - 16)
    (home / "queue" / "lock" / "tcpto").write_bytes(table)
    assert remote(home, "dest.test", "a@b", "c@dest.test") == [
        b"ZSorry, I wasn't able to establish an SMTP connection. (#4.4.1)\n"]
    assert s.sessions == []
    # an old entry is tried again, and the success clears its count
    old = tcpto_record(s.ip, 2, now - 3 * 3600) + bytes(1024 - 16)
    (home / "queue" / "lock" / "tcpto").write_bytes(old)
    assert remote(home, "dest.test", "a@b", "c@dest.test")[-1].startswith(b"K")
    assert tcpto_table(home)[4] == 0


def test_tcpto_records_connect_timeout(home):
    (home / "control" / "timeoutconnect").write_text("1\n")
    ip = loopback()
    # a listener whose queue is full drops SYNs: the connection times out
    lsn = socket.socket()
    lsn.bind((ip, 0))
    lsn.listen(0)
    port = lsn.getsockname()[1]
    fillers = []
    try:
        for _ in range(4):
            c = socket.socket()
            c.setblocking(False)
            c.connect_ex((ip, port))
            fillers.append(c)
        time.sleep(0.2)
        route(home, f"dest.test:{ip}:{port}")
        t = time.monotonic()
        assert remote(home, "dest.test", "a@b", "c@dest.test") == [
            b"ZSorry, I wasn't able to establish an SMTP connection. (#4.4.1)\n"]
        assert time.monotonic() - t < 10
    finally:
        for c in fillers:
            c.close()
        lsn.close()
    rec = tcpto_table(home)[:16]
    assert rec[:4] == socket.inet_aton(ip) and rec[4] == 1
    assert abs(struct.unpack("<I", rec[8:12])[0] - time.time()) < 30


# -- the seam: a scripted connection in process

class FakeConn:
    def __init__(self, replies: bytes, fail_send: bool = False) -> None:
        self.replies = replies
        self.sent = bytearray()
        self.fail_send = fail_send

    def recv(self, n: int) -> bytes:
        chunk, self.replies = self.replies[:n], self.replies[n:]
        return chunk

    def send(self, data) -> int:
        if self.fail_send:
            raise BrokenPipeError
        self.sent += data
        return len(data)


class Message:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def read(self, n: int) -> bytes:
        chunk, self.data = self.data[:n], self.data[n:]
        return chunk


def session(replies: bytes, msg: bytes = MSG, **kw) -> tuple[bytes, bytes]:
    report = qr.Report()
    conn = FakeConn(replies, **kw)
    with pytest.raises(qr.Done):
        qr.Session(conn, "10.0.0.1", report, Message(msg)).smtp(b"helo.test", b"a@b", [b"c@d"])
    return bytes(report.data), bytes(conn.sent)


def test_seam_full_dialogue():
    out, sent = session(b"220 x\r\n250 x\r\n250 ok\r\n250 ok\r\n354 go\r\n250 done\r\n")
    assert out == b"r\0K10.0.0.1 accepted message.\nRemote host said: 250 done\n\0"
    assert sent == (b"HELO helo.test\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n"
                    b"Subject: test\r\n\r\nhello\r\n.\r\nQUIT\r\n")


def test_seam_reply_text_limits():
    huge = b"554-" + b"x" * 6000 + b"\r\n554 e\0nd\r\n"
    out, _ = session(huge)
    assert out.startswith(b"ZConnected to 10.0.0.1 but greeting failed.\nRemote host said: 554-xxx")
    assert len(out) == len(b"ZConnected to 10.0.0.1 but greeting failed.\nRemote host said: ") + 5000 + 1
    out, _ = session(b"421 e\0nd\r\n")
    assert out.endswith(b"Remote host said: 421 e?nd\n\0")


def test_seam_code_arithmetic():
    # qmail computes the code from any three bytes: "2 0" is not 200, " 20" wraps huge
    out, _ = session(b"220 x\r\n250 x\r\n 20 ok\r\n")
    assert out.startswith(b"DConnected to 10.0.0.1 but sender was rejected.")
    out, _ = session(b"220 x\r\n250 x\r\n250 ok\r\n2:0 ok\r\n354 go\r\n250 ok\r\n")
    assert out.startswith(b"r\0K")  # ':' - '0' = 10: 2*100 + 10*10 + 0 = 300, below 400


def test_seam_write_failure_is_a_dropped_connection():
    out, _ = session(b"220 x\r\n", fail_send=True)
    assert out == b"ZConnected to 10.0.0.1 but connection died. (#4.4.2)\n\0"
