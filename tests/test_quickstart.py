"""The README's main job, run as a user would: up, working, and down without leftovers."""
from __future__ import annotations

import os
import shutil
import smtplib
import socket
import tempfile
import pwd
import re
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from tests.helpers import cmd, ours, wait_for

TOP = Path(__file__).resolve().parent.parent


def leftovers(tmp_path: Path) -> list[psutil.Process]:
    """Processes whose command line or directory is under ``tmp_path``."""
    found = []
    for proc in psutil.process_iter(["cmdline", "cwd"]):
        text = " ".join(proc.info["cmdline"] or []) + " " + (proc.info["cwd"] or "")
        if str(tmp_path) in text:
            found.append(proc)
    return found


@pytest.fixture
def scratch():
    """A scratch directory others can reach (as root the mail services run as nobody)."""
    d = Path(tempfile.mkdtemp(prefix="pyqmail-quick-"))
    d.chmod(0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def test_quickstart_runs_and_stops_cleanly(scratch):
    tmp_path = scratch
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    env = dict(os.environ, PYQMAIL_SCRATCH=str(tmp_path), PYQMAIL_SMTP_PORT=str(port))
    p = subprocess.Popen([sys.executable, str(TOP / "examples" / "quickstart.py")], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        service = tmp_path / "service"
        current = service / "clock" / "log" / "main" / "current"
        wait_for(lambda: current.exists() and "clock: " in current.read_text(), timeout=15)
        assert re.match(r"@4000[0-9a-f]{20} clock: ", current.read_text())
        st = cmd([ours("svstat"), str(service / "clock"), str(service / "clock" / "log"),
                  str(service / "idle")])
        lines = st.out.splitlines()
        assert lines[0].startswith(f"{service}/clock: up (pid ")
        assert lines[1].startswith(f"{service}/clock/log: up (pid ")
        assert lines[2].startswith(f"{service}/idle: down ")
        assert cmd([ours("svc"), "-u", str(service / "idle")]).rc == 0
        wait_for(lambda: "up (pid" in cmd([ours("svstat"), str(service / "idle")]).out)
        # the delivery side: mail to ourselves lands in the scratch Maildir
        send = service / "qmail-send"
        wait_for(lambda: "up (pid" in cmd([ours("svstat"), str(send)]).out, timeout=15)
        wait_for(lambda: (tmp_path / "qmail" / "run" / "qmail-queue.sock").exists(), timeout=15)
        me = pwd.getpwuid(os.getuid()).pw_name
        r = subprocess.run([ours("qmail-inject"), me], input=b"Subject: quick start\n\nhello\n",
                           env={**env, "QMAILHOME": str(tmp_path / "qmail"), "USER": me},
                           capture_output=True, timeout=30)
        assert r.returncode == 0, r.stderr
        new = tmp_path / "mail" / "Maildir" / "new"
        wait_for(lambda: list(new.iterdir()), timeout=15, what="the message in the Maildir")
        [msg] = [p.read_bytes() for p in new.iterdir()]
        assert f"Delivered-To: {me}@localhost.localdomain\n".encode() in msg
        assert msg.endswith(b"Subject: quick start\n\nhello\n")
        log = service / "qmail-send" / "log" / "main" / "current"
        wait_for(lambda: "end msg" in log.read_text(), timeout=15)
        assert re.search(r"@4000[0-9a-f]{20} delivery 1: success: did_1\+0\+0/", log.read_text())
        # and through qmail-smtpd on its loopback port
        wait_for(lambda: "up (pid" in cmd([ours("svstat"), str(service / "qmail-smtpd")]).out)
        def smtp_up() -> bool:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=2).close()
                return True
            except OSError:
                return False
        wait_for(smtp_up, timeout=15, what="qmail-smtpd listening")
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as s:
            s.sendmail("you@example.org", [f"{me}@localhost.localdomain"],
                       b"Subject: by smtp\r\n\r\nhi\r\n")
        wait_for(lambda: len(list(new.iterdir())) == 2, timeout=15, what="the SMTP message")
        [smtp_msg] = [p.read_bytes() for p in new.iterdir() if b"by smtp" in p.read_bytes()]
        assert b"Received: from unknown (HELO " in smtp_msg
        p.send_signal(signal.SIGTERM)
        out, _ = p.communicate(timeout=20)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
            for proc in leftovers(tmp_path):  # what a killed quick start could not stop
                proc.kill()
    assert p.returncode == 0
    assert b"svstat" in out and b"pyqmail: stopped." in out

    wait_for(lambda: not leftovers(tmp_path), timeout=10, what="no process left behind")
