"""swaks (Debian's) against our tcpserver + qmail-smtpd + queue: a real SMTP client's
view, delivered into the mailbox, and the relay refusal it reports."""
from __future__ import annotations

import os
import socket
import subprocess

import pytest

from tests import reference
from tests.helpers import ours, wait_for
from tests.mta.mailsys import MailSystem, wait_messages

SWAKS = reference.REF / "swaks" / "usr" / "bin" / "swaks"


@pytest.fixture(scope="module")
def swaks() -> str:
    reference.ensure(reference.REF / "swaks", ("swaks",))
    return str(SWAKS)


@pytest.fixture
def sys_():
    s = MailSystem()
    yield s
    s.close()


def test_swaks_sends_and_is_refused_relaying(sys_: MailSystem, spawn, swaks: str) -> None:
    sys_.control("rcpthosts", "test.example")
    sys_.start()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ids = []
    if os.geteuid() == 0:
        import pwd
        q = pwd.getpwnam("qmaild")
        ids = ["-u", str(q.pw_uid), "-g", str(q.pw_gid)]
    spawn.start([ours("tcpserver"), "-HRl0", *ids, "127.0.0.1", str(port), ours("qmail-smtpd")],
                env=sys_.env)

    def up() -> bool:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
            return True
        except OSError:
            return False
    wait_for(up, what="qmail-smtpd")
    box = sys_.box.name
    p = subprocess.run([swaks, "--server", f"127.0.0.1:{port}", "--from", "sender@example.org",
                        "--to", f"{box}@test.example", "--header", "Subject: from swaks",
                        "--body", "swaks was here"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "<-  220 test.example ESMTP" in p.stdout
    assert "<-  354 go ahead" in p.stdout
    assert "<-  221 test.example" in p.stdout
    [msg] = wait_messages(sys_.box, 1)
    assert b"Subject: from swaks" in msg and b"swaks was here" in msg
    assert b"Received: from unknown (HELO " in msg
    # a foreign domain from an address without RELAYCLIENT: refused at RCPT
    p = subprocess.run([swaks, "--server", f"127.0.0.1:{port}", "--from", "sender@example.org",
                        "--to", "someone@elsewhere.example"], capture_output=True, text=True,
                       timeout=60)
    assert p.returncode != 0
    assert ("<** 553 sorry, that domain isn't in my list of allowed rcpthosts (#5.7.1)"
            in p.stdout)
