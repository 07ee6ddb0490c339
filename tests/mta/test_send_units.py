"""qmail-send's pieces, unit by unit, against qmail-send.c and qsutil.c: recipient
rewriting (locals, virtualdomains, percenthack, envnoathost), the VERP sender,
stripvdomprepend, the retry schedule, the text a failure adds to a bounce, the
log's safe characters; and qmail-send's first log lines through MailSystem."""
from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from mta import send_bounce, send_deliver, send_log
from mta.send_rewrite import Controls, senderadd
from tests.helpers import ours
from tests.mta.mailsys import MailSystem


@pytest.fixture
def controls(tmp_path: Path, monkeypatch):
    """``controls(name=text, ...)``: a Controls read from a scratch control/."""
    home = tmp_path / "qmail"
    (home / "control").mkdir(parents=True)
    monkeypatch.setenv("QMAILHOME", str(home))

    def make(**files: str) -> Controls:
        files.setdefault("me", "me.example\n")
        for name, text in files.items():
            path = home / "control" / name
            if text is None:
                path.unlink(missing_ok=True)
            else:
                path.write_text(text)
        return Controls()
    return make


# -- rewrite ---------------------------------------------------------------------------

def test_locals_default_to_me(controls) -> None:
    ctl = controls()
    assert ctl.rewrite(b"joe@me.example") == (0, b"joe@me.example")
    assert ctl.rewrite(b"joe@elsewhere.org") == (1, b"joe@elsewhere.org")


def test_locals_are_case_insensitive_and_keep_the_address(controls) -> None:
    ctl = controls(locals="me.example\nOther.Example\n")
    assert ctl.rewrite(b"Joe@ME.Example") == (0, b"Joe@ME.Example")
    assert ctl.rewrite(b"joe@other.EXAMPLE") == (0, b"joe@other.EXAMPLE")
    # the domain is everything after the last @
    assert ctl.rewrite(b"a@me.example@far.org") == (1, b"a@me.example@far.org")
    assert ctl.rewrite(b"a@far.org@me.example") == (0, b"a@far.org@me.example")
    # no subdomain matching in locals
    assert ctl.rewrite(b"joe@sub.me.example") == (1, b"joe@sub.me.example")


def test_locals_skip_comments_and_blank_lines(controls) -> None:
    ctl = controls(locals="# me.example\n\nlocal.example\n")
    assert ctl.rewrite(b"a@local.example")[0] == 0
    assert ctl.rewrite(b"a@me.example")[0] == 1  # the file replaces me
    assert ctl.rewrite(b"a@# me.example")[0] == 1


VDOMS = ("virt.example:vu\n"
         ".sub.example:su\n"
         "joe@mixed.example:ju\n"
         "except.sub.example:\n"
         "Case.Example:CaseUser\n")


@pytest.mark.parametrize("recip, result", [
    (b"a@virt.example", (0, b"vu-a@virt.example")),
    (b"A@VIRT.Example", (0, b"vu-A@VIRT.Example")),  # matched without case, kept as given
    (b"a@case.example", (0, b"CaseUser-a@case.example")),  # the prepend keeps its case
    (b"a@x.sub.example", (0, b"su-a@x.sub.example")),
    (b"a@y.x.sub.example", (0, b"su-a@y.x.sub.example")),
    (b"a@sub.example", (1, b"a@sub.example")),  # .sub.example matches only below it
    (b"a@xsub.example", (1, b"a@xsub.example")),
    (b"a@sub.virt.example", (1, b"a@sub.virt.example")),  # a plain domain is exact
    (b"joe@mixed.example", (0, b"ju-joe@mixed.example")),  # user@domain entries
    (b"JOE@Mixed.Example", (0, b"ju-JOE@Mixed.Example")),
    (b"ann@mixed.example", (1, b"ann@mixed.example")),
    (b"a@except.sub.example", (1, b"a@except.sub.example")),  # empty prepend: exception
    (b"a@deep.except.sub.example", (0, b"su-a@deep.except.sub.example")),
    (b"a@far.org", (1, b"a@far.org")),
])
def test_virtualdomains(controls, recip: bytes, result: tuple[int, bytes]) -> None:
    ctl = controls(virtualdomains=VDOMS)
    assert ctl.rewrite(recip) == result


def test_virtualdomains_user_entry_beats_domain(controls) -> None:
    ctl = controls(virtualdomains="virt.example:vu\njoe@virt.example:special\n")
    assert ctl.rewrite(b"joe@virt.example") == (0, b"special-joe@virt.example")
    assert ctl.rewrite(b"ann@virt.example") == (0, b"vu-ann@virt.example")


def test_virtualdomains_longest_suffix_first(controls) -> None:
    ctl = controls(virtualdomains=".example:short\n.b.example:long\n")
    assert ctl.rewrite(b"u@a.b.example") == (0, b"long-u@a.b.example")
    assert ctl.rewrite(b"u@a.c.example") == (0, b"short-u@a.c.example")


def test_virtualdomains_wildcard_and_its_exception(controls) -> None:
    ctl = controls(virtualdomains=":catchall\nkeep.example:\n# comment:x\n")
    assert ctl.rewrite(b"u@far.org") == (0, b"catchall-u@far.org")
    assert ctl.rewrite(b"u@keep.example") == (1, b"u@keep.example")
    assert ctl.rewrite(b"u@me.example") == (0, b"u@me.example")  # locals first


def test_locals_beat_virtualdomains(controls) -> None:
    ctl = controls(locals="me.example\nboth.example\n", virtualdomains="both.example:bv\n")
    assert ctl.rewrite(b"a@both.example") == (0, b"a@both.example")


def test_later_line_wins(controls) -> None:
    ctl = controls(virtualdomains="dup.example:first\nDUP.example:second\n")
    assert ctl.rewrite(b"a@dup.example") == (0, b"second-a@dup.example")


def test_virtualdomains_lines_without_colon_are_ignored(controls) -> None:
    ctl = controls(virtualdomains="nocolon.example\nvirt.example:vu\n")
    assert ctl.rewrite(b"a@nocolon.example") == (1, b"a@nocolon.example")
    assert ctl.rewrite(b"a@virt.example") == (0, b"vu-a@virt.example")


@pytest.mark.parametrize("recip, result", [
    (b"u%far.example@me.example", (1, b"u@far.example")),
    (b"u%me.example@me.example", (0, b"u@me.example")),
    (b"u%far.example%mid.example@me.example", (1, b"u@far.example")),  # again and again
    (b"u%far.example%other.example@me.example", (1, b"u%far.example@other.example")),
    (b"u%far.example@other.example", (1, b"u%far.example@other.example")),
    (b"plain@me.example", (0, b"plain@me.example")),
    (b"u%virt.example@ME.EXAMPLE", (0, b"vu-u@virt.example")),  # then virtualdomains
])
def test_percenthack(controls, recip: bytes, result: tuple[int, bytes]) -> None:
    ctl = controls(percenthack="me.example\nmid.example\n", virtualdomains="virt.example:vu\n")
    assert ctl.rewrite(recip) == result


def test_envnoathost(controls) -> None:
    ctl = controls(envnoathost="noat.example\n")
    assert ctl.rewrite(b"joe") == (1, b"joe@noat.example")
    ctl = controls(envnoathost="me.example\n")
    assert ctl.rewrite(b"joe") == (0, b"joe@me.example")
    # without control/envnoathost: me
    ctl = controls(envnoathost=None)
    assert ctl.rewrite(b"joe") == (0, b"joe@me.example")
    # and the percent hack applies to it
    ctl = controls(envnoathost="noat.example\n", percenthack="noat.example\n")
    assert ctl.rewrite(b"u%far.example") == (1, b"u@far.example")


def test_envnoathost_without_me(controls) -> None:
    ctl = controls(me=None, locals="x.example\n")
    assert ctl.rewrite(b"joe") == (1, b"joe@envnoathost")


def test_controls_defaults(controls) -> None:
    ctl = controls(me="me.example\n")
    assert (ctl.lifetime, ctl.concurrency) == (604800, [10, 20])
    assert (ctl.bouncefrom, ctl.bouncehost) == (b"MAILER-DAEMON", b"me.example")
    assert ctl.doublebounceto == b"postmaster@me.example"
    ctl = controls(doublebounceto="dbl\n", doublebouncehost="dh.example\n",
                   bouncehost="bh.example\n", bouncefrom="bf\n", queuelifetime="100\n",
                   concurrencylocal="3\n", concurrencyremote="7\n")
    assert ctl.doublebounceto == b"dbl@dh.example"
    assert (ctl.bouncefrom, ctl.bouncehost, ctl.lifetime, ctl.concurrency) == (
        b"bf", b"bh.example", 100, [3, 7])


# -- the VERP sender, stripvdomprepend -------------------------------------------------

@pytest.mark.parametrize("sender, recip, result", [
    (b"owner-@host-@[]", b"box@rhost", b"owner-box=rhost@host"),
    (b"list-owner-@lists.example-@[]", b"Joe@Far.Example",
     b"list-owner-Joe=Far.Example@lists.example"),
    (b"a@b-@host-@[]", b"box@rhost", b"a@b-box=rhost@host"),  # the last @ before -@[]
    (b"owner-@host-@[]", b"nohost", b"owner-@host-@[]"),  # recipient without @
    (b"noat-@[]", b"box@rhost", b"noat-@[]"),  # no @ before -@[]
    (b"-@[]", b"box@rhost", b"-@[]"),
    (b"@-@[]", b"box@rhost", b"box=rhost@"),
    (b"owner@host", b"box@rhost", b"owner@host"),
    (b"owner-@host-@[]x", b"box@rhost", b"owner-@host-@[]x"),
    (b"", b"box@rhost", b""),
    (b"#@[]", b"box@rhost", b"#@[]"),
])
def test_senderadd(sender: bytes, recip: bytes, result: bytes) -> None:
    assert senderadd(sender, recip) == result


@pytest.mark.parametrize("recip, result", [
    (b"vu-a@virt.example", b"a@virt.example"),
    (b"vu-a@VIRT.example", b"a@VIRT.example"),
    (b"vu-a-b@virt.example", b"a-b@virt.example"),
    (b"other-a@virt.example", b"other-a@virt.example"),  # not its prepend
    (b"VU-a@virt.example", b"VU-a@virt.example"),  # the prepend compares with case
    (b"vua@virt.example", b"vua@virt.example"),  # no - after it
    (b"su-a@x.sub.example", b"a@x.sub.example"),
    (b"su-a@except.sub.example", b"su-a@except.sub.example"),  # exception: stop
    (b"ju-joe@mixed.example", b"ju-joe@mixed.example"),  # user@domain entries not used
    (b"noat", b"noat"),
    (b"a@far.org", b"a@far.org"),
])
def test_stripvdomprepend(controls, recip: bytes, result: bytes) -> None:
    ctl = controls(virtualdomains=VDOMS)
    assert ctl.stripvdomprepend(recip) == result


# -- the retry schedule ----------------------------------------------------------------

def squareroot(x: int) -> int:
    """qmail-send.c's squareroot(), bit by bit."""
    y = yy = 0
    for j in range(15, -1, -1):
        y21 = (y << (j + 1)) + (1 << (j + j))
        if y21 <= x - yy:
            y += 1 << j
            yy += y21
    return y


@pytest.mark.parametrize("birth, recent, c, result", [
    (1000, 1100, 0, 1000 + 20 ** 2),
    (1000, 1100, 1, 1000 + 30 ** 2),
    (1000, 1099, 0, 1000 + 19 ** 2),  # isqrt(99) == 9
    (5000, 5000, 0, 5100),
    (5000, 5000, 1, 5400),
    (2000, 1000, 0, 2100),  # born in the future: as if just born
    (2000, 1000, 1, 2400),
    (0, 10 ** 6, 1, 1020 ** 2),
    (1_700_000_000, 1_700_000_000 + 604800, 0, 1_700_000_000 + (777 + 10) ** 2),
])
def test_nextretry(birth: int, recent: int, c: int, result: int) -> None:
    assert send_deliver.nextretry(birth, recent, c) == result


def test_nextretry_matches_qmails_squareroot() -> None:
    rnd = random.Random(7)
    for _ in range(2000):
        birth = rnd.randrange(1_600_000_000, 1_800_000_000)
        age = rnd.choice([rnd.randrange(0, 100), rnd.randrange(0, 10 ** 7),
                          rnd.randrange(0, 2 ** 32 - 1)])
        for c, skip in ((0, 10), (1, 20)):
            n = squareroot(age) + skip
            assert send_deliver.nextretry(birth, birth + age, c) == birth + n * n


# -- bounce text -----------------------------------------------------------------------

@pytest.fixture
def bouncedir(controls, tmp_path: Path, monkeypatch):
    queue = tmp_path / "queue"
    (queue / "bounce").mkdir(parents=True)
    monkeypatch.chdir(queue)
    return queue / "bounce"


@pytest.mark.parametrize("recip, report, text", [
    (b"a@far.org", b"Sorry.\n", b"<a@far.org>:\nSorry.\n\n"),
    (b"a@far.org", b"No final newline", b"<a@far.org>:\nNo final newline\n\n"),
    (b"a@far.org", b"", b"<a@far.org>:\n\n"),
    (b"a@far.org", b"one\n\ntwo\n", b"<a@far.org>:\none\n/two\n\n"),
    (b"a@far.org", b"one\n\n\n\ntwo\n", b"<a@far.org>:\none\n///two\n\n"),
    (b"a@far.org", b"\nleading\n", b"<a@far.org>:\n/leading\n\n"),
    # qmail leaves the report's own last newline alone (the scan starts before it)
    (b"a@far.org", b"trailing\n\n", b"<a@far.org>:\ntrailing\n\n\n"),
    (b"x\ny@far.org", b"r\n", b"<x_y@far.org>:\nr\n\n"),
    (b"vu-a@virt.example", b"r\n", b"<a@virt.example>:\nr\n\n"),  # as the sender knew it
])
def test_addbounce_text(controls, bouncedir: Path, recip: bytes, report: bytes,
                        text: bytes) -> None:
    ctl = controls(virtualdomains="virt.example:vu\n")
    send_bounce.addbounce(ctl, 42, recip, report)
    path = bouncedir / "42"
    assert path.read_bytes() == text
    assert path.stat().st_mode & 0o777 == 0o600


def test_addbounce_appends(controls, bouncedir: Path) -> None:
    ctl = controls()
    send_bounce.addbounce(ctl, 7, b"a@far.org", b"first\n")
    send_bounce.addbounce(ctl, 7, b"b@far.org", b"second")
    assert (bouncedir / "7").read_bytes() == b"<a@far.org>:\nfirst\n\n<b@far.org>:\nsecond\n\n"


# -- the log ---------------------------------------------------------------------------

def test_logsafe() -> None:
    assert send_log.safe(b"a b%c\nd\te\x7f\x80~!") == b"a_b_c/d_e__~!"
    assert send_log.safe(b"did 1+0+0\n") == b"did_1+0+0/"
    assert send_log.safe(bytes(range(256))) == (
        b"_" * 10 + b"/" + b"_" * 22 + b"!\"#$_" + bytes(range(38, 127)) + b"_" * 129)


def test_log_writes_to_fd0() -> None:
    """qmail-send logs on fd 0 (qmail-start makes it the log's pipe)."""
    r, w = os.pipe()
    code = "from mta.send_log import log; log('status: ', b'x', '\\n'); log(b'end\\n')"
    try:
        p = subprocess.run([sys.executable, "-c", code], stdin=w, capture_output=True,
                           timeout=30)
    finally:
        os.close(w)
    with os.fdopen(r, "rb") as f:
        assert f.read() == b"status: x\nend\n"
    assert (p.returncode, p.stdout, p.stderr) == (0, b"", b"")


# -- qmail-send's log, for real --------------------------------------------------------

@pytest.fixture
def sys_():
    s = MailSystem()
    yield s
    s.close()


def test_first_log_line_is_the_status(sys_: MailSystem) -> None:
    sys_.start()
    assert sys_.logtext().splitlines()[0] == "status: local 0/10 remote 0/20"
    sys_.stop()
    assert sys_.logtext().endswith("status: exiting\n")


def test_concurrency_is_capped_by_the_spawners(sys_: MailSystem) -> None:
    sys_.control("concurrencylocal", "500")
    sys_.control("concurrencyremote", "5")
    sys_.start()
    assert sys_.logtext().splitlines()[0] == "status: local 0/120 remote 0/5"


def start_fails(sys_: MailSystem) -> subprocess.CompletedProcess:
    return subprocess.run([ours("qmail-start"), "./Maildir/"], env=sys_.env, cwd="/",
                          stdin=subprocess.DEVNULL, capture_output=True, timeout=30)


def test_no_mutex_cannot_start(sys_: MailSystem) -> None:
    (sys_.queue / "lock" / "sendmutex").unlink()
    p = start_fails(sys_)
    assert p.returncode == 111
    assert p.stdout == b"alert: cannot start: unable to open mutex\n"


def test_no_queue_cannot_start(sys_: MailSystem) -> None:
    os.rename(sys_.queue, sys_.base / "queue.away")
    p = start_fails(sys_)
    assert p.returncode == 111
    assert b"alert: cannot start: unable to switch to queue directory\n" in p.stdout
