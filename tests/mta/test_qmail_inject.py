"""qmail-inject: header rewriting (qmail-header(5)), recipients, envelope, options,
environment, control files and failures, run as a real process against a fake queue."""
from __future__ import annotations

import calendar
import os
import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers import ours
from tests.mta.util import FakeQueue

ME = "silverton.berkeley.edu"


@dataclass
class Out:
    rc: int
    out: bytes
    err: bytes


class Inject:
    """A QMAILHOME with controls and a recording qmail-queue, and a way to run qmail-inject."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.qq = FakeQueue(tmp)
        self.home = self.qq.home
        (self.home / "control").mkdir()
        self.control("me", ME)
        self.control("defaultdomain", "berkeley.edu")
        self.control("plusdomain", "berkeley.edu")

    def control(self, name: str, value: str | None) -> None:
        path = self.home / "control" / name
        if value is None:
            path.unlink()
        else:
            path.write_text(value + "\n")

    def __call__(self, args: list, message: bytes = b"", env: dict | None = None,
                 stdin=None, cwd: Path | None = None) -> Out:
        full = {"PATH": os.environ.get("PATH", "/bin:/usr/bin"), **self.qq.env}
        full.update(env or {})
        if stdin is None:
            p = subprocess.run([ours("qmail-inject"), *args], input=message, env=full,
                               capture_output=True, timeout=60, cwd=cwd)
        else:
            p = subprocess.run([ours("qmail-inject"), *args], stdin=stdin, env=full,
                               capture_output=True, timeout=60, cwd=cwd)
        return Out(p.returncode, p.stdout, p.stderr)

    def queued(self, args: list, message: bytes, env: dict | None = None) -> tuple[bytes, list]:
        """Queue ``message``; return the message qmail-queue got and the envelope."""
        r = self(args, message, env)
        assert (r.rc, r.out, r.err) == (0, b"", b"")
        return self.qq.message, envelope(self.qq.envelope)


def envelope(data: bytes) -> list:
    """``Fsender\\0Trecip\\0...\\0`` as ``[sender, recip, ...]``."""
    assert data.endswith(b"\0\0")
    parts = data[:-1].split(b"\0")[:-1]
    assert parts[0][:1] == b"F" and all(p[:1] == b"T" for p in parts[1:])
    return [p[1:].decode("latin-1") for p in parts]


DATE = re.compile(rb"^(Resent-)?Date: (\d{1,2}) (\w{3}) (\d{4}) (\d\d):(\d\d):(\d\d) -0000\n", re.M)
MSGID = re.compile(rb"^(Resent-)?Message-ID: <(\d{14})\.(\d+)\.qmail@([^>]*)>\n", re.M)


def masked(data: bytes) -> bytes:
    data = DATE.sub(rb"\1Date: DATE\n", data)
    return MSGID.sub(rb"\1Message-ID: <ID@\4>\n", data)


@pytest.fixture
def inject(tmp_path: Path) -> Inject:
    return Inject(tmp_path)


# the header qmail-inject makes

def test_adds_date_messageid_from_cc(inject: Inject) -> None:
    before = time.time()
    r = inject(["-n"], b"Subject: hi\n\nbody\n", {"USER": "joe"})
    assert (r.rc, r.err) == (0, b"")
    assert masked(r.out) == (
        b"Return-Path: <joe@silverton.berkeley.edu>\n"
        b"Date: DATE\n"
        b"Message-ID: <ID@silverton.berkeley.edu>\n"
        b"From: joe@silverton.berkeley.edu\n"
        b"Cc: recipient list not shown: ;\n"
        b"Subject: hi\n\nbody\n")
    d = DATE.search(r.out)
    stamp = time.strptime(b" ".join(d.group(2, 3, 4)).decode() + " " + b":".join(d.group(5, 6, 7)).decode(),
                          "%d %b %Y %H:%M:%S")
    assert before - 1 <= calendar.timegm(stamp) <= time.time() + 1
    m = MSGID.search(r.out)
    assert m.group(2) == time.strftime("%Y%m%d%H%M%S", stamp).encode()
    assert int(m.group(3)) > 1


def test_keeps_fields_given(inject: Inject) -> None:
    msg = (b"Date: 1 Jan 2000 00:00:00 -0000\nMessage-ID: <x@y>\nFrom: ann@a.b\nTo: bob@c.d\n"
           b"X-Other:  kept   as is \nReceived: from x\n\nbody\n")
    r = inject(["-n"], msg, {"USER": "joe"})
    assert r.out == b"Return-Path: <joe@silverton.berkeley.edu>\n" + msg


def test_removes_bcc_return_path_content_length(inject: Inject) -> None:
    msg = (b"To: a@b.c\nBcc: secret@b.c\nReturn-Path: <rp@b.c>\nContent-Length: 12\n"
           b"Resent-Bcc: x@y.z\nSubject: s\n\nbody\n")
    r = inject(["-n"], msg, {"USER": "joe"})
    head = masked(r.out).split(b"\n\n")[0]
    assert head == (b"Return-Path: <rp@b.c>\nResent-Date: DATE\nResent-Message-ID: <ID@" + ME.encode()
                    + b">\nResent-From: joe@" + ME.encode() + b"\nResent-Cc: recipient list not shown: ;\n"
                    b"To: a@b.c\nSubject: s")


def test_resent_message(inject: Inject) -> None:
    msg = b"From: ann@a.b\nTo: bob@c.d\nResent-To: carl@e.f\n\nbody\n"
    body, env = inject.queued([], msg, {"USER": "joe"})
    assert masked(body) == (b"Resent-Date: DATE\nResent-Message-ID: <ID@silverton.berkeley.edu>\n"
                            b"Resent-From: joe@silverton.berkeley.edu\n" + msg)
    assert env == ["joe@silverton.berkeley.edu", "carl@e.f"]
    # resent fields already there are not added again, and no Resent-Cc with Resent-Cc
    msg = b"Resent-Date: x\nResent-Message-ID: <y>\nResent-From: z@q.r\nResent-Cc: c@d.e\n\n"
    body, env = inject.queued([], msg, {"USER": "joe"})
    assert body == msg and env == ["joe@silverton.berkeley.edu", "c@d.e"]


@pytest.mark.parametrize("field", [b"Resent-Sender: a@b.c", b"Resent-Reply-To: a@b.c",
                                   b"Resent-Date: x", b"Resent-Message-ID: <x>"])
def test_any_resent_field_makes_it_resent(inject: Inject, field: bytes) -> None:
    r = inject(["-n", "x@y.z"], field + b"\nTo: a@b.c\n\n")
    assert b"Resent-From: anonymous@" in r.out and b"\nDate:" not in masked(r.out)


def test_mbox_line_and_continuations(inject: Inject) -> None:
    msg = b"From joe Thu Jan  1 00:00:00 1970\nTo: a,\n b,\n\tc\nSubject: one\n  two\n\nbody\n"
    r = inject(["-n"], msg, {"QMAILUSER": "u"})
    head = masked(r.out).split(b"\n\n")[0]
    assert head.endswith(b"From: u@silverton.berkeley.edu\n"
                         b"MBOX-Line: From joe Thu Jan  1 00:00:00 1970\n"
                         b"To: a@silverton.berkeley.edu, b@silverton.berkeley.edu,\n"
                         b"  c@silverton.berkeley.edu\n"
                         b"Subject: one\n  two")


# address rewriting

REWRITES = [
    (b"djb", b"djb@silverton.berkeley.edu"),
    (b"djb@silverton", b"djb@silverton.berkeley.edu"),
    (b"eric@mammoth.cs+", b"eric@mammoth.cs.berkeley.edu"),
    (b"eric@mammoth+", b"eric@mammoth.berkeley.edu"),
    (b"djb@[128.32.183.163]", b"djb@[128.32.183.163]"),
    (b"box@[]", b"box@[]"),
    (b"joe@example.com.", b"joe@example.com"),
    (b"joe@host.", b"joe@host.berkeley.edu"),
    (b"joe@", b"joe@silverton.berkeley.edu"),
    (b"<@a.b,@c.d:joe@e.f>", b"<joe@e.f>"),
    (b"<@a.b>", b"<>"),
    (b"<>", b"<>"),
    (b'"a b"@c.d', b'"a b"@c.d'),
    (b"Joe Q <joe>", b"Joe Q <joe@silverton.berkeley.edu>"),
    (b"joe (Joe (the) Q)", b"joe@silverton.berkeley.edu (Joe the Q)"),
    (b"djb fred", b"djb@silverton.berkeley.edu, fred@silverton.berkeley.edu"),
    (b"friends: a, b;, c@d.e", b"friends: a@silverton.berkeley.edu, b@silverton.berkeley.edu;, c@d.e"),
    (b"J\xf6rg <j@x.y>", b'"J\xf6rg" <j@x.y>'),
    (b"a\\ b@c.d", b"a b@c.d"),
    (b"x)y@c.d", b'"x\\)y"@c.d'),
    (b"", b""),
]


@pytest.mark.parametrize("given,expected", REWRITES)
def test_rewrites_addresses(inject: Inject, given: bytes, expected: bytes) -> None:
    r = inject(["-n"], b"To: " + given + b"\n\n", {"USER": "u"})
    assert (r.rc, r.err) == (0, b"")
    assert r.out.split(b"From: u@silverton.berkeley.edu\n")[1] == b"To:" + (b" " if given else b"") + expected + b"\n\n"


@pytest.mark.parametrize("name", [b"From", b"Sender", b"Reply-To", b"Return-Receipt-To", b"Errors-To",
                                  b"Cc", b"Apparently-To", b"Resent-From", b"Resent-Sender",
                                  b"Resent-Reply-To", b"Resent-To", b"Resent-Cc", b"fRoM"])
def test_rewritten_fields(inject: Inject, name: bytes) -> None:
    r = inject(["-n", "x@y.z"], name + b"\t: a, b@c\n\n")
    assert name + b": a@silverton.berkeley.edu, b@c.berkeley.edu\n" in r.out


def test_other_fields_untouched(inject: Inject) -> None:
    msg = b"X-To: a, b\nMail-Followup-To: c\nDelivered-To: d\n\n"
    r = inject(["-n", "x@y.z"], msg)
    assert r.out.endswith(msg)


def test_folds_long_lists_at_80(inject: Inject) -> None:
    to = b", ".join(b"user%02d@example.com" % i for i in range(1, 9))
    r = inject(["-n"], b"To: " + to + b"\n\n")
    assert r.out.endswith(b"To: user01@example.com, user02@example.com, user03@example.com,\n"
                          b"  user04@example.com, user05@example.com, user06@example.com,\n"
                          b"  user07@example.com, user08@example.com\n\n")


def test_fold_boundary(inject: Inject) -> None:
    # a line is joined while it is at most 80 bytes counting the pending ",\n " break
    a1, a2 = b"a" * 29 + b"@b.com", b"c" * 30 + b"@d.com"
    r = inject(["-n"], b"To: " + a1 + b", " + a2 + b", e@f.g\n\n")
    assert r.out.endswith(b"To: " + a1 + b", " + a2 + b",\n  e@f.g\n\n")
    assert len(r.out.split(b"\n")[-4]) == 78
    a2 = b"c" + a2
    r = inject(["-n"], b"To: " + a1 + b", " + a2 + b", e@f.g\n\n")
    assert r.out.endswith(b"To: " + a1 + b",\n  " + a2 + b", e@f.g\n\n")


def test_defaulthost_and_domains(inject: Inject) -> None:
    inject.control("defaulthost", "mammoth")
    r = inject(["-n"], b"To: a, b@c+\n\n", {"USER": "u"})
    assert b"From: u@mammoth.berkeley.edu\nTo: a@mammoth.berkeley.edu, b@c.berkeley.edu\n" in r.out
    inject.control("defaulthost", "mammoth+")
    inject.control("plusdomain", "plus.dom")
    r = inject(["-n"], b"To: a, b@c+\n\n", {"USER": "u"})
    assert b"To: a@mammoth.plus.dom, b@c.plus.dom\n" in r.out
    env = {"USER": "u", "QMAILDEFAULTHOST": "h", "QMAILDEFAULTDOMAIN": "d.om",
           "QMAILPLUSDOMAIN": "p.om", "QMAILIDHOST": "id.om"}
    r = inject(["-n"], b"To: a, b@c+\n\n", env)
    assert b"To: a@h.d.om, b@c.p.om\n" in r.out
    assert b"\nMessage-ID: <ID@id.om>\n" in masked(r.out)


def test_controls_default_to_me(inject: Inject) -> None:
    inject.control("defaultdomain", None)
    inject.control("plusdomain", None)
    r = inject(["-n"], b"To: a@b, c@d+\n\n")
    assert b"To: a@b.silverton.berkeley.edu, c@d.silverton.berkeley.edu\n" in r.out
    assert b"Message-ID: <ID@silverton.berkeley.edu>" in masked(r.out)
    inject.control("idhost", "id.host")
    assert b"Message-ID: <ID@id.host>" in masked(inject(["-n"], b"").out)


def test_controls_without_me(inject: Inject) -> None:
    for name in ("me", "defaultdomain", "plusdomain"):
        inject.control(name, None)
    r = inject(["-n"], b"To: a, b@c+, d@e\n\n", {"USER": "u"})
    assert r.rc == 0
    assert b"To: a@defaulthost.defaultdomain, b@c.plusdomain, d@e.defaultdomain\n" in r.out
    assert b"Message-ID: <ID@idhost>" in masked(r.out)


# recipients and the envelope

MSG = b"To: t1, t2@x.y\nCc: c1\nBcc: b1\nApparently-To: ap\nSubject: s\n\nbody\n"
HDR = ["t2@x.y", "t1@silverton.berkeley.edu", "c1@silverton.berkeley.edu", "b1@silverton.berkeley.edu",
       "ap@silverton.berkeley.edu"]
ARGS = ["a1", "a2@q.r"]
AR = ["a1@silverton.berkeley.edu", "a2@q.r"]


@pytest.mark.parametrize("opts,args,expected", [
    ([], [], HDR),
    ([], ARGS, AR),
    (["-A"], ARGS, AR),
    (["-a"], ARGS, AR),
    (["-a"], [], []),
    (["-h"], ARGS, HDR),
    (["-h"], ["(bad"], HDR),
    (["-H"], ARGS, AR + HDR),
    (["-h", "-A"], ARGS, AR),
    (["-h", "-A"], [], HDR),
])
def test_recipient_strategies(inject: Inject, opts: list, args: list, expected: list) -> None:
    body, env = inject.queued(opts + args, MSG, {"USER": "joe"})
    assert env == ["joe@silverton.berkeley.edu", *expected]
    assert masked(body) == (b"Date: DATE\nMessage-ID: <ID@silverton.berkeley.edu>\n"
                            b"From: joe@silverton.berkeley.edu\n"
                            b"To: t1@silverton.berkeley.edu, t2@x.y\nCc: c1@silverton.berkeley.edu\n"
                            b"Apparently-To: ap@silverton.berkeley.edu\nSubject: s\n\nbody\n")
    assert (inject.qq.dir / "cwd").read_text().strip() == str(inject.home)


def test_no_recipients_is_queued_as_qmail_does(inject: Inject) -> None:
    body, env = inject.queued([], b"Subject: nobody\n\n", {"USER": "joe"})
    assert env == ["joe@silverton.berkeley.edu"]
    assert b"Cc: recipient list not shown: ;\n" in body


def test_recipient_arguments(inject: Inject) -> None:
    body, env = inject.queued(["joe smith@x", "<@r:z@q.r>", "pl@h+", "a@b@c", ""], b"", {"USER": "u"})
    # an argument is one address, not a list: no angle brackets taken off
    assert env[1:] == ["joe smith@x.berkeley.edu", "<@r:z@q.r>", "pl@h.berkeley.edu",
                       "a@b@c.berkeley.edu", ""]
    (inject.qq.dir / "env").unlink()
    r = inject(["a@(b"], b"")
    assert (r.rc, r.out, r.err) == (100, b"", b"qmail-inject: fatal: unable to parse address: a@(b\n")
    assert not inject.qq.called
    r = inject(["ok@x.y", "a@)b"], b"")
    assert (r.rc, r.err) == (100, b"qmail-inject: fatal: unable to parse address: a@)b\n")
    # a ) inside an atom is no error
    assert inject.queued(["a@b)"], b"")[1][1:] == ["a@b).berkeley.edu"]


def test_sender(inject: Inject) -> None:
    msg = b"Return-Path: <rp@bounce>\nTo: a@b.c\n\n"
    assert inject.queued([], msg, {"USER": "u"})[1][0] == "rp@bounce.berkeley.edu"
    assert inject.queued(["-f", "ff"], msg)[1][0] == "ff@silverton.berkeley.edu"
    assert inject.queued(["-fa@b", "-fc d@e.f"], msg)[1][0] == "c d@e.f"
    assert inject.queued(["-f", ""], msg)[1][0] == ""
    assert inject.queued([], b"Return-Path: <>\n\n")[1][0] == ""
    # the rightmost of several addresses is the first seen
    assert inject.queued([], b"Return-Path: a@b.c, d@e.f\n\n")[1][0] == "d@e.f"
    r = inject(["-n", "-f", ""], b"")
    assert r.out.startswith(b"Return-Path: <>\n")
    r = inject(["-n", "-f", "a b@c.d"], b"")
    assert r.out.startswith(b'Return-Path: <"a b"@c.d>\n')
    r = inject(["-f", "a@(b"], b"")
    assert (r.rc, r.err) == (100, b"qmail-inject: fatal: unable to parse this line:\na@(b\n")


# the environment

@pytest.mark.parametrize("env,user", [
    ({"QMAILUSER": "q", "MAILUSER": "m", "USER": "u", "LOGNAME": "l"}, b"q"),
    ({"MAILUSER": "m", "USER": "u", "LOGNAME": "l"}, b"m"),
    ({"USER": "u", "LOGNAME": "l"}, b"u"),
    ({"LOGNAME": "l"}, b"l"),
    ({}, b"anonymous"),
    ({"USER": "a b"}, b'"a b"'),
])
def test_user(inject: Inject, env: dict, user: bytes) -> None:
    r = inject(["-n"], b"", env)
    assert b"\nFrom: " + user + b"@silverton.berkeley.edu\n" in r.out


def test_host_name_and_style(inject: Inject) -> None:
    env = {"USER": "u", "QMAILHOST": "qh", "MAILHOST": "mh.x", "QMAILNAME": "Q N", "MAILNAME": "M",
           "NAME": "N"}
    r = inject(["-n"], b"", env)
    assert b'\nFrom: "Q N" <u@qh.berkeley.edu>\n' in r.out
    assert r.out.startswith(b"Return-Path: <u@qh.berkeley.edu>\n")
    del env["QMAILHOST"], env["QMAILNAME"]
    assert b'\nFrom: "M" <u@mh.x>\n' in inject(["-n"], b"", env).out
    del env["MAILNAME"]
    env["QMAILINJECT"] = "c"
    assert b"\nFrom: u@mh.x (N)\n" in inject(["-n"], b"", env).out
    env["NAME"] = 'Jo "x" (y)'
    del env["QMAILINJECT"]
    assert b'\nFrom: "Jo \\"x\\" \\(y\\)" <u@mh.x>\n' in inject(["-n"], b"", env).out


def test_envelope_sender_variables(inject: Inject) -> None:
    env = {"USER": "u", "QMAILHOST": "h.x", "QMAILSUSER": "bounces", "QMAILSHOST": "b.y"}
    body, envl = inject.queued(["r@s.t"], b"", env)
    assert envl[0] == "bounces@b.y" and b"\nFrom: u@h.x\n" in body
    del env["QMAILSHOST"]
    assert inject.queued(["r@s.t"], b"", env)[1][0] == "bounces@h.x"


def test_qmailinject_flags(inject: Inject) -> None:
    msg = b"From: f@g.h\nMessage-ID: <old@id>\nReturn-Path: <rp@x.y>\nTo: t@u.v\n\n"
    body, env = inject.queued([], msg, {"USER": "u", "QMAILINJECT": "sfi"})
    assert env == ["u@silverton.berkeley.edu", "t@u.v"]
    assert b"f@g.h" not in body and b"old@id" not in body
    assert b"\nFrom: u@silverton.berkeley.edu\n" in body and b"Message-ID: <ID@" in masked(body)
    # r: per-recipient VERP on the sender, from the default and from Return-Path
    assert inject.queued([], msg, {"USER": "u", "QMAILINJECT": "r"})[1][0] == "rp@x.y-@[]"
    assert inject.queued(["a@b.c"], b"", {"USER": "u", "QMAILINJECT": "r"})[1][0] \
        == "u-@silverton.berkeley.edu-@[]"
    assert inject.queued(["-f", "s@t.u", "a@b.c"], b"", {"QMAILINJECT": "r"})[1][0] == "s@t.u"
    # m: per-message VERP, the time and the pid
    before = int(time.time())
    sender = inject.queued(["a@b.c"], b"", {"USER": "u", "QMAILINJECT": "mr"})[1][0]
    m = re.fullmatch(r"u-(\d+)\.(\d+)-@silverton\.berkeley\.edu-@\[\]", sender)
    assert m and before <= int(m.group(1)) <= time.time()
    # letters it does not know are ignored
    assert inject.queued(["a@b.c"], b"", {"USER": "u", "QMAILINJECT": "xyz"})[1][0] \
        == "u@silverton.berkeley.edu"


def test_mail_followup_to(inject: Inject, tmp_path: Path) -> None:
    mft = tmp_path / "lists"
    mft.write_text("# my lists\n\nList@Example.COM  \n")
    msg = b"To: a@b.c, list@example.com\nCc: d@e.f\n\n"
    r = inject(["-n"], msg, {"QMAILMFTFILE": "lists"}, cwd=tmp_path)
    assert masked(r.out).split(b"\n\n")[0].endswith(
        b"Mail-Followup-To: d@e.f,\n  a@b.c,\n  list@example.com\nTo: a@b.c, list@example.com\nCc: d@e.f")
    # none when given, when no list is among the recipients, for resent messages, without a file
    for other in (b"Mail-Followup-To: x@y.z\n" + msg, b"To: a@b.c\n\n", b"Resent-To: x@y.z\n" + msg):
        assert b"Mail-Followup-To: d@e.f" not in inject(["-n"], other, {"QMAILMFTFILE": str(mft)}).out
    assert b"Mail-Followup-To" not in inject(["-n"], msg, {"QMAILMFTFILE": str(tmp_path / "no")}).out
    r = inject(["-n"], msg, {"QMAILMFTFILE": str(tmp_path)})
    assert (r.rc, r.out, r.err) == (111, b"", b"qmail-inject: fatal: read error\n")


def test_qmailqueue(inject: Inject, tmp_path: Path) -> None:
    other = tmp_path / "other-qq"
    other.write_text('#!/bin/sh\ncat > "$QQ_DIR/other"; cat <&1 >/dev/null\n')
    other.chmod(0o755)
    assert inject(["a@b.c"], b"x: y\n", {"QMAILQUEUE": str(other)}).rc == 0
    assert (tmp_path / "qq" / "other").read_bytes().endswith(b"x: y\n") and not inject.qq.called


# the message as read

@pytest.mark.parametrize("given,expected", [
    (b"Subject: s\n\nno final newline", b"Subject: s\n\nno final newline\n"),
    (b"Subject: s", b"Subject: s\n"),
    (b"Subject: s\n", b"Subject: s\n"),
    (b"Subject: s\n\n", b"Subject: s\n\n"),
    (b"", b""),
    (b"no header here\nsecond\n", b"\nno header here\nsecond\n"),
    (b"\nbody only\n", b"\nbody only\n"),
    (b" leading space: x\n", b"\n leading space: x\n"),
    (b"Sub ject: s\n", b"\nSub ject: s\n"),
    (b"Subj\xe9ct: s\n", b"\nSubj\xe9ct: s\n"),
    (b"A: 1\nnot a field\nB: 2\n", b"A: 1\n\nnot a field\nB: 2\n"),
    (b"X: \xff\0\r\n\nbin\0\xff\r\n", b"X: \xff\0\r\n\nbin\0\xff\r\n"),
])
def test_header_and_body(inject: Inject, given: bytes, expected: bytes) -> None:
    r = inject(["-n", "a@b.c"], given, {"USER": "u"})
    assert (r.rc, r.err) == (0, b"")
    assert r.out.split(b"Cc: recipient list not shown: ;\n", 1)[1] == expected


def test_big_message(inject: Inject) -> None:
    body = b"".join(b"line %d " % i + b"x" * 70 + b"\n" for i in range(40000))
    subject = b"Subject: " + b"s" * 300000 + b"\n"
    to = b"To: " + b", ".join(b"u%d" % i for i in range(5000)) + b"\n"
    sent, env = inject.queued([], subject + to + b"\n" + body, {"USER": "u"})
    assert subject in sent and sent.endswith(b"\n\n" + body)
    assert len(env) == 5001 and env[1] == "u4999@silverton.berkeley.edu"
    to_out = sent.split(b"\nTo: ")[1].split(b"\n\n")[0]
    assert all(len(line) <= 80 for line in to_out.split(b"\n"))


def test_unparsable_field(inject: Inject) -> None:
    for field in (b"To: (unbalanced\n", b"Cc: a: b\n", b"From: a>\n", b"Reply-To: x;;\n",
                  b"To: a,\n  (b\n"):
        r = inject(["a@b.c"], b"Subject: s\n" + field + b"\nbody\n")
        assert (r.rc, r.out, r.err) == (100, b"", b"qmail-inject: fatal: unable to parse this line:\n" + field)
    assert not inject.qq.called


def test_read_error(inject: Inject, tmp_path: Path) -> None:
    fd = os.open(tmp_path / "w", os.O_WRONLY | os.O_CREAT)  # not open for reading
    try:
        r = inject(["a@b.c"], stdin=fd)
    finally:
        os.close(fd)
    assert (r.rc, r.out, r.err) == (111, b"", b"qmail-inject: fatal: read error\n")


def test_stdout_gone(inject: Inject, tmp_path: Path) -> None:
    (tmp_path / "big").write_bytes(b"Subject: s\n\n" + b"x" * 100 + b"\n" * 100000)
    env = {"PATH": os.environ.get("PATH", ""), **inject.qq.env}
    p = subprocess.run(["/bin/bash", "-c", f'{ours("qmail-inject")} -n < big | head -c1 >/dev/null; '
                        'echo "${PIPESTATUS[0]}"'], cwd=tmp_path, env=env, capture_output=True, timeout=60)
    assert (p.stdout, p.stderr) == (b"0\n", b"")


# options and failures

def test_bad_options(inject: Inject) -> None:
    r = inject(["-x", "a@b.c"], b"")
    assert (r.rc, r.out, r.err) == (100, b"", b"qmail-inject: illegal option -- x\n")
    r = inject(["-f"], b"")
    assert (r.rc, r.err) == (100, b"qmail-inject: option requires an argument -- f\n")
    assert not inject.qq.called
    # options end at the first argument and at --
    assert inject.queued(["a@b.c", "-x"], b"")[1][1:] == ["a@b.c", "-x@silverton.berkeley.edu"]
    assert inject.queued(["--", "-n"], b"")[1][1:] == ["-n@silverton.berkeley.edu"]
    # -N after -n queues
    assert inject.queued(["-n", "-N", "q@r.s"], b"")[1][1:] == ["q@r.s"]


@pytest.mark.parametrize("code,rc,text", [
    (11, 100, b"envelope address too long for qq (#5.1.3)"),
    (31, 100, b"mail server permanently rejected message (#5.3.0)"),
    (25, 100, b"qq permanent problem (#5.3.0)"),
    (53, 111, b"qq write error or disk full (#4.3.0)"),
    (55, 111, b"qq unable to read configuration (#4.3.0)"),
    (81, 111, b"qq internal bug (#4.3.0)"),
    (99, 111, b"qq temporary problem (#4.3.0)"),
])
def test_queue_refuses(inject: Inject, code: int, rc: int, text: bytes) -> None:
    inject.qq.exit_with(code)
    r = inject(["a@b.c"], b"Subject: s\n\nbody\n")
    assert (r.rc, r.out, r.err) == (rc, b"", b"qmail-inject: fatal: " + text + b"\n")


def test_queue_missing_or_broken(inject: Inject) -> None:
    qq = inject.home / "bin" / "qmail-queue"
    qq.write_text("#!/bin/sh\nkill -9 $$\n")
    r = inject(["a@b.c"], b"")
    assert (r.rc, r.err) == (111, b"qmail-inject: fatal: qq crashed (#4.3.0)\n")
    qq.write_text("#!/bin/sh\nexit 0\n")  # takes nothing: the message cannot be written
    r = inject(["a@b.c"], b"Subject: s\n\n" + b"x" * 1000000)
    assert (r.rc, r.err) == (111, b"qmail-inject: fatal: qq read error (#4.3.0)\n")
    qq.unlink()
    r = inject(["a@b.c"], b"")
    assert (r.rc, r.err) == (111, b"qmail-inject: fatal: unable to exec qq (#4.3.0)\n")


def test_controls_unreadable(inject: Inject) -> None:
    for name in ("me", "defaultdomain", "defaulthost", "plusdomain", "idhost"):
        path = inject.home / "control" / name
        saved = path.read_bytes() if path.exists() else None
        if path.exists():
            path.unlink()
        path.mkdir()
        r = inject(["-n", "a@b.c"], b"", {"QMAILDEFAULTDOMAIN": "x.y"})
        assert (r.rc, r.out, r.err) == (111, b"", b"qmail-inject: fatal: read error\n"), name
        path.rmdir()
        if saved is not None:
            path.write_bytes(saved)
    # the controls are read before the options are looked at
    (inject.home / "control" / "me").unlink()
    (inject.home / "control" / "me").mkdir()
    assert inject(["-x"], b"").err == b"qmail-inject: fatal: read error\n"


def test_control_unparsable(inject: Inject) -> None:
    inject.control("defaultdomain", "(bad")
    r = inject(["-n", "a@b.c"], b"")
    assert (r.rc, r.out, r.err) == (100, b"", b"qmail-inject: fatal: unable to parse this line:\n.(bad\n")
    r = inject(["-n", "a@b.c"], b"", {"QMAILDEFAULTHOST": "a]"})
    assert r.err == b"qmail-inject: fatal: unable to parse this line:\n.(bad\n"
    inject.control("defaultdomain", "ok.dom")
    r = inject(["-n", "a@b.c"], b"", {"QMAILDEFAULTHOST": "]a"})
    assert (r.rc, r.err) == (100, b"qmail-inject: fatal: unable to parse this line:\n@]a\n")


def test_no_qmail_home(inject: Inject, tmp_path: Path) -> None:
    r = inject(["-n", "a@b.c"], b"", {"QMAILHOME": str(tmp_path / "nowhere")})
    assert (r.rc, r.out, r.err) == (111, b"", b"qmail-inject: fatal: internal bug\n")
