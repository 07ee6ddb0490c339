"""Nothing acknowledged over SMTP is lost: clients send through our tcpserver and
qmail-smtpd while kill -9 hits qmail-smtpd sessions (mid-dialogue, mid-DATA),
qmail-queued and qmail-send, with supervise restarting qmail-start.  Every
message that got its 250 is delivered at least once; a message whose session
died before the 250 may or may not be, and is sent again, as a client would."""
from __future__ import annotations

import os
import random
import smtplib
import socket
import subprocess
import threading
import time

import psutil
import pytest

from tests.helpers import ours, wait_for, write_script
from tests.mta.mailsys import MailSystem
from tests.mta.test_crash import delivered, victims


@pytest.fixture
def sys_():
    s = MailSystem()
    yield s
    s.close()


def test_kill9_smtp_sessions_and_queue_under_load(sys_: MailSystem, spawn) -> None:
    """(sys_ before spawn: supervise and tcpserver go before the mailbox account.)"""
    _run(sys_, spawn)


def _run(sys_: MailSystem, spawn) -> None:
    rnd = random.Random(7)
    sys_.control("rcpthosts", "test.example")
    svc = sys_.base / "service" / "qmail-send"
    svc.mkdir(parents=True)
    write_script(svc / "run", f"QMAILHOME={sys_.home}\nexport QMAILHOME\n"
                 f"exec {ours('qmail-start')} ./Maildir/ >> {sys_.log} 2>&1\n")
    sup = spawn.supervise(svc)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ids = []
    if os.geteuid() == 0:
        import pwd
        q = pwd.getpwnam("qmaild")
        ids = ["-u", str(q.pw_uid), "-g", str(q.pw_gid)]
    tcp = spawn.start([ours("tcpserver"), "-HRl0", *ids, "127.0.0.1", str(port),
                       ours("qmail-smtpd")], env=sys_.env)
    wait_for(lambda: (sys_.home / "run" / "qmail-queue.sock").exists(), what="the queue")
    box = sys_.box.name
    n = 90
    acked: set[int] = set()
    errors: list[BaseException] = []
    deadline = time.monotonic() + 120

    def client(part: list[int]) -> None:
        try:
            for seq in part:
                while time.monotonic() < deadline:
                    try:
                        with smtplib.SMTP("127.0.0.1", port, timeout=20) as c:
                            c.sendmail("sender@test.example", [f"{box}@test.example"],
                                       b"Subject: smtp crash\r\nX-Seq: %d\r\n\r\n" % seq
                                       + b"body line\r\n" * 200)
                        acked.add(seq)
                        break
                    except (smtplib.SMTPException, OSError):
                        time.sleep(0.05)  # a 451, a dropped session: try again
                else:
                    raise AssertionError(f"message {seq} never accepted")
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=client, args=(list(range(k, n, 3)),)) for k in range(3)]
    for t in threads:
        t.start()
    kills = []
    while any(t.is_alive() for t in threads):
        time.sleep(rnd.uniform(0.05, 0.25))
        found = [p for p in psutil.Process(tcp.pid).children()]
        found += victims(sup.pid)
        found = [p for p in found if _name(p) in ("qmail-smtpd", "qmail-queued", "qmail-send")]
        if found and len(kills) < 20:
            p = rnd.choice(found)
            kills.append(_name(p))
            try:
                p.kill()
            except psutil.Error:
                pass
    for t in threads:
        t.join()
    assert not errors, errors
    assert acked == set(range(n))
    assert "qmail-smtpd" in kills, kills
    print(f"kills: {kills}")

    def all_in() -> bool:
        subprocess.run([ours("svc"), "-a", str(svc)], check=False)
        return set(delivered(sys_)) >= acked
    wait_for(all_in, timeout=90, interval=0.5, what=f"every accepted message delivered ({kills})")
    tcp.kill()


def _name(p: psutil.Process) -> str:
    try:
        cmd = p.cmdline()
    except psutil.Error:
        return ""
    return os.path.basename(cmd[0].split()[0]) if cmd else ""
