"""qmail-smtpd beyond qmail 1.03: SIZE, ENHANCEDSTATUSCODES, STARTTLS and AUTH,
each off until configured; on pipes, and under our tcpserver with smtplib and
``openssl s_client``, with a fake checkpassword and with ours on a real account."""
from __future__ import annotations

import os
import pwd
import re
import shutil
import smtplib
import socket
import ssl
import subprocess
import tempfile
import time
from base64 import b64encode
from pathlib import Path

import pytest

from mta import smtpd_replies as R
from tests.helpers import account_cmd, ours
from tests.mta.test_qmail_smtpd import DATE, control, env_for, home, lines, queued, smtpd  # noqa: F401
from tests.tcpserver.harness import Server

ROOT = os.geteuid() == 0
GREET = "220 mx.example ESMTP"


def b64(data: bytes) -> bytes:
    return b64encode(data)


@pytest.fixture
def checker(home: Path) -> Path:
    """A fake checkpassword: yes for alice/secret (exactly ``alice\\0secret\\0\\0``
    on descriptor 3), then it runs the rest of its arguments."""
    (home / "want").write_bytes(b"alice\0secret\0\0")
    prog = home / "fake-check"
    prog.write_text(f"""#!/bin/sh
cat <&3 > {home}/got.$$
cmp -s {home}/got.$$ {home}/want || exit 1
exec "$@"
""")
    prog.chmod(0o755)
    return prog


# -- nothing configured: qmail 1.03 ---------------------------------------------------
def test_off_by_default(home: Path) -> None:
    control(home, "databytes", "100\n")
    (home / "control" / "servercert.pem").write_text("not used on pipes\n")
    out, _ = smtpd(home, b"EHLO c\r\nSTARTTLS\r\nAUTH PLAIN\r\nMAIL FROM:<a@b> SIZE=999\r\n"
                   b"RCPT TO:<u@mx.example>\r\nQUIT\r\n")
    assert out == lines(GREET, "250-mx.example", "250-PIPELINING", "250 8BITMIME",
                        "502 unimplemented (#5.5.1)", "502 unimplemented (#5.5.1)",
                        "250 ok", "250 ok", "221 mx.example")


# -- SIZE ---------------------------------------------------------------------------------
@pytest.mark.parametrize("arg, reply", [
    (b"<a@b> SIZE=100", "250 ok"),
    (b"<a@b> SIZE=101", "552 sorry, that message size exceeds my databytes limit (#5.3.4)"),
    (b"<a@b> BODY=8BITMIME size=5000 AUTH=<>", "552 sorry, that message size exceeds my "
     "databytes limit (#5.3.4)"),
    (b"<a@b> BODY=8BITMIME AUTH=<> X=Y", "250 ok"),
    (b"a@b SIZE=101", "552 sorry, that message size exceeds my databytes limit (#5.3.4)"),
    (b"<a@b> SIZE=junk", "250 ok"),
])
def test_size(home: Path, arg: bytes, reply: str) -> None:
    control(home, "esmtpsize", "1\n")
    control(home, "databytes", "100\n")
    out, _ = smtpd(home, b"EHLO c\r\nMAIL FROM:" + arg + b"\r\nRCPT TO:<u@mx.example>\r\n")
    rcpt = "250 ok" if reply == "250 ok" else "503 MAIL first (#5.5.1)"
    assert out == lines(GREET, "250-mx.example", "250-PIPELINING", "250-8BITMIME",
                        "250 SIZE 100", reply, rcpt)


def test_size_without_a_limit(home: Path) -> None:
    control(home, "esmtpsize", "1\n")
    out, _ = smtpd(home, b"EHLO c\r\nMAIL FROM:<a@b> SIZE=99999999\r\n", DATABYTES="0")
    assert out == lines(GREET, "250-mx.example", "250-PIPELINING", "250 8BITMIME", "250 ok")
    out, _ = smtpd(home, b"EHLO c\r\nMAIL FROM:<a@b> SIZE=51\r\n", DATABYTES="50")
    assert out.endswith("250 SIZE 50\r\n552 sorry, that message size exceeds my databytes "
                        "limit (#5.3.4)\r\n")


# -- ENHANCEDSTATUSCODES -----------------------------------------------------------------
def test_enhance() -> None:
    assert R.enhance(R.OK, R.MAIL_OK) == b"250 2.1.0 ok\r\n"
    assert R.enhance(R.OK) == b"250 2.0.0 ok\r\n"
    assert R.enhance(R.NOGATEWAY) == (b"553 5.7.1 sorry, that domain isn't in my list of "
                                      b"allowed rcpthosts (#5.7.1)\r\n")
    assert R.enhance(b"451 qq write error or disk full (#4.3.0)\r\n") == \
        b"451 4.3.0 qq write error or disk full (#4.3.0)\r\n"
    for unchanged in (R.GO_AHEAD, R.AUTH_USERNAME, b"250-x\r\n250 y\r\n", b"250 x\r\n"):
        assert R.enhance(unchanged) == unchanged
    assert R.ehlo(b"me") == R.EHLO + b"me" + R.EHLO_KEYWORDS


def test_enhanced_status_codes(home: Path) -> None:
    control(home, "enhancedstatuscodes", "1\n")
    out, _ = smtpd(home, b"EHLO c\r\nHELO c\r\nMAIL FROM:<a@b>\r\nRCPT TO:<u@mx.example>\r\n"
                   b"RCPT TO:<u@far.example>\r\nNOOP\r\nVRFY x\r\nHELP\r\nRSET\r\nDATA\r\n"
                   b"BOGUS\r\n" + b"MAIL FROM:<a@b>\r\nRCPT TO:<u@mx.example>\r\n"
                   b"DATA\r\nhi\r\n.\r\nQUIT\r\n")
    assert re.fullmatch(lines(
        GREET, "250-mx.example", "250-PIPELINING", "250-8BITMIME", "250 ENHANCEDSTATUSCODES",
        "250 mx.example", "250 2.1.0 ok", "250 2.1.5 ok",
        re.escape("553 5.7.1 sorry, that domain isn't in my list of allowed rcpthosts (#5.7.1)"),
        "250 2.0.0 ok", "252 2.0.0 send some mail, i'll try my best",
        "214 2.0.0 qmail home page: http://pobox.com/~djb/qmail.html", "250 2.0.0 flushed",
        re.escape("503 5.5.1 MAIL first (#5.5.1)"), re.escape("502 5.5.1 unimplemented (#5.5.1)"),
        "250 2.1.0 ok", "250 2.1.5 ok", "354 go ahead", r"250 2.0.0 ok \d+ qp \d+",
        "221 2.0.0 mx.example"), out), out


# -- AUTH on pipes with a fake checkpassword -----------------------------------------------
def auth_session(home: Path, checker: Path, script: bytes, *args: str, **env) -> tuple[str, int]:
    p = subprocess.run([ours("qmail-smtpd"), "mx.example", str(checker), *(args or ["true"])],
                       input=script, capture_output=True, env=env_for(home, **env), timeout=60)
    assert p.stderr == b""
    return p.stdout.decode("latin-1"), p.returncode


def test_auth_plain_allows_relaying(home: Path, checker: Path) -> None:
    script = (b"EHLO c\r\nMAIL FROM:<a@b>\r\nRCPT TO:<u@far.example>\r\nRSET\r\n"
              b"AUTH PLAIN " + b64(b"ignored\0alice\0secret") + b"\r\nAUTH PLAIN\r\n"
              b"MAIL FROM:<a@b>\r\nRCPT TO:<u@far.example>\r\nDATA\r\nhi\r\n.\r\nQUIT\r\n")
    out, rc = auth_session(home, checker, script, TCPREMOTEINFO="ident")
    assert re.fullmatch(lines(
        GREET, "250-mx.example", "250-AUTH LOGIN PLAIN", "250-AUTH=LOGIN PLAIN",
        "250-PIPELINING", "250 8BITMIME", "250 ok",
        re.escape("553 sorry, that domain isn't in my list of allowed rcpthosts (#5.7.1)"),
        "250 flushed", re.escape("235 ok, go ahead (#2.0.0)"),
        re.escape("503 you're already authenticated (#5.5.0)"), "250 ok", "250 ok",
        "354 go ahead", r"250 ok \d+ qp \d+", "221 mx.example"), out), out
    [(msg, env)] = queued(home)
    assert env == b"Fa@b\0Tu@far.example\0\0"
    assert re.match(rb"Received: from unknown \(HELO c\) \(alice@192.0.2.7\)\n  by 192.0.2.1 "
                    rb"with SMTP; " + DATE, msg)


@pytest.mark.parametrize("exchange, replies", [
    (b"AUTH LOGIN\r\n" + b64(b"alice") + b"\r\n" + b64(b"secret") + b"\r\n",
     ["334 VXNlcm5hbWU6", "334 UGFzc3dvcmQ6", "235 ok, go ahead (#2.0.0)"]),
    (b"auth login " + b64(b"alice") + b"\r\n" + b64(b"secret") + b"\r\n",
     ["334 UGFzc3dvcmQ6", "235 ok, go ahead (#2.0.0)"]),
    (b"AUTH plain\r\n" + b64(b"\0alice\0secret") + b"\r\n", ["334 ", "235 ok, go ahead (#2.0.0)"]),
    (b"AUTH CRAM-MD5\r\n", ["504 auth type unimplemented (#5.5.1)"]),
    (b"AUTH\r\n", ["504 auth type unimplemented (#5.5.1)"]),
    (b"AUTH PLAIN !!!\r\n", ["501 malformed auth input (#5.5.4)"]),
    (b"AUTH PLAIN " + b64(b"alice\0secret") + b"\r\n", ["501 malformed auth input (#5.5.4)"]),
    (b"AUTH PLAIN " + b64(b"\0alice\0") + b"\r\n", ["501 malformed auth input (#5.5.4)"]),
    (b"AUTH LOGIN\r\n*\r\n", ["334 VXNlcm5hbWU6", "501 auth exchange cancelled (#5.0.0)"]),
    (b"AUTH LOGIN " + b64(b"alice") + b"\r\n\r\n", ["334 UGFzc3dvcmQ6",
                                                    "501 malformed auth input (#5.5.4)"]),
    (b"MAIL FROM:<a@b>\r\nAUTH PLAIN " + b64(b"\0alice\0secret") + b"\r\n",
     ["250 ok", "503 no auth during mail transaction (#5.5.0)"]),
])
def test_auth_exchanges(home: Path, checker: Path, exchange: bytes, replies: list[str]) -> None:
    out, _ = auth_session(home, checker, exchange + b"QUIT\r\n")
    assert out == lines(GREET, *replies, "221 mx.example")


def test_auth_failure_waits(home: Path, checker: Path) -> None:
    start = time.monotonic()
    out, _ = auth_session(home, checker, b"AUTH PLAIN " + b64(b"\0alice\0wrong") + b"\r\n"
                          b"MAIL FROM:<a@b>\r\nRCPT TO:<u@far.example>\r\nQUIT\r\n")
    assert time.monotonic() - start >= 4.5
    assert out == lines(GREET, "535 authorization failed (#5.7.0)", "250 ok",
                        "553 sorry, that domain isn't in my list of allowed rcpthosts (#5.7.1)",
                        "221 mx.example")


def test_auth_troubles(home: Path, checker: Path, tmp_path: Path) -> None:
    # only a hostname: AUTH is a command, but there is nothing to check with
    p = subprocess.run([ours("qmail-smtpd"), "mx.example"], input=b"EHLO c\r\nAUTH LOGIN\r\n",
                       capture_output=True, env=env_for(home))
    assert p.stdout.decode() == lines(GREET, "250-mx.example", "250-PIPELINING", "250 8BITMIME",
                                      "503 auth not available (#5.3.3)")
    # a checker that dies of a signal, or hangs past timeoutsmtpd: 454, the session goes on
    plain = b"AUTH PLAIN " + b64(b"\0alice\0secret") + b"\r\nNOOP\r\n"
    killer = tmp_path / "killer"
    killer.write_text("#!/bin/sh\nkill -9 $$\n")
    killer.chmod(0o755)
    child = "454 oops, problem with child and I can't auth (#4.3.0)"
    out, _ = auth_session(home, killer, plain)
    assert out == lines(GREET, child, "250 ok")
    control(home, "timeoutsmtpd", "1\n")
    start = time.monotonic()
    out, _ = auth_session(home, Path("/bin/sleep"), plain, "30")
    assert out == lines(GREET, child, "250 ok")
    assert time.monotonic() - start < 10


def test_forcetls_without_tls(home: Path, checker: Path) -> None:
    control(home, "forcetls", "1\n")
    out, _ = auth_session(home, checker, b"EHLO c\r\nAUTH PLAIN " + b64(b"\0alice\0secret")
                          + b"\r\n")
    assert out == lines(GREET, "250-mx.example", "250-PIPELINING", "250 8BITMIME",
                        "538 auth not available without TLS (#5.3.3)")


# -- STARTTLS under our tcpserver ------------------------------------------------------------
@pytest.fixture(scope="module")
def cert(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("cert")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                    str(d / "key.pem"), "-out", str(d / "cert.pem"), "-days", "2",
                    "-subj", "/CN=mx.example"], check=True, capture_output=True)
    pem = d / "servercert.pem"
    pem.write_bytes((d / "cert.pem").read_bytes() + (d / "key.pem").read_bytes())
    return pem


def serve(home: Path, tmp_path: Path, spawn, args: list[str], **env) -> Server:
    e = env_for(home, TCPREMOTEIP=None, TCPLOCALIP=None, **env)
    return Server(spawn, ours("tcpserver"), ["-HRl0"], [ours("qmail-smtpd"), *args],
                  tmp_path, env=e)


def client_context(cert: Path) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(cert.parent / "cert.pem"))
    ctx.check_hostname = False
    return ctx


def test_starttls_then_auth(home: Path, tmp_path: Path, spawn, cert: Path, checker: Path) -> None:
    shutil.copy(cert, home / "control" / "servercert.pem")
    control(home, "forcetls", "1\n")
    server = serve(home, tmp_path, spawn, ["mx.example", str(checker), "true"])
    with smtplib.SMTP("127.0.0.1", server.port, timeout=30) as s:
        s.ehlo("before")
        assert "starttls" in s.esmtp_features and "auth" not in s.esmtp_features
        assert s.mail("a@b")[0] == 250
        assert s.docmd("STARTTLS") == (503, b"no TLS during mail transaction (#5.5.1)")
        assert s.docmd("STARTTLS x") == (501, b"Syntax error (no parameters allowed) (#5.5.4)")
        s.rset()
        s.starttls(context=client_context(cert))
        s.ehlo("client")
        assert "starttls" not in s.esmtp_features
        assert set(s.esmtp_features["auth"].split()) == {"LOGIN", "PLAIN"}
        assert s.docmd("STARTTLS") == (503, b"TLS already active (#5.5.1)")
        # the session started over: no MAIL any more
        assert s.rcpt("u@mx.example")[0] == 503
        s.mail("a@b")
        assert s.rcpt("u@far.example")[0] == 553
        s.rset()
        with pytest.raises(smtplib.SMTPAuthenticationError) as e:
            s.login("alice", "wrong")
        assert e.value.smtp_code == 535
        s.login("alice", "secret")
        s.sendmail("a@b", ["u@far.example"], b"Subject: tls\r\n\r\nsecret\r\n")
    [(msg, env)] = queued(home)
    assert env == b"Fa@b\0Tu@far.example\0\0"
    assert re.match(rb"Received: from unknown \(HELO client\) \(alice@127.0.0.1\)\n  by 0 with "
                    rb"ESMTPS \(TLS_[A-Z0-9_]+ encrypted\); " + DATE + rb"Subject: tls\n", msg), msg


def test_starttls_forgets_helo(home: Path, tmp_path: Path, spawn, cert: Path) -> None:
    """The Received line has no HELO from before the handshake, and a
    pipelined command sent in the clear after STARTTLS is dropped."""
    shutil.copy(cert, home / "control" / "servercert.pem")
    server = serve(home, tmp_path, spawn, [])
    raw = socket.create_connection(("127.0.0.1", server.port), timeout=20)
    f = raw.makefile("rb")
    assert f.readline() == b"220 mx.example ESMTP\r\n"
    raw.sendall(b"EHLO before\r\n")
    assert [f.readline() for _ in range(4)] == [b"250-mx.example\r\n", b"250-STARTTLS\r\n",
                                                b"250-PIPELINING\r\n", b"250 8BITMIME\r\n"]
    raw.sendall(b"STARTTLS\r\nMAIL FROM:<injected@x>\r\n")
    assert f.readline() == b"220 ready for tls\r\n"
    tls = client_context(cert).wrap_socket(raw)
    tf = tls.makefile("rb")
    tls.sendall(b"RCPT TO:<u@mx.example>\r\nMAIL FROM:<a@b>\r\nRCPT TO:<u@mx.example>\r\n"
                b"DATA\r\nhi\r\n.\r\nQUIT\r\n")
    got = [tf.readline() for _ in range(6)]
    assert got[:4] == [b"503 MAIL first (#5.5.1)\r\n", b"250 ok\r\n", b"250 ok\r\n",
                       b"354 go ahead\r\n"]
    assert got[5] == b"221 mx.example\r\n"
    tls.close()
    [(msg, env)] = queued(home)
    assert env == b"Fa@b\0Tu@mx.example\0\0"
    assert re.match(rb"Received: from unknown \(127.0.0.1\)\n  by 0 with ESMTPS \(", msg), msg


def test_handshake_failure_ends_the_session(home: Path, tmp_path: Path, spawn, cert: Path) -> None:
    shutil.copy(cert, home / "control" / "servercert.pem")
    server = serve(home, tmp_path, spawn, [])
    with socket.create_connection(("127.0.0.1", server.port), timeout=20) as c:
        c.sendall(b"STARTTLS\r\n")
        got = b""
        while not got.endswith(b"220 ready for tls\r\n"):
            got += c.recv(4096)
        c.sendall(b"this is no TLS client hello\r\n")
        try:
            while (data := c.recv(4096)):
                got += data
        except ConnectionResetError:  # it went with our bytes unread
            pass
        assert got == b"220 mx.example ESMTP\r\n220 ready for tls\r\n"


def test_bad_certificate(home: Path, tmp_path: Path, spawn, cert: Path) -> None:
    """A servercert.pem without its key: 454 and the session goes on in the clear."""
    (home / "control" / "servercert.pem").write_bytes((cert.parent / "cert.pem").read_bytes())
    server = serve(home, tmp_path, spawn, [])
    with smtplib.SMTP("127.0.0.1", server.port, timeout=30) as s:
        code, text = s.docmd("STARTTLS")
        assert code == 454 and text.startswith(b"TLS missing certificate: ")
        assert text.endswith(b" (#4.3.0)")
        assert s.noop()[0] == 250


def test_openssl_s_client(home: Path, tmp_path: Path, spawn, cert: Path) -> None:
    if shutil.which("openssl") is None:
        pytest.skip("no openssl")
    shutil.copy(cert, home / "control" / "servercert.pem")
    control(home, "enhancedstatuscodes", "1\n")
    server = serve(home, tmp_path, spawn, [])
    p = subprocess.run(["openssl", "s_client", "-starttls", "smtp", "-crlf", "-quiet",
                        "-connect", f"127.0.0.1:{server.port}"],
                       input=b"EHLO c\nMAIL FROM:<a@b>\nRCPT TO:<u@mx.example>\nDATA\nhi\n.\n"
                       b"QUIT\n", capture_output=True, timeout=30)
    out = p.stdout.decode()
    assert re.fullmatch(lines("250-mx.example", "250-PIPELINING", "250-8BITMIME",
                              "250 ENHANCEDSTATUSCODES", "250 2.1.0 ok", "250 2.1.5 ok",
                              "354 go ahead", r"250 2.0.0 ok \d+ qp \d+", "221 2.0.0 mx.example"), out), out
    [(msg, _)] = queued(home)
    assert re.match(rb"Received: from unknown \(HELO c\) \(127.0.0.1\)\n  by 0 with ESMTPS", msg)


def test_timeout_after_starttls(home: Path, tmp_path: Path, spawn, cert: Path) -> None:
    shutil.copy(cert, home / "control" / "servercert.pem")
    control(home, "timeoutsmtpd", "1\n")
    server = serve(home, tmp_path, spawn, [])
    with smtplib.SMTP("127.0.0.1", server.port, timeout=30) as s:
        s.starttls(context=client_context(cert))
        s.sock.settimeout(10)
        assert s.getreply() == (451, b"timeout (#4.4.2)")


# -- as root: our checkpassword and a system account --------------------------------------
@pytest.fixture
def account():
    if not ROOT:
        pytest.skip("needs root to make accounts and read /etc/shadow")
    base = Path(tempfile.mkdtemp(prefix="pyqmail-smtpauth-"))
    base.chmod(0o755)
    name = f"pqsa{os.getpid() % 100000}"
    account_cmd(["useradd", "-r", "-M", "-U", "-d", str(base), "-s", "/bin/sh", name])
    try:
        for _ in range(50):
            p = subprocess.run(["chpasswd"], input=f"{name}:Sm7p p:ss\n", capture_output=True,
                               text=True)
            if p.returncode == 0:
                break
            assert "lock" in p.stderr, p.stderr
            time.sleep(0.1)
        yield pwd.getpwnam(name)
    finally:
        account_cmd(["userdel", name])
        try:
            account_cmd(["groupdel", name])
        except RuntimeError:
            pass
        shutil.rmtree(base, ignore_errors=True)


def test_auth_with_our_checkpassword(home: Path, tmp_path: Path, spawn, cert: Path,
                                     account) -> None:
    shutil.copy(cert, home / "control" / "servercert.pem")
    server = serve(home, tmp_path, spawn, ["mx.example", ours("checkpassword"), "/bin/true"])
    with smtplib.SMTP("127.0.0.1", server.port, timeout=30) as s:
        s.starttls(context=client_context(cert))
        s.ehlo("client")
        s.login(account.pw_name, "Sm7p p:ss")
        s.sendmail("a@b", ["u@far.example"], b"relayed\r\n")
    [(msg, env)] = queued(home)
    assert env == b"Fa@b\0Tu@far.example\0\0"
    assert msg.startswith(f"Received: from unknown (HELO client) ({account.pw_name}@127.0.0.1)"
                          .encode())
