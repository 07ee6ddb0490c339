"""CAPA (RFC 2449) and STLS (RFC 2595) in qmail-popup and qmail-pop3d.

Both are off unless configured: CAPA with ``$POP3CAPA``, STLS with
``QMAILHOME/control/servercert.pem`` (a self-signed certificate made here with
openssl) and a socket on descriptors 0 and 1.  Served by our tcpserver and read
with poplib (``stls()``), ``openssl s_client -starttls pop3`` and Debian's
fetchmail (unpacked into ``.ref/fetchmail``); first with a stand-in checker
that runs qmail-pop3d on a Maildir of ours, then as root through
checkpassword with a throw-away system account.
"""
from __future__ import annotations

import os
import poplib
import shutil
import socket
import ssl
import subprocess
import sys
from pathlib import Path

import pytest

from pyqmail import timeoutio
from tests import reference
from tests.helpers import kill_tree, ours
from tests.mta.test_pop3 import (HOST, M1, M2, M3, PASSWORD, accounts,  # noqa: F401
                                 make_maildir)
from tests.tcpserver.harness import read_line

CAPS = b"+OK capability list follows\r\nTOP\r\nUIDL\r\nUSER\r\n.\r\n"
CAPS_TLS = b"+OK capability list follows\r\nTOP\r\nUIDL\r\nUSER\r\nSTLS\r\n.\r\n"
root_only = pytest.mark.skipif(os.geteuid() != 0, reason="system accounts need root")


def run(args: list[str], data: bytes, env: dict | None = None,
        cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(args, input=data, env=env, cwd=cwd, capture_output=True, timeout=30)


def environ(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("POP3CAPA", "QMAILHOME")}
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def qmailhome(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A qmail tree whose control/servercert.pem holds a fresh key and certificate."""
    home = tmp_path_factory.mktemp("qmailhome")
    home.chmod(0o755)
    (home / "control").mkdir()
    key, cert = home / "key.pem", home / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                    str(key), "-out", str(cert), "-subj", "/CN=localhost", "-days", "1"],
                   check=True, capture_output=True, timeout=60)
    (home / "control" / "servercert.pem").write_bytes(key.read_bytes() + cert.read_bytes())
    return home


def client_context() -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


# -- without a network: CAPA on and off ------------------------------------------------

def test_capa_is_off_without_pop3capa(tmp_path: Path, qmailhome: Path) -> None:
    r = run([ours("qmail-popup"), HOST, "false"], b"CAPA\r\nSTLS\r\nQUIT\r\n",
            environ(QMAILHOME=str(qmailhome)))
    assert r.stdout.split(b"\r\n", 1)[1] == (b"-ERR authorization first\r\n" * 2 + b"+OK \r\n")
    make_maildir(tmp_path)
    r = run([ours("qmail-pop3d"), "Maildir"], b"CAPA\r\nQUIT\r\n", environ(), tmp_path)
    assert r.stdout == b"+OK \r\n-ERR unimplemented\r\n+OK \r\n"


def test_capa_before_login_on_pipes_has_no_stls(qmailhome: Path) -> None:
    # a certificate but no socket: TLS is not offered, STLS is an unknown command
    r = run([ours("qmail-popup"), HOST, "false"], b"capa\r\nSTLS\r\nUSER joe\r\nCAPA x\r\nQUIT\r\n",
            environ(POP3CAPA="", QMAILHOME=str(qmailhome)))
    assert r.returncode == 1
    assert r.stdout.split(b"\r\n", 1)[1] == (CAPS + b"-ERR authorization first\r\n+OK \r\n"
                                             + CAPS + b"+OK \r\n")


def test_capa_after_login(tmp_path: Path) -> None:
    make_maildir(tmp_path)
    r = run([ours("qmail-pop3d"), "Maildir"], b"CAPA\r\nSTAT\r\nQUIT\r\n",
            environ(POP3CAPA="1"), tmp_path)
    assert r.stdout == (b"+OK \r\n" + CAPS + b"+OK 3 %d\r\n" % (len(M1) + len(M2) + len(M3))
                        + b"+OK \r\n")


def test_conn_cuts_or_refuses_long_lines() -> None:
    r, w = os.pipe()
    try:
        conn = timeoutio.Conn(1, r, w, readsize=7)
        os.write(w, b"x" * 40 + b"\r\nshort\n" + b"y" * 40 + b"\n")
        assert conn.getline(10, cut=True) == b"x" * 10
        assert conn.getline(10) == b"short"
        with pytest.raises(timeoutio.TooLong):
            conn.getline(10)
    finally:
        os.close(r)
        os.close(w)


def test_conn_bounded_writes_and_autoflush() -> None:
    a, b = socket.socketpair()
    try:
        conn = timeoutio.Conn(1, a.fileno(), a.fileno(), writesize=3, outsize=5)
        conn.put(b"abcd")
        b.setblocking(False)
        with pytest.raises(BlockingIOError):
            b.recv(10)
        conn.put(b"ef")  # past outsize: written, three bytes a time
        b.setblocking(True)
        got = b""
        while len(got) < 6:
            got += b.recv(10)
        assert got == b"abcdef"
    finally:
        a.close()
        b.close()


# -- through tcpserver ----------------------------------------------------------------

def start(args: list[str], env: dict[str, str]):
    p = subprocess.Popen([ours("tcpserver"), "-1", "-HRl0", "127.0.0.1", "0",
                          ours("qmail-popup"), HOST, *args], env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
                         start_new_session=True)
    return p, int(read_line(p.stdout))


def stop(p: subprocess.Popen) -> None:
    kill_tree(p)
    p.stdout.close()


@pytest.fixture(scope="module")
def standin(tmp_path_factory: pytest.TempPathFactory, qmailhome: Path):
    """qmail-popup over TLS with a checker that takes joe/secret and runs
    qmail-pop3d on a Maildir of ours: (port, Maildir)."""
    home = tmp_path_factory.mktemp("joe")
    md = make_maildir(home)
    check = home / "check"
    check.write_text("#!/bin/sh\n"
                     "[ \"$(tr '\\0' ' ' <&3 | cut -d' ' -f1,2)\" = 'joe secret' ] || exit 1\n"
                     f"cd {home} && exec {ours('qmail-pop3d')} Maildir\n")
    check.chmod(0o755)
    p, port = start([str(check)], environ(POP3CAPA="", QMAILHOME=str(qmailhome)))
    try:
        yield port, md
    finally:
        stop(p)


class Raw:
    """A POP3 connection by hand, plain then TLS."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=20)
        self.f = self.sock.makefile("rb")
        self.greeting = self.f.readline()

    def say(self, text: bytes) -> bytes:
        self.sock.sendall(text + b"\r\n")
        return self.f.readline()

    def multi(self, text: bytes) -> bytes:
        out = self.say(text)
        while out.startswith(b"+OK") and not out.endswith(b"\r\n.\r\n"):
            out += self.f.readline()
        return out

    def tls(self) -> None:
        self.f.close()
        self.sock = client_context().wrap_socket(self.sock)
        self.f = self.sock.makefile("rb")

    def close(self) -> None:
        self.f.close()
        self.sock.close()


def test_stls_session(standin) -> None:
    port, md = standin
    pop = poplib.POP3("127.0.0.1", port, timeout=20)
    try:
        assert pop.capa() == {"TOP": [], "UIDL": [], "USER": [], "STLS": []}
        assert pop.stls(client_context()) == b"+OK begin TLS negotiation"
        assert isinstance(pop.sock, ssl.SSLSocket)
        assert pop.capa() == {"TOP": [], "UIDL": [], "USER": []}  # no STLS once it is on
        with pytest.raises(poplib.error_proto, match="TLS already active"):
            pop._shortcmd("STLS")
        assert pop.user("joe") == b"+OK "
        assert pop.pass_("secret") == b"+OK "
        assert pop.capa() == {"TOP": [], "UIDL": [], "USER": []}  # qmail-pop3d's, relayed
        assert pop.stat() == (3, len(M1) + len(M2) + len(M3))
        assert pop.retr(1)[1] == [b"Subject: one", b"", b"body one", b""]
        big = pop.retr(2)[1]
        assert big[0] == b"Subject: two" and b".leading dot" in big
        assert pop.uidl()[1] == [b"1 1000.1.host", b"2 1001.2.host", b"3 1002.3.host"]
        assert pop.quit() == b"+OK "
    finally:
        pop.close()
    assert "1000.1.host:2," in os.listdir(md / "cur")


def test_stls_after_user_and_bad_password(standin) -> None:
    port, _ = standin
    c = Raw(port)
    try:
        assert c.say(b"USER joe") == b"+OK \r\n"
        assert c.say(b"STLS") == b"-ERR STLS not allowed after USER\r\n"
        assert c.multi(b"CAPA") == CAPS  # no STLS after USER
        assert c.say(b"PASS wrong") == b"-ERR authorization failed\r\n"
        assert c.f.readline() == b""
    finally:
        c.close()
    c = Raw(port)
    try:
        assert c.say(b"STLS") == b"+OK begin TLS negotiation\r\n"
        c.tls()
        assert c.say(b"USER joe") == b"+OK \r\n"
        assert c.say(b"PASS wrong") == b"-ERR authorization failed\r\n"  # through TLS
        assert c.f.readline() == b""
    finally:
        c.close()


def test_plain_input_after_stls_is_dropped(standin) -> None:
    # STARTTLS command injection (CVE-2011-0411 style): what came with STLS in the
    # clear must not be answered inside TLS
    port, _ = standin
    c = Raw(port)
    try:
        c.sock.sendall(b"STLS\r\nCAPA\r\n")
        assert c.f.readline() == b"+OK begin TLS negotiation\r\n"
        c.tls()
        assert c.say(b"NOOP") == b"+OK \r\n"
    finally:
        c.close()


def test_client_gone_during_relay(standin) -> None:
    port, md = standin
    c = Raw(port)
    try:
        assert c.say(b"STLS").startswith(b"+OK")
        c.tls()
        c.say(b"USER joe")
        assert c.say(b"PASS secret") == b"+OK \r\n"
        c.sock.sendall(b"DELE 1\r\n")
    finally:
        c.close()  # no QUIT: nothing is deleted
    pop = poplib.POP3("127.0.0.1", port, timeout=20)
    try:
        pop.stls(client_context())
        pop.user("joe")
        pop.pass_("secret")
        assert pop.stat()[0] == 3
        pop.quit()
    finally:
        pop.close()


def test_bad_certificate_file_keeps_the_session_plain(tmp_path: Path) -> None:
    (tmp_path / "control").mkdir()
    (tmp_path / "control" / "servercert.pem").write_text("not a certificate\n")
    p, port = start(["false"], environ(POP3CAPA="", QMAILHOME=str(tmp_path)))
    try:
        c = Raw(port)
        try:
            assert c.multi(b"CAPA") == CAPS_TLS
            assert c.say(b"STLS") == b"-ERR TLS not available\r\n"
            assert c.say(b"NOOP") == b"+OK \r\n"
        finally:
            c.close()
    finally:
        stop(p)


def test_openssl_s_client(standin) -> None:
    if not shutil.which("openssl"):
        pytest.skip("openssl is not installed")
    port, _ = standin
    # one command at a time: what the client sends after PASS before the reply is lost
    # to qmail-pop3d, as in qmail
    p = subprocess.Popen(["openssl", "s_client", "-starttls", "pop3", "-connect",
                          f"127.0.0.1:{port}", "-quiet", "-ign_eof"], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        got = []
        for line in (b"USER joe", b"PASS secret", b"STAT", b"UIDL 2", b"QUIT"):
            p.stdin.write(line + b"\r\n")
            p.stdin.flush()
            got.append(read_line(p.stdout))
        assert got == [b"+OK \r\n", b"+OK \r\n", b"+OK 3 %d\r\n" % (len(M1) + len(M2) + len(M3)),
                       b"+OK 2 1001.2.host\r\n", b"+OK \r\n"]
        p.stdin.close()
        assert p.wait(timeout=20) == 0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        p.stdout.close()


# -- as root: checkpassword and a system account ------------------------------------------

@pytest.fixture(scope="module")
def tls_server(accounts, qmailhome: Path):
    p, port = start([ours("checkpassword"), ours("qmail-pop3d"), "Maildir"],
                    environ(POP3CAPA="", QMAILHOME=str(qmailhome)))
    try:
        yield port
    finally:
        stop(p)


@root_only
def test_stls_with_a_system_account(accounts, tls_server: int) -> None:
    pw = accounts.make()
    md = Path(pw.pw_dir) / "Maildir"
    pop = poplib.POP3("127.0.0.1", tls_server, timeout=20)
    try:
        assert "STLS" in pop.capa()
        pop.stls(client_context())
        pop.user(pw.pw_name)
        pop.pass_(PASSWORD)
        assert pop.stat() == (3, len(M1) + len(M2) + len(M3))
        assert pop.retr(1)[1] == [b"Subject: one", b"", b"body one", b""]
        assert pop.top(2, 0)[1] == [b"Subject: two", b"X: y", b"", b""]
        assert pop.dele(1) == b"+OK "
        assert pop.quit() == b"+OK "
    finally:
        pop.close()
    assert sorted(os.listdir(md / "cur")) == ["1001.2.host:2,S", "1002.3.host:2,"]
    pop = poplib.POP3("127.0.0.1", tls_server, timeout=20)
    try:
        pop.stls(client_context())
        pop.user(pw.pw_name)
        with pytest.raises(poplib.error_proto, match="authorization failed"):
            pop.pass_("wrong")
    finally:
        pop.close()


def fetchmail_bin() -> str:
    try:
        reference.ensure(reference.REF / "fetchmail", ("fetchmail",))
    except (RuntimeError, OSError, subprocess.CalledProcessError) as e:
        pytest.skip(f"fetchmail cannot be downloaded: {e}")
    return str(reference.REF / "fetchmail" / "usr" / "bin" / "fetchmail")


def fetchmail(tmp_path: Path, port: int, user: str, extra: str) -> tuple[subprocess.CompletedProcess, Path]:
    """One fetchmail run into an mbox-like file by its MDA; the run and the file."""
    out = tmp_path / "fetched"
    rc = tmp_path / "fetchmailrc"
    rc.write_text(f'poll 127.0.0.1 protocol pop3 port {port} timeout 20\n'
                  f'  user "{user}" password "{PASSWORD}" {extra}\n'
                  f'  mda "/bin/sh -c \'cat >> {out}\'"\n')
    rc.chmod(0o600)
    env = dict(environ(HOME=str(tmp_path), FETCHMAILHOME=str(tmp_path)), LC_ALL="C")
    r = subprocess.run([fetchmail_bin(), "-f", str(rc), "--nosyslog", "-v"], env=env,
                       capture_output=True, timeout=120, stdin=subprocess.DEVNULL)
    return r, out


@root_only
@pytest.mark.parametrize("tls", [False, True])
def test_fetchmail(accounts, tls_server: int, tmp_path: Path, tls: bool) -> None:
    # plain: fetchmail must not take up the STLS our CAPA offers (its sslcertck would
    # refuse the self-signed certificate); with TLS: STLS required, the certificate taken
    extra = "sslproto tls1.2+ no sslcertck" if tls else "sslproto ''"
    pw = accounts.make()
    md = Path(pw.pw_dir) / "Maildir"
    r, out = fetchmail(tmp_path, tls_server, pw.pw_name, extra)
    log = r.stderr.decode(errors="replace") + r.stdout.decode(errors="replace")
    assert r.returncode == 0, log
    assert ("POP3> STLS" in log) == tls, log
    mail = out.read_bytes()
    assert b"Subject: one\n\nbody one\n" in mail.replace(b"\r\n", b"\n")
    assert b"Subject: two" in mail and b"last line no newline" in mail
    # fetched messages are deleted (fetchmail's default): only what was not listed is left
    assert sorted(os.listdir(md / "new")) == [".hidden", "1003.4.host"]
    assert os.listdir(md / "cur") == []


def test_ssl_is_loaded_only_for_stls() -> None:
    code = ("import sys; import mta.qmail_popup, mta.qmail_pop3d, pyqmail.timeoutio; "
            "print(' '.join(sorted(sys.modules)))")
    mods = set(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              check=True).stdout.split())
    assert not mods & {"ssl", "_ssl", "socket"}
