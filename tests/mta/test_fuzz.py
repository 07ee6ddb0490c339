"""Random dialogues for qmail-smtpd, qmail-popup and qmail-pop3d (hypothesis):
commands from each protocol mixed with random bytes, NULs, bare LFs, overlong
lines and pipelined garbage.  Whatever comes: no traceback, an exit in time,
bounded memory, only well-formed replies, and for qmail-smtpd nothing queued
that was not acknowledged with 250 (and everything acknowledged queued)."""
from __future__ import annotations

import os
import re
import resource
import subprocess
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers import ours

#: each program runs with at most this much address space
MEMORY = 512 * 1024 * 1024
FUZZ = settings(max_examples=40, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _limit() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY, MEMORY))


def run(argv: list[str], data: bytes, env: dict, cwd: str | None = None):
    return subprocess.run(argv, input=data, capture_output=True, env=env, cwd=cwd,
                          timeout=60, preexec_fn=_limit)


def dialogue(vocab: list[bytes]) -> st.SearchStrategy[bytes]:
    """Lines from ``vocab`` or random, with CRLF, bare LF, NUL or nothing at the end."""
    line = st.one_of(
        st.sampled_from(vocab),
        st.binary(max_size=120),
        st.tuples(st.integers(0, 255), st.integers(1000, 90000)).map(
            lambda t: bytes([t[0]]) * t[1]),  # overlong
    )
    end = st.sampled_from([b"\r\n", b"\r\n", b"\r\n", b"\n", b"\0\r\n", b"\r", b""])
    return st.lists(st.tuples(line, end), max_size=25).map(
        lambda parts: b"".join(a + b for a, b in parts))


# -- qmail-smtpd ---------------------------------------------------------------------------

SMTP = [b"HELO client.example", b"EHLO client.example", b"MAIL FROM:<a@b.example>",
        b"MAIL FROM:<>", b"MAIL FROM:a@b.example", b"RCPT TO:<u@mx.example>",
        b"RCPT TO:<u@elsewhere.example>", b"RCPT TO:<u>", b"DATA", b"RSET", b"NOOP",
        b"VRFY u", b"HELP", b"QUIT", b".", b"..", b"Subject: x", b"Received: x", b"",
        b"MAIL", b"RCPT", b"mail from:<A@B>", b"STARTTLS", b"AUTH PLAIN", b"BDAT 10"]
FAKE_QUEUE = """#!/bin/sh
cat > "$QQ/msg.$$" || exit 54
cat <&1 > "$QQ/tmp.$$" || exit 54
if test -s "$QQ/tmp.$$"; then mv "$QQ/tmp.$$" "$QQ/env.$$"; else rm -f "$QQ/tmp.$$" "$QQ/msg.$$"; exit 54; fi
exit 0
"""
REPLY = re.compile(rb"\d{3}[ -][^\r\n]*\r")


@FUZZ
@given(dialogue(SMTP))
def test_smtpd_survives_anything(script: bytes) -> None:
    with tempfile.TemporaryDirectory() as d:
        home = Path(d)
        (home / "control").mkdir()
        (home / "control" / "me").write_text("mx.example\n")
        (home / "control" / "rcpthosts").write_text("mx.example\n")
        (home / "control" / "databytes").write_text("100000\n")
        (home / "control" / "timeoutsmtpd").write_text("5\n")
        (home / "qq").mkdir()
        fake = home / "fake-queue"
        fake.write_text(FAKE_QUEUE)
        fake.chmod(0o755)
        env = {"PATH": os.environ["PATH"], "QMAILHOME": str(home), "QMAILQUEUE": str(fake),
               "QQ": str(home / "qq"), "TCPREMOTEIP": "192.0.2.7", "TCPLOCALIP": "192.0.2.1"}
        p = run([ours("qmail-smtpd")], script, env)
        assert p.stderr == b"", p.stderr[-2000:]
        assert p.returncode in (0, 1)
        replies = p.stdout.split(b"\n")
        assert replies.pop() == b""
        for r in replies:
            assert REPLY.fullmatch(r), r
        accepted = [r for r in replies if re.match(rb"250 ok \d+ qp \d+\r", r)]
        assert len(accepted) == len(list((home / "qq").glob("env.*")))


# -- qmail-popup ---------------------------------------------------------------------------

POPUP = [b"USER joe", b"PASS secret", b"APOP joe 0123456789abcdef0123456789abcdef",
         b"QUIT", b"NOOP", b"STAT", b"CAPA", b"STLS", b"user", b"pass", b""]


@FUZZ
@given(dialogue(POPUP))
def test_popup_survives_anything(script: bytes) -> None:
    env = {"PATH": os.environ["PATH"]}
    p = run([ours("qmail-popup"), "pop.example", "false"], script, env)
    assert p.stderr == b"", p.stderr[-2000:]
    assert p.returncode in (0, 1)
    replies = p.stdout.split(b"\r\n")
    assert replies.pop() == b""
    for r in replies:
        assert r.startswith((b"+OK", b"-ERR", b".")) or r == b"" or r[:1].isalpha(), r


# -- qmail-pop3d ---------------------------------------------------------------------------

POP3D = [b"STAT", b"LIST", b"LIST 1", b"LIST 9", b"UIDL", b"UIDL 2", b"RETR 1", b"RETR 3",
         b"TOP 1 0", b"TOP 2 5", b"TOP 2", b"DELE 1", b"DELE 2", b"DELE 9", b"RSET",
         b"LAST", b"NOOP", b"QUIT", b"quit", b"USER x", b"CAPA", b""]


@FUZZ
@given(dialogue(POP3D))
def test_pop3d_survives_anything(script: bytes) -> None:
    with tempfile.TemporaryDirectory() as d:
        md = Path(d) / "Maildir"
        for sub in ("tmp", "new", "cur"):
            (md / sub).mkdir(parents=True)
        for i in range(3):
            (md / "new" / f"100{i}.{i}.host").write_bytes(
                b"Subject: %d\n\n" % i + b"line\n.dot\n" * (i * 20))
        p = run([ours("qmail-pop3d"), "Maildir"], script, {"PATH": os.environ["PATH"]},
                cwd=d)
        assert p.stderr == b"", p.stderr[-2000:]
        assert p.returncode in (0, 1)
        left = list((md / "new").iterdir()) + list((md / "cur").iterdir())
        quit_given = re.search(rb"(^|[\r\n\0])quit", script, re.I)
        if not quit_given:
            assert len(left) == 3  # nothing deleted without QUIT
        assert len(left) <= 3
