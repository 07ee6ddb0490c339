"""qmail-start, qmail-send, qmail-lspawn, qmail-rspawn, qmail-clean and the queue
service together: messages from qmail-queue to Maildirs, bounces, the log."""
from __future__ import annotations

import os
import re
import signal

import pytest

from tests.helpers import wait_for
from tests.mta.mailsys import MailSystem, wait_messages
from tests.mta.smtpsink import Sink

ROOT = os.geteuid() == 0
MSG = b"Subject: hello\n\nbody line\n"


@pytest.fixture
def sys_():
    s = MailSystem()
    yield s
    s.close()


def test_local_delivery_and_log(sys_: MailSystem) -> None:
    sys_.start()
    box = sys_.box
    r = sys_.inject(f"{box.name}@test.example", [f"{box.name}@test.example"], MSG)
    assert r.returncode == 0, r.stderr
    [msg] = wait_messages(box, 1)
    assert msg.startswith(f"Return-Path: <{box.name}@test.example>\n"
                          f"Delivered-To: {box.name}@test.example\n".encode())
    assert re.search(rb"\nReceived: \(qmail \d+ invoked by uid \d+\); \d+ \w{3} \d{4} "
                     rb"\d\d:\d\d:\d\d -0000\n" + re.escape(MSG) + rb"$", msg)
    sys_.wait_empty()
    log = sys_.wait_log("end msg")
    lines = [re.sub(r"\d+", "N", line.replace(box.name, "BOX")) for line in log.splitlines()]
    assert lines == [
        "status: local N/N remote N/N",
        "new msg N",
        "info msg N: bytes N from <BOX@test.example> qp N uid N",
        "starting delivery N: msg N to local BOX@test.example",
        "status: local N/N remote N/N",
        "delivery N: success: did_N+N+N/",
        "status: local N/N remote N/N",
        "end msg N",
    ]
    # the mailbox belongs to the recipient: delivered as its uid
    assert os.stat(box.new()[0]).st_uid == box.uid
    sys_.stop()
    assert sys_.logtext().endswith("status: exiting\n")


def test_unknown_user_bounces(sys_: MailSystem) -> None:
    sys_.control("bouncehost", "bounce.example")
    sys_.start()
    box = sys_.box
    sender = f"{box.name}@test.example"
    assert sys_.inject(sender, ["nosuch@test.example"], MSG).returncode == 0
    [bounce] = wait_messages(box, 1)
    head, _, body = bounce.partition(b"\n\n")
    assert b"\nFrom: MAILER-DAEMON@bounce.example\n" in head + b"\n"
    assert f"\nTo: {sender}\n".encode() in head + b"\n"
    assert head.startswith(b"Return-Path: <>\n")
    assert b"Subject: failure notice" in head
    assert body.startswith(
        b"Hi. This is the qmail-send program at bounce.example.\n"
        b"I'm afraid I wasn't able to deliver your message to the following addresses.\n"
        b"This is a permanent error; I've given up. Sorry it didn't work out.\n\n"
        b"<nosuch@test.example>:\n"
        b"Sorry, no mailbox here by that name. (#5.1.1)\n\n"
        b"--- Below this line is a copy of the message.\n\n"
        + f"Return-Path: <{sender}>\nReceived: (qmail ".encode())
    assert body.endswith(MSG)
    log = sys_.wait_log("end msg", 2)
    assert re.search(r"delivery \d+: failure: Sorry,_no_mailbox_here_by_that_name._\(#5.1.1\)/", log)
    assert re.search(r"bounce msg \d+ qp \d+", log)
    assert re.search(r"info msg \d+: bytes \d+ from <> qp \d+ uid \d+", log)
    sys_.wait_empty()


def test_double_and_triple_bounce(sys_: MailSystem) -> None:
    box = sys_.box
    sys_.control("doublebounceto", box.name)
    sys_.start()
    # a bounce (sender <>) that fails: the double bounce goes to doublebounceto
    assert sys_.inject("", ["nosuch@test.example"], MSG).returncode == 0
    [double] = wait_messages(box, 1)
    assert b"\nTo: " + f"{box.name}@test.example".encode() + b"\n" in double
    assert (b"I tried to deliver a bounce message to this address, but the bounce bounced!\n\n"
            b"<nosuch@test.example>:\n") in double
    assert b"--- Below this line is the original bounce.\n\nReturn-Path: <>\n" in double
    # a double bounce (sender #@[]) that fails is dropped
    assert sys_.inject("#@[]", ["nosuch@test.example"], MSG).returncode == 0
    log = sys_.wait_log("triple bounce: discarding bounce/")
    sys_.wait_empty()
    assert len(box.new()) == 1
    assert re.search(r"triple bounce: discarding bounce/\d+\n", log)


def test_queue_service_records_caller(sys_: MailSystem) -> None:
    """A caller who cannot write the queue goes through qmail-queued: its uid is recorded."""
    sys_.start()
    box = sys_.box
    user = "nobody" if ROOT else None
    r = sys_.inject(f"x@test.example", [f"{box.name}@test.example"], MSG, user=user)
    assert r.returncode == 0
    [msg] = wait_messages(box, 1)
    uid = 65534 if ROOT else os.getuid()
    assert re.search(rb"Received: \(qmail \d+ invoked by uid %d\)" % uid, msg)
    log = sys_.wait_log("end msg")
    assert re.search(r"info msg \d+: bytes \d+ from <x@test.example> qp \d+ uid %d" % uid, log)


@pytest.mark.skipif(not ROOT, reason="qmail's accounts exist only when the tests run as root")
@pytest.mark.parametrize("user, how", [("alias", "by alias"), ("qmaild", "from network"),
                                       ("qmails", "for bounce")])
def test_received_names_qmail_accounts(sys_: MailSystem, user: str, how: str) -> None:
    sys_.start()
    box = sys_.box
    assert sys_.inject("x@test.example", [f"{box.name}@test.example"], MSG,
                       user=user).returncode == 0
    [msg] = wait_messages(box, 1)
    assert re.search(rb"\nReceived: \(qmail \d+ invoked " + how.encode() + rb"\); ", msg)


def test_remote_delivery_through_smtproutes(sys_: MailSystem) -> None:
    sink = Sink()
    try:
        sys_.control("smtproutes", f"remote.example:127.0.0.1:{sink.port}")
        sys_.start()
        assert sys_.inject("a@test.example", ["bob@remote.example"], MSG).returncode == 0
        log = sys_.wait_log("end msg")
        assert re.search(r"starting delivery \d+: msg \d+ to remote bob@remote.example", log)
        assert re.search(r"delivery \d+: success: 127.0.0.1_accepted_message./Remote_host_said:"
                         r"_250_ok_1234567890_qp_4242/", log)
        s = sink.sessions[0]
        assert s.commands[1:3] == [b"MAIL FROM:<a@test.example>\r\n", b"RCPT TO:<bob@remote.example>\r\n"]
    finally:
        sink.close()


def test_remote_deferral_then_alrm_retries(sys_: MailSystem) -> None:
    sink = Sink(rcpt=b"450 try later\r\n")
    try:
        sys_.control("smtproutes", f"remote.example:127.0.0.1:{sink.port}")
        sys_.start()
        assert sys_.inject("a@test.example", ["bob@remote.example"], MSG).returncode == 0
        log = sys_.wait_log("deferral:")
        assert re.search(r"delivery \d+: deferral: 127.0.0.1_does_not_like_recipient./"
                         r"Remote_host_said:_450_try_later/Giving_up_on_127.0.0.1./", log)
        sink.script["rcpt"] = b"250 ok\r\n"
        sys_.signal(signal.SIGALRM)  # retry now
        sys_.wait_log("success:")
        sys_.wait_empty()
    finally:
        sink.close()


def test_remote_permanent_failure_bounces(sys_: MailSystem) -> None:
    sink = Sink(rcpt=b"550 no such user\r\n")
    box = sys_.box
    try:
        sys_.control("smtproutes", f"remote.example:127.0.0.1:{sink.port}")
        sys_.start()
        assert sys_.inject(f"{box.name}@test.example", ["bob@remote.example"], MSG).returncode == 0
        [bounce] = wait_messages(box, 1)
        assert (b"<bob@remote.example>:\n127.0.0.1 does not like recipient.\n"
                b"Remote host said: 550 no such user\nGiving up on 127.0.0.1.\n") in bounce
    finally:
        sink.close()


def test_virtualdomains_and_percenthack(sys_: MailSystem) -> None:
    box = sys_.box
    sys_.control("virtualdomains", f"virt.example:{box.name}\n")
    sys_.control("percenthack", "test.example\n")
    (box.home / ".qmail-default").write_text("./Maildir/\n")
    sys_.start()
    assert sys_.inject("a@test.example", ["someone@virt.example"], MSG).returncode == 0
    [msg] = wait_messages(box, 1)
    assert f"Delivered-To: {box.name}-someone@virt.example\n".encode() in msg
    # percenthack: u%virt.example@test.example becomes u@virt.example
    assert sys_.inject("a@test.example", ["other%virt.example@test.example"], MSG).returncode == 0
    msgs = wait_messages(box, 2)
    assert any(f"Delivered-To: {box.name}-other@virt.example\n".encode() in m for m in msgs)


def test_bounce_strips_virtualdomain_prefix(sys_: MailSystem) -> None:
    box = sys_.box
    sys_.control("virtualdomains", f"virt.example:{box.name}\n")
    sys_.start()  # no .qmail-default: the virtual user has no mailbox
    assert sys_.inject(f"{box.name}@test.example", ["gone@virt.example"], MSG).returncode == 0
    [bounce] = wait_messages(box, 1)
    assert b"\n<gone@virt.example>:\nSorry, no mailbox here by that name. (#5.1.1)\n" in bounce


def test_hup_rereads_locals(sys_: MailSystem) -> None:
    box = sys_.box
    sink = Sink()
    try:
        sys_.control("smtproutes", f"later.example:127.0.0.1:{sink.port}")
        sys_.start()
        sys_.control("locals", "test.example\nlater.example\n")
        sys_.signal(signal.SIGHUP)
        wait_for(lambda: True)
        # give qmail-send a moment to take the signal before the message arrives
        import time
        time.sleep(0.3)
        assert sys_.inject("a@test.example", [f"{box.name}@later.example"], MSG).returncode == 0
        [msg] = wait_messages(box, 1)
        assert f"Delivered-To: {box.name}@later.example\n".encode() in msg
        assert not sink.sessions
    finally:
        sink.close()


def test_queuelifetime_turns_deferral_into_failure(sys_: MailSystem) -> None:
    sink = Sink(rcpt=b"450 try later\r\n")
    box = sys_.box
    try:
        sys_.control("smtproutes", f"remote.example:127.0.0.1:{sink.port}")
        sys_.control("queuelifetime", "0")
        sys_.start()
        assert sys_.inject(f"{box.name}@test.example", ["bob@remote.example"], MSG).returncode == 0
        import time
        time.sleep(1.1)  # older than its lifetime by the time it is tried again
        sys_.signal(signal.SIGALRM)
        [bounce] = wait_messages(box, 1)
        assert b"I'm not going to try again; this message has been in the queue too long.\n" in bounce
    finally:
        sink.close()


def test_concurrencylocal_is_obeyed(sys_: MailSystem) -> None:
    box = sys_.box
    sys_.control("concurrencylocal", "1")
    sys_.start()
    for i in range(5):
        assert sys_.inject("a@test.example", [f"{box.name}@test.example"],
                           MSG + b"%d\n" % i).returncode == 0
    wait_messages(box, 5)
    log = sys_.wait_log("end msg", 5)
    assert "status: local 1/1 remote 0/20" in log
    assert "status: local 2/1" not in log


def test_second_qmail_send_refused(sys_: MailSystem) -> None:
    sys_.start()
    first = sys_.proc
    second = MailSystem.__new__(MailSystem)
    second.__dict__.update(sys_.__dict__)
    second.log = sys_.base / "second.log"
    second.proc = None
    import subprocess
    from tests.helpers import ours
    p = subprocess.run([ours("qmail-start"), "./Maildir/"], env=sys_.env, cwd="/",
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
    assert p.returncode == 111
    assert b"alert: cannot start: qmail-send is already running\n" in p.stdout
    assert first.poll() is None


def test_hanging_program_holds_only_its_own_delivery(sys_: MailSystem) -> None:
    """A |program that never ends keeps its delivery going (qmail has no timeout for
    it) but nothing else waits: the next messages to the same account arrive."""
    box = sys_.box
    (box.home / ".qmail-hang").write_text("|exec sleep 600\n")
    sys_.start()
    assert sys_.inject("a@test.example", [f"{box.name}-hang@test.example"], MSG).returncode == 0
    sys_.wait_log(f"to local {box.name}-hang@test.example")
    for i in range(3):
        assert sys_.inject("a@test.example", [f"{box.name}@test.example"],
                           MSG + b"%d\n" % i).returncode == 0
    wait_messages(box, 3)
    log = sys_.wait_log("end msg", 3)
    assert log.count("success") == 3
    status = [line for line in log.splitlines() if line.startswith("status:")]
    assert status[-1] == "status: local 1/10 remote 0/20"  # the program still runs


def test_term_waits_for_deliveries_under_way(sys_: MailSystem) -> None:
    box = sys_.box
    (box.home / ".qmail-slow").write_text("|sleep 1\n./Maildir/\n")
    sys_.start()
    assert sys_.inject("a@test.example", [f"{box.name}-slow@test.example"], MSG).returncode == 0
    sys_.wait_log(f"to local {box.name}-slow@test.example")
    sys_.signal(signal.SIGTERM)
    assert sys_.proc.wait(timeout=20) == 0
    log = sys_.logtext()
    assert re.search(r"delivery \d+: success: did_1\+0\+1/", log)
    assert log.endswith("status: exiting\n")
    assert "exitasap" in log
    assert len(box.new()) == 1
