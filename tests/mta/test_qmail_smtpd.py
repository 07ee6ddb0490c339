"""qmail-smtpd: qmail 1.03's dialogue, replies and message, on pipes, under our
tcpserver, and end to end into a Maildir."""
from __future__ import annotations

import os
import random
import re
import smtplib
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mta import qmail_smtpd, rcpthosts
from mta import smtpd_replies as R
from pyqmail.timeoutio import Closed, Conn
from tests.helpers import ours
from tests.mta.mailsys import MailSystem, wait_messages
from tests.tcpserver.harness import Server

ROOT = os.geteuid() == 0
DATE = rb"\d{1,2} \w{3} \d{4} \d\d:\d\d:\d\d -0000\n"


# -- a scratch QMAILHOME with a queue program that records what it gets ------------------
@pytest.fixture
def home(tmp_path: Path) -> Path:
    h = tmp_path / "qmail"
    (h / "control").mkdir(parents=True)
    (h / "qq").mkdir()
    (h / "control" / "me").write_text("mx.example\n")
    (h / "control" / "rcpthosts").write_text("mx.example\n.sub.example\n")
    fake = h / "fake-queue"
    # the message and the envelope, named by the qp; exit code from qq/code
    fake.write_text(f"""#!/bin/sh
d={h}/qq
cat > $d/msg.$$ || exit 54
cat <&1 > $d/tmp.$$ || exit 54
# no envelope (qmail-smtpd gave up on the message): nothing is queued
if test -s $d/tmp.$$; then mv $d/tmp.$$ $d/env.$$; else rm -f $d/tmp.$$ $d/msg.$$; exit 54; fi
test -f $d/code && exit `cat $d/code`
exit 0
""")
    fake.chmod(0o755)
    return h


def control(home: Path, name: str, text: str) -> None:
    (home / "control" / name).write_text(text)


def env_for(home: Path, **extra: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("TCP", "RELAYCLIENT", "DATABYTES", "QMAIL"))}
    env.update(QMAILHOME=str(home), QMAILQUEUE=str(home / "fake-queue"),
               TCPREMOTEIP="192.0.2.7", TCPLOCALIP="192.0.2.1")
    for k, v in extra.items():
        if v is None:
            env.pop(k, None)
        else:
            env[k] = v
    return env


def smtpd(home: Path, script: bytes, **extra: str | None) -> tuple[str, int]:
    """Run qmail-smtpd on pipes with ``script`` as all its input: (replies, exit code)."""
    p = subprocess.run([ours("qmail-smtpd")], input=script, capture_output=True,
                       env=env_for(home, **extra), timeout=30)
    assert p.stderr == b""
    return p.stdout.decode("latin-1"), p.returncode


def queued(home: Path) -> list[tuple[bytes, bytes]]:
    """(message, envelope) of each message the fake queue took, by qp."""
    out = []
    for env in sorted((home / "qq").glob("env.*"), key=lambda p: int(p.suffix[1:])):
        out.append(((home / "qq" / ("msg" + env.suffix)).read_bytes(), env.read_bytes()))
    return out


def lines(*replies: str) -> str:
    return "".join(r + "\r\n" for r in replies)


ENVELOPE = b"MAIL FROM:<a@b.example>\r\nRCPT TO:<u@mx.example>\r\n"


# -- the dialogue -----------------------------------------------------------------------
def test_every_command(home: Path) -> None:
    out, rc = smtpd(home, b"HELO client\r\nEHLO client\r\nhelp\r\nNoOp x\r\nVRFY u\r\n"
                    b"RSET\r\nEXPN list\r\nTURN\r\n\r\nRCPT TO:<u@mx.example>\r\nDATA\r\n"
                    b"MAIL FROM:<a@b>\r\nDATA\r\nRSET\r\nRCPT TO:<u@mx.example>\r\n"
                    b"MAIL FROM:<a@b>\r\nRCPT TO:<u@elsewhere.example>\r\nQUIT now\r\n")
    assert out == lines(
        "220 mx.example ESMTP", "250 mx.example",
        "250-mx.example", "250-PIPELINING", "250 8BITMIME",
        "214 qmail home page: http://pobox.com/~djb/qmail.html",
        "250 ok", "252 send some mail, i'll try my best", "250 flushed",
        "502 unimplemented (#5.5.1)", "502 unimplemented (#5.5.1)",
        "502 unimplemented (#5.5.1)",
        "503 MAIL first (#5.5.1)", "503 MAIL first (#5.5.1)",
        "250 ok", "503 RCPT first (#5.5.1)", "250 flushed", "503 MAIL first (#5.5.1)",
        "250 ok", "553 sorry, that domain isn't in my list of allowed rcpthosts (#5.7.1)",
        "221 mx.example")
    assert rc == 0
    assert queued(home) == []


def test_replies_are_qmails() -> None:
    assert R.EHLO + b"me" + R.EHLO_KEYWORDS == b"250-me\r\n250-PIPELINING\r\n250 8BITMIME\r\n"
    assert R.STRAY_NEWLINE == b"451 See http://pobox.com/~djb/docs/smtplf.html.\r\n"
    assert R.TIMEOUT == b"451 timeout (#4.4.2)\r\n"
    assert R.CONTROLS == b"421 unable to read controls (#4.3.0)\r\n"
    assert R.ACCEPTED % (1, 2) == b"250 ok 1 qp 2\r\n"


def test_end_of_input_exits_1(home: Path) -> None:
    assert smtpd(home, b"NOOP\r\n") == (lines("220 mx.example ESMTP", "250 ok"), 1)
    assert smtpd(home, b"NOOP") == (lines("220 mx.example ESMTP"), 1)


def test_greeting_from_smtpgreeting(home: Path) -> None:
    control(home, "smtpgreeting", "greetings.example hello there \t\nignored\n")
    out, rc = smtpd(home, b"HELO x\r\nQUIT\r\n")
    assert out == lines("220 greetings.example hello there ESMTP",
                        "250 greetings.example hello there", "221 greetings.example hello there")


@pytest.mark.parametrize("breakage", ["no me", "rcpthosts", "badmailfrom", "home"])
def test_unreadable_controls(home: Path, breakage: str) -> None:
    extra = {}
    if breakage == "no me":
        (home / "control" / "me").unlink()
    elif breakage == "home":
        extra["QMAILHOME"] = str(home / "missing")
    else:
        path = home / "control" / breakage
        path.unlink(missing_ok=True)
        path.mkdir()  # reading it fails with EISDIR
    assert smtpd(home, b"HELO x\r\n", **extra) == (lines("421 unable to read controls (#4.3.0)"), 1)


def test_command_lines(home: Path) -> None:
    """A bare LF ends a command too, one CR is dropped, a NUL ends the line,
    spaces before the argument are skipped, verbs ignore case."""
    out, _ = smtpd(home, b"noop\nNOOP\r\r\nhElO\0junk\r\nMAIL    FROM:<x@y>\r\n"
                   b"mail\x00\r\nrcpt to:<u@mx.example>\r\nQUIT\r\n")
    assert out == lines("220 mx.example ESMTP", "250 ok", "502 unimplemented (#5.5.1)",
                        "250 mx.example", "250 ok", "250 ok", "250 ok", "221 mx.example")


def test_overlong_command_line(home: Path) -> None:
    out, rc = smtpd(home, b"NOOP " + b"x" * 200000 + b"\r\nNOOP\r\n")
    assert (out, rc) == (lines("220 mx.example ESMTP", "421 out of memory (#4.3.0)"), 1)


# -- addresses --------------------------------------------------------------------------
@pytest.mark.parametrize("arg, addr", [
    (b"FROM:<a@b>", b"a@b"),
    (b"FROM:<>", b""),
    (b"FROM: <a@b> SIZE=10", b"a@b"),
    (b"FROM:a@b", b"a@b"),
    (b"FROM:   a@b SIZE=10", b"a@b"),
    (b"FROM a@b", b""),  # no colon, no bracket: nothing
    (b"TO:<@r1.example,@r2.example:a@b>", b"a@b"),
    (b"TO:<\"a b>c\"@d>", b"a b>c@d"),
    (b"TO:<a\\>b@c>", b"a>b@c"),
    (b"TO:<a\\\"b@c>", b'a"b@c'),
    (b"TO:<a@b", b"a@b"),
    (b"TO:<@a.example>", b""),
    (b"x <y@z> <w@v>", b"y@z"),
])
def test_addrparse(arg: bytes, addr: bytes) -> None:
    assert rcpthosts.addrparse(arg) == addr


def test_addrparse_length() -> None:
    assert rcpthosts.addrparse(b"<" + b"a" * 897 + b"@b>") == b"a" * 897 + b"@b"
    assert rcpthosts.addrparse(b"<" + b"a" * 898 + b"@b>") is None


@pytest.mark.parametrize("addr, rewritten", [
    (b"box@[127.0.0.1]", b"box@local.example"),
    (b"box@[0.0.0.0]", b"box@local.example"),
    (b"box@[383.0.0.1]", b"box@local.example"),  # each number is taken modulo 256
    (b"box@[192.0.2.200]", b"box@[192.0.2.200]"),
    (b"box@[127.0.0.1]x", b"box@[127.0.0.1]x"),
    (b"box@[127.0.0.1", b"box@[127.0.0.1"),
    (b"box@[127.0.0]", b"box@[127.0.0]"),
    (b"box@[127.0.0.1.2]", b"box@[127.0.0.1.2]"),
    (b"[127.0.0.1]", b"[127.0.0.1]"),
])
def test_localiphost(addr: bytes, rewritten: bytes) -> None:
    assert rcpthosts.addrparse(b"<" + addr + b">", b"local.example") == rewritten


def test_rcpthosts(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QMAILHOME", str(home))
    control(home, "rcpthosts", "# comment\nMX.example  \n.Sub.Example\n")
    (home / "control" / "morercpthosts").write_text("More.Example\n.deep.example\n")
    assert subprocess.run([ours("qmail-newmrh")], env={**os.environ}).returncode == 0
    rh = rcpthosts.RcptHosts()
    for addr, ok in [(b"u@mx.example", True), (b"u@MX.EXAMPLE", True), (b"u@x.mx.example", False),
                     (b"u@sub.example", False), (b"u@a.b.sub.example", True), (b"plain", True),
                     (b"u@more.example", True), (b"u@x.more.example", False),
                     (b"u@x.deep.example", True), (b"u@deep.example", False),
                     (b"u@", False), (b"a@mx.example@other.example", False),
                     (b"u@other.example", False), (b"u@mx.example.", False)]:
        assert rh.allowed(addr) is ok, addr
    (home / "control" / "rcpthosts").unlink()  # none: every recipient is allowed
    assert rcpthosts.RcptHosts().allowed(b"u@other.example")


def test_badmailfrom_at_rcpt(home: Path) -> None:
    control(home, "badmailfrom", "Spammer@Bad.Example\n@worse.example\n")
    out, _ = smtpd(home, b"MAIL FROM:<spammer@bad.example>\r\nRCPT TO:<u@mx.example>\r\n"
                   b"MAIL FROM:<anyone@WORSE.example>\r\nRCPT TO:<u@mx.example>\r\n"
                   b"MAIL FROM:<other@bad.example>\r\nRCPT TO:<u@mx.example>\r\nQUIT\r\n")
    bmf = "553 sorry, your envelope sender is in my badmailfrom list (#5.7.1)"
    assert out == lines("220 mx.example ESMTP", "250 ok", bmf, "250 ok", bmf,
                        "250 ok", "250 ok", "221 mx.example")


def test_syntax_error(home: Path) -> None:
    long = b"<" + b"a" * 950 + b"@mx.example>"
    out, _ = smtpd(home, b"MAIL FROM:" + long + b"\r\nMAIL FROM:<a@b>\r\nRCPT TO:" + long
                   + b"\r\nQUIT\r\n")
    assert out == lines("220 mx.example ESMTP", "555 syntax error (#5.5.4)", "250 ok",
                        "555 syntax error (#5.5.4)", "221 mx.example")


# -- DATA ---------------------------------------------------------------------------------
def send(home: Path, body: bytes, envelope: bytes = ENVELOPE, **extra) -> tuple[str, int]:
    return smtpd(home, envelope + b"DATA\r\n" + body + b"QUIT\r\n", **extra)


def test_message_and_envelope(home: Path) -> None:
    control(home, "localiphost", "box.example\n")
    control(home, "rcpthosts", "mx.example\nbox.example\n")
    out, rc = send(home, b"Subject: hi\r\n\r\n..leading dot\r\n.\rkept\r\nbare\rCR\r\n"
                   b"two CRs\r\r\n\r\nlast\r\n.\r\n",
                   envelope=b"HELO Client.Example\r\nMAIL FROM:<a@[127.0.0.1]>\r\n"
                   b"RCPT TO:<u@mx.example>\r\nRCPT TO:<v@[127.0.0.1]>\r\n",
                   TCPREMOTEHOST="client.example", TCPREMOTEINFO="alice",
                   TCPLOCALHOST="mx.example", TCPREMOTEIP="192.0.2.9")
    [(msg, env)] = queued(home)
    qp = re.search(r"250 ok (\d+) qp (\d+)\r\n221", out)
    assert qp and abs(int(qp.group(1)) - time.time()) < 60
    assert (home / "qq" / f"env.{qp.group(2)}").exists()
    assert out == lines("220 mx.example ESMTP", "250 mx.example", "250 ok", "250 ok", "250 ok",
                        "354 go ahead", f"250 ok {qp.group(1)} qp {qp.group(2)}",
                        "221 mx.example")
    assert rc == 0
    assert env == b"Fa@box.example\0Tu@mx.example\0Tv@box.example\0\0"
    assert re.fullmatch(
        rb"Received: from client.example \(alice@192.0.2.9\)\n  by mx.example with SMTP; "
        + DATE + rb"Subject: hi\n\n.leading dot\n.\rkept\nbare\rCR\ntwo CRs\r\n\nlast\n", msg)


@pytest.mark.parametrize("helo, env, line", [
    (None, {}, b"from unknown (192.0.2.7)\n  by 192.0.2.1 with SMTP"),
    (b"HELO", {}, b"from unknown (HELO ) (192.0.2.7)\n  by 192.0.2.1 with SMTP"),
    (b"HELO UNKNOWN", {}, b"from unknown (192.0.2.7)\n  by 192.0.2.1 with SMTP"),
    (b"EHLO we ird\xe9<>", {"TCPREMOTEHOST": "h_st", "TCPREMOTEINFO": "b ob",
                             "TCPLOCALHOST": "l(c)"},
     b"from h?st (HELO we?ird???) (b?ob@192.0.2.7)\n  by l?c? with SMTP"),
    (b"HELO x", {"TCPREMOTEIP": None, "TCPLOCALIP": None},
     b"from unknown (HELO x) (unknown)\n  by unknown with SMTP"),
    (b"HELO x", {"TCPREMOTEINFO": "", "TCPLOCALHOST": ""},
     b"from unknown (HELO x) (@192.0.2.7)\n  by  with SMTP"),
])
def test_received_line(home: Path, helo: bytes | None, env: dict, line: bytes) -> None:
    envelope = (helo + b"\r\n" if helo else b"") + ENVELOPE
    out, _ = send(home, b"x\r\n.\r\n", envelope=envelope, **env)
    assert "250 ok " in out
    [(msg, _)] = queued(home)
    assert re.fullmatch(rb"Received: " + re.escape(line) + rb"; " + DATE + rb"x\n", msg), msg


@pytest.mark.parametrize("body", [
    b"Subject: x\n\r\nbody\r\n.\r\n", b"Subject: x\r\n\r\nbody\n.\r\n",
    b"\n.\r\n", b"x\r\n.\n", b"a\r\nb\r\n\r\n" + b"c\r\n" * 1000 + b"d\n\r\n.\r\n",
])
def test_bare_lf_drops_the_connection(home: Path, body: bytes) -> None:
    out, rc = send(home, body)
    assert out.endswith("354 go ahead\r\n451 See http://pobox.com/~djb/docs/smtplf.html.\r\n")
    assert rc == 1
    assert queued(home) == []


@pytest.mark.parametrize("limit, size, source", [
    (100, 100, "control"), (100, 101, "control"), (100, 101, "env"), (0, 300000, "env"),
    (1, 0, "control"),
])
def test_databytes(home: Path, limit: int, size: int, source: str) -> None:
    """The limit counts the message as queued (LF line ends), not the Received line."""
    extra = {}
    if source == "control":
        control(home, "databytes", f"{limit}\n")
    else:
        control(home, "databytes", "10\n")
        extra["DATABYTES"] = str(limit)
    body = b"x" * (size - 1) + b"\n" if size else b""
    wire = body.replace(b"\n", b"\r\n")
    out, rc = send(home, wire + b".\r\nNOOP\r\n", **extra)
    if limit and size > limit:
        assert out.endswith("354 go ahead\r\n552 sorry, that message size exceeds my databytes "
                            "limit (#5.3.4)\r\n250 ok\r\n221 mx.example\r\n")
        assert queued(home) == []
    else:
        assert re.search(r"354 go ahead\r\n250 ok \d+ qp \d+\r\n250 ok\r\n221", out)
        [(msg, _)] = queued(home)
        assert msg.endswith(b"\n" + body) and msg.startswith(b"Received: ")


@pytest.mark.parametrize("hops, accepted", [(99, True), (100, False)])
def test_hop_count(home: Path, hops: int, accepted: bool) -> None:
    head = b"".join(b"Received: from x\r\n" if i % 2 else b"DELIVERED-TO: y\r\n"
                    for i in range(hops - 1))
    head += b"rEcEiVeD\r\nDelivere: not counted\r\nReceive: nor this\r\n"
    body = b"\r\nReceived: in the body: not counted\r\n.\r\n"
    out, _ = send(home, head + body)
    if accepted:
        assert re.search(r"354 go ahead\r\n250 ok \d+ qp \d+\r\n", out)
        assert len(queued(home)) == 1
    else:
        assert "354 go ahead\r\n554 too many hops, this message is looping (#5.4.6)\r\n" in out
        assert queued(home) == []


@pytest.mark.parametrize("code, reply", [
    ("53", "451 qq write error or disk full (#4.3.0)"),
    ("31", "554 mail server permanently rejected message (#5.3.0)"),
    ("20", "554 qq permanent problem (#5.3.0)"),
    ("99", "451 qq temporary problem (#4.3.0)"),
])
def test_queue_failures(home: Path, code: str, reply: str) -> None:
    (home / "qq" / "code").write_text(code)
    out, rc = send(home, b"x\r\n.\r\n")
    assert out.endswith(f"354 go ahead\r\n{reply}\r\n221 mx.example\r\n")


def test_no_queue_program(home: Path) -> None:
    out, _ = send(home, b"x\r\n.\r\n", QMAILQUEUE=str(home / "missing"))
    assert out.endswith("354 go ahead\r\n451 unable to exec qq (#4.3.0)\r\n221 mx.example\r\n")


def test_relayclient_is_appended(home: Path) -> None:
    out, _ = send(home, b"x\r\n.\r\n", RELAYCLIENT="@relay.example",
                  envelope=b"MAIL FROM:<a@b>\r\nRCPT TO:<u@far.example>\r\nRCPT TO:<v>\r\n")
    assert not re.search(r"^553 ", out, re.M)
    [(_, env)] = queued(home)
    assert env == b"Fa@b\0Tu@far.example@relay.example\0Tv@relay.example\0\0"


def test_pipelined_messages(home: Path) -> None:
    """Commands after a message's dot, in the same write, are answered, and a
    second message in the same session has its own envelope."""
    script = (b"EHLO c\r\n" + ENVELOPE + b"DATA\r\none\r\n.\r\n"
              b"MAIL FROM:<>\r\nRCPT TO:<w@mx.example>\r\nDATA\r\ntwo\r\n.\r\nQUIT\r\n")
    out, rc = smtpd(home, script)
    assert re.fullmatch(lines("220 mx.example ESMTP", "250-mx.example", "250-PIPELINING",
                              "250 8BITMIME", "250 ok", "250 ok", "354 go ahead",
                              r"250 ok \d+ qp \d+", "250 ok", "250 ok", "354 go ahead",
                              r"250 ok \d+ qp \d+", "221 mx.example"), out)
    [(m1, e1), (m2, e2)] = queued(home)
    assert m1.endswith(b"\none\n") and e1 == b"Fa@b.example\0Tu@mx.example\0\0"
    assert m2.endswith(b"\ntwo\n") and e2 == b"F\0Tw@mx.example\0\0"


def test_replies_wait_for_the_batch(home: Path) -> None:
    """MAIL and RCPT answers are buffered until qmail-smtpd has to wait for
    input: a pipelined batch gets its answers in one write."""
    a, b = socket.socketpair()
    p = subprocess.Popen([ours("qmail-smtpd")], stdin=b, stdout=b, env=env_for(home))
    b.close()
    try:
        a.settimeout(10)
        assert a.recv(100) == b"220 mx.example ESMTP\r\n"
        a.sendall(b"MAIL FROM:<a@b>\r\n" + b"RCPT TO:<u@mx.example>\r\n" * 20 + b"RSET\r\n")
        got = b""
        while got.count(b"\r\n") < 22:
            got += a.recv(4096)
        assert got == b"250 ok\r\n" * 21 + b"250 flushed\r\n"
        a.sendall(b"QUIT\r\n")
        assert a.recv(100) == b"221 mx.example\r\n"
        assert p.wait(10) == 0
    finally:
        a.close()
        if p.poll() is None:
            p.kill()


@pytest.mark.parametrize("during", ["command", "data"])
def test_timeout(home: Path, during: str) -> None:
    control(home, "timeoutsmtpd", "1\n")
    a, b = socket.socketpair()
    p = subprocess.Popen([ours("qmail-smtpd")], stdin=b, stdout=b, env=env_for(home))
    b.close()
    try:
        a.settimeout(10)
        if during == "data":
            a.sendall(ENVELOPE + b"DATA\r\npart of a line")
        start = time.monotonic()
        got = b""
        while not got.endswith(b"451 timeout (#4.4.2)\r\n"):
            data = a.recv(4096)
            assert data, got
            got += data
        assert 0.8 < time.monotonic() - start < 5
        assert p.wait(10) == 1
        assert queued(home) == []
    finally:
        a.close()
        if p.poll() is None:
            p.kill()


# -- DATA against a transcription of qmail-smtpd.c's byte-at-a-time blast() --------------
def blast_c(data: bytes) -> tuple[bytes, int, str, int]:
    """(message, hops, how it ended: "end", "stray" or "eof", bytes read)."""
    out = bytearray()
    state, hops, inheader, pos = 1, 0, True, 0
    mx = my = mz = True
    for i, ch in enumerate(data):
        c = bytes([ch])
        if inheader:
            if pos < 9:
                if ch not in (ord("delivered"[pos]), ord("DELIVERED"[pos])):
                    mz = False
                if mz and pos == 8:
                    hops += 1
                if pos < 8 and ch not in (ord("received"[pos]), ord("RECEIVED"[pos])):
                    mx = False
                if mx and pos == 7:
                    hops += 1
                if pos < 2 and c != b"\r\n"[pos:pos + 1]:
                    my = False
                if my and pos == 1:
                    inheader = False
                pos += 1
            if c == b"\n":
                pos, mx, my, mz = 0, True, True, True
        if state == 0:
            if c == b"\n":
                return bytes(out), hops, "stray", i + 1
            if c == b"\r":
                state = 4
                continue
        elif state == 1:
            if c == b"\n":
                return bytes(out), hops, "stray", i + 1
            if c == b".":
                state = 2
                continue
            if c == b"\r":
                state = 4
                continue
            state = 0
        elif state == 2:
            if c == b"\n":
                return bytes(out), hops, "stray", i + 1
            if c == b"\r":
                state = 3
                continue
            state = 0
        elif state == 3:
            if c == b"\n":
                return bytes(out), hops, "end", i + 1
            out += b".\r"
            if c == b"\r":
                state = 4
                continue
            state = 0
        elif state == 4:
            if c == b"\n":
                state = 1
            elif c != b"\r":
                out += b"\r"
                state = 0
        out += c
    return bytes(out), hops, "eof", len(data)


class ChunkConn(Conn):
    def __init__(self, chunks: list[bytes]) -> None:
        super().__init__(1, -1, -1)
        self.chunks = chunks

    def read(self) -> bytes:
        if not self.chunks:
            raise Closed
        return self.chunks.pop(0)


class Collect:
    def __init__(self) -> None:
        self.data = bytearray()
        self.failed = False

    def put(self, data: bytes) -> None:
        if not self.failed:
            self.data += data

    def fail(self) -> None:
        self.failed = True


@pytest.mark.parametrize("longline", [65536, 9, 16])
def test_blast_matches_qmail(monkeypatch: pytest.MonkeyPatch, longline: int) -> None:
    monkeypatch.setattr(qmail_smtpd, "LONGLINE", longline)
    rnd = random.Random(1997)
    pieces = [b"a", b"b", b".", b"\r", b"\n", b"\r\n", b"\r\n.", b"\r\n.\r\n", b"\r\n\r\n",
              b"Received", b"DeLiVeReD", b"xyzzy plugh " * 3]
    for _ in range(3000):
        data = b"".join(rnd.choice(pieces) for _ in range(rnd.randrange(1, 40)))
        if rnd.random() < 0.5:
            data += b"\r\n.\r\nrest"
        want, hops, how, used = blast_c(data)
        cuts = sorted(rnd.sample(range(1, len(data)), min(3, len(data) - 1))) if len(data) > 1 else []
        chunks = [data[i:j] for i, j in zip([0] + cuts, cuts + [len(data)])]
        conn = ChunkConn(chunks[1:])
        conn.give(chunks[0])
        qq = Collect()
        try:
            got = qmail_smtpd.blast(conn, qq, 0)
            result = "end"
        except qmail_smtpd.StrayNewline:
            result = "stray"
        except Closed:
            result = "eof"
        assert result == how, data
        if how == "end":
            assert got[0] == hops, data
            assert bytes(qq.data) == want, data
            assert conn.take() + b"".join(conn.chunks) == data[used:], data


def test_long_lines_pass_whole(home: Path) -> None:
    line = bytes(range(33, 127)) * 3000
    out, _ = send(home, b"Subject: " + line + b"\r\n\r\n." + line + b"\r\n" + line + b"\r\n.\r\n")
    assert "250 ok " in out
    [(msg, _)] = queued(home)
    assert msg.split(b"\n", 2)[2] == b"Subject: " + line + b"\n\n" + line + b"\n" + line + b"\n"


def test_light_imports() -> None:
    """qmail-smtpd runs per connection: nothing heavy is loaded before it is needed."""
    code = ("import sys, mta.qmail_smtpd; print(sorted(m for m in ('psutil', 'dns', 're', "
            "'typing', 'socket', 'subprocess', 'asyncio', 'email', 'mmap', 'pyqmail.cdb') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# -- under tcpserver: the relay matrix ----------------------------------------------------
def connect_from(port: int, source: str) -> smtplib.SMTP:
    s = smtplib.SMTP(timeout=20, source_address=(source, 0))
    s.connect("127.0.0.1", port)
    return s


def test_relay_matrix(home: Path, tmp_path: Path, spawn) -> None:
    """RELAYCLIENT from a tcprules CDB for 127.0.0.1, nothing for 127.0.0.2."""
    (home / "control" / "morercpthosts").write_text("more.example\n")
    assert subprocess.run([ours("qmail-newmrh")], env=env_for(home)).returncode == 0
    rules = tmp_path / "tcp.smtp.cdb"
    subprocess.run([ours("tcprules"), str(rules), str(rules) + ".tmp"], check=True,
                   input=b'127.0.0.1:allow,RELAYCLIENT=""\n127.0.0.2:allow\n:deny\n')
    env = env_for(home, TCPREMOTEIP=None, TCPLOCALIP=None)
    server = Server(spawn, ours("tcpserver"), ["-HRl0", "-x", str(rules)],
                    [ours("qmail-smtpd")], tmp_path, env=env)
    matrix = {"u@mx.example": (250, 250), "u@a.sub.example": (250, 250),
              "u@more.example": (250, 250), "u@foreign.example": (250, 553),
              "u@sub.example": (250, 553)}
    for source, col in (("127.0.0.1", 0), ("127.0.0.2", 1)):
        s = connect_from(server.port, source)
        assert s.ehlo("client")[0] == 250
        assert "pipelining" in s.esmtp_features and "8bitmime" in s.esmtp_features
        assert s.mail("a@b.example")[0] == 250
        for rcpt, codes in matrix.items():
            code, text = s.rcpt(rcpt)
            assert code == codes[col], (source, rcpt, text)
            if code == 553:
                assert text == b"sorry, that domain isn't in my list of allowed rcpthosts (#5.7.1)"
        assert s.data(b"Subject: relay\r\n\r\nhello\r\n")[0] == 250
        s.quit()
    msgs = queued(home)
    assert len(msgs) == 2
    assert msgs[0][1] == (b"Fa@b.example\0" + b"".join(b"T" + r.encode() + b"\0" for r in matrix)
                          + b"\0")
    assert msgs[1][1] == b"Fa@b.example\0Tu@mx.example\0Tu@a.sub.example\0Tu@more.example\0\0"
    assert re.match(rb"Received: from unknown \(HELO client\) \(127.0.0.1\)\n  by 0 with SMTP; ",
                    msgs[0][0])
    assert re.match(rb"Received: from unknown \(HELO client\) \(127.0.0.2\)\n  by 0 with SMTP; ",
                    msgs[1][0])


# -- end to end: smtplib to a Maildir -----------------------------------------------------
@pytest.fixture
def mailsys():
    s = MailSystem("mx.example")
    yield s
    s.close()


def test_smtp_to_maildir(mailsys: MailSystem, tmp_path: Path, spawn) -> None:
    """A message sent with smtplib through our tcpserver (as qmaild when root,
    so through the queue service) lands in the Maildir with qmail's Received line."""
    mailsys.control("rcpthosts", "mx.example")
    mailsys.control("databytes", "1000")
    mailsys.start()
    box = mailsys.box
    env = {**mailsys.env, "PATH": f"{Path(ours('tcpserver')).parent}:/usr/bin:/bin"}
    opts = ["-HRl", "mx.example"]
    if ROOT:
        import pwd
        qmaild = pwd.getpwnam("qmaild")
        opts += ["-u", str(qmaild.pw_uid), "-g", str(qmaild.pw_gid)]
    server = Server(spawn, ours("tcpserver"), opts, ["qmail-smtpd"], tmp_path, env=env)
    # a bare LF, and a client gone in the middle of its message: nothing queued,
    # and the queue service is still there for the next message
    envelope = f"MAIL FROM:<a@b>\r\nRCPT TO:<{box.name}@mx.example>\r\nDATA\r\n".encode()
    for tail, reply in ((b"bare\nLF\r\n", b"451 See http"), (b"half a message", b"")):
        with socket.create_connection(("127.0.0.1", server.port), timeout=30) as c:
            c.sendall(envelope + tail)
            got = b""
            while b"354 go ahead\r\n" not in got:
                got += c.recv(4096)
            if reply:
                while (data := c.recv(4096)):
                    got += data
                assert got.endswith(b"\r\n354 go ahead\r\n" + reply
                                    + b"://pobox.com/~djb/docs/smtplf.html.\r\n")
    with smtplib.SMTP("127.0.0.1", server.port, local_hostname="client.example", timeout=30) as s:
        s.ehlo("client.example")
        # refused messages never reach the queue (the service gets no envelope)
        with pytest.raises(smtplib.SMTPDataError) as e:
            s.sendmail("sender@far.example", [f"{box.name}@mx.example"], b"x" * 2000)
        assert e.value.smtp_code == 552
        with pytest.raises(smtplib.SMTPDataError) as e:
            s.sendmail("sender@far.example", [f"{box.name}@mx.example"],
                       b"Received: x\r\n" * 100 + b"\r\nloop\r\n")
        assert e.value.smtp_code == 554
        s.sendmail("sender@far.example", [f"{box.name}@mx.example"],
                   b"Subject: over SMTP\r\n\r\n.a dot\r\nbody\r\n")
        code, _ = s.rcpt("x@elsewhere.example")
        assert code == 503
    [msg] = wait_messages(box, 1)
    assert re.search(rb"\nReceived: from unknown \(HELO client.example\) \(127.0.0.1\)\n"
                     rb"  by mx.example with SMTP; " + DATE + rb"Subject: over SMTP\n\n"
                     rb"\.a dot\nbody\n$", msg), msg
    assert msg.startswith(f"Return-Path: <sender@far.example>\nDelivered-To: {box.name}"
                          f"@mx.example\n".encode())
    log = mailsys.wait_log("end msg")
    assert re.search(r"info msg \d+: bytes \d+ from <sender@far.example> qp \d+ uid \d+", log)
    mailsys.wait_empty()
    assert log.count("new msg") == 1 and len(box.new()) == 1
