"""sendmail: how its options turn into qmail-inject's (and qmail-qread's, qmail-smtpd's)
argv and environment, checked with recording stand-ins in QMAILHOME/bin, and the whole
way through our qmail-inject to a fake qmail-queue."""
from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers import ours
from tests.mta.util import FakeQueue

USAGE = b"sendmail: usage: sendmail [ -t ] [ -fsender ] [ -Fname ] [ -bp ] [ -bs ] [ arg ... ]\n"

# records its argv (NUL-separated), environment, cwd and stdin, then exits with $REC_EXIT
RECORDER = """#!/bin/sh
for a in "$0" "$@"; do printf '%s\\0' "$a"; done > "$REC_DIR/{name}.argv"
env > "$REC_DIR/{name}.env"
pwd > "$REC_DIR/{name}.cwd"
cat > "$REC_DIR/{name}.stdin"
exit ${{REC_EXIT:-0}}
"""


@dataclass
class Call:
    rc: int
    out: bytes
    err: bytes


class Home:
    """A QMAILHOME whose bin/qmail-inject, qmail-qread and qmail-smtpd record how they ran."""

    def __init__(self, tmp: Path) -> None:
        self.qq = FakeQueue(tmp)
        self.home = self.qq.home
        self.rec = tmp / "rec"
        self.rec.mkdir()
        for name in ("qmail-inject", "qmail-qread", "qmail-smtpd"):
            path = self.home / "bin" / name
            path.write_text(RECORDER.format(name=name))
            path.chmod(0o755)
        self.env = {"PATH": os.environ.get("PATH", "/bin:/usr/bin"), "REC_DIR": str(self.rec),
                    **self.qq.env}

    def __call__(self, args: list, message: bytes = b"", env: dict | None = None,
                 prog: str | None = None, cwd: Path | None = None) -> Call:
        p = subprocess.run([prog or ours("sendmail"), *args], input=message,
                           env={**self.env, **(env or {})}, capture_output=True, timeout=60, cwd=cwd)
        return Call(p.returncode, p.stdout, p.stderr)

    def ran(self, name: str) -> bool:
        return (self.rec / f"{name}.argv").exists()

    def argv(self, name: str = "qmail-inject") -> list[str]:
        return (self.rec / f"{name}.argv").read_bytes().decode().split("\0")[:-1]

    def environ(self, name: str = "qmail-inject") -> dict:
        lines = (self.rec / f"{name}.env").read_text().splitlines()
        return dict(line.split("=", 1) for line in lines if "=" in line)

    def stdin(self, name: str = "qmail-inject") -> bytes:
        return (self.rec / f"{name}.stdin").read_bytes()

    def forget(self) -> None:
        for f in self.rec.iterdir():
            f.unlink()


@pytest.fixture
def home(tmp_path: Path) -> Home:
    return Home(tmp_path)


@pytest.mark.parametrize("args,expected", [
    ([], ["-a", "--"]),
    (["joe@x.y", "ann"], ["-a", "--", "joe@x.y", "ann"]),
    (["-t"], ["-H", "--"]),
    (["-t", "joe"], ["-H", "--", "joe"]),
    (["-f", "me@x.y", "joe"], ["-a", "-f", "me@x.y", "--", "joe"]),
    (["-fme@x.y", "-t"], ["-H", "-f", "me@x.y", "--"]),
    (["-f", "", "joe"], ["-a", "-f", "", "--", "joe"]),
    (["-f", "a", "-f", "b", "joe"], ["-a", "-f", "b", "--", "joe"]),
    # ignored: -i -oX -m -e X -v -x -B X -p X -bm, and -E/-J with what follows in the same word
    (["-i", "-oi", "-oem", "-odb", "-oQ/x", "-m", "-e", "q", "-v", "-x", "-B", "8BITMIME", "-pfoo",
      "-bm", "joe"], ["-a", "--", "joe"]),
    (["-Eanything", "-J", "-Jtf", "-itEx", "joe"], ["-H", "--", "joe"]),
    (["-tim", "-oi", "joe"], ["-H", "--", "joe"]),
    # options end at the first argument, at --, and a lone - is an argument
    (["joe", "-t", "-f", "x"], ["-a", "--", "joe", "-t", "-f", "x"]),
    (["--", "-t"], ["-a", "--", "-t"]),
    (["-", "-t"], ["-a", "--", "-", "-t"]),
])
def test_qmail_inject_argv(home: Home, args: list, expected: list) -> None:
    r = home(args, b"Subject: s\n\nbody\n")
    assert (r.rc, r.out, r.err) == (0, b"", b"")
    assert home.argv() == ["bin/qmail-inject", *expected]
    assert (home.rec / "qmail-inject.cwd").read_text().strip() == str(home.home)
    assert home.stdin() == b"Subject: s\n\nbody\n"


def test_environment_passed_on(home: Home) -> None:
    r = home(["-F", "Joe Q", "joe"], env={"NAME": "N", "QMAILINJECT": "c", "X_Y": "z"})
    assert r.rc == 0
    env = home.environ()
    assert (env["MAILNAME"], env["NAME"], env["QMAILINJECT"], env["X_Y"]) == ("Joe Q", "N", "c", "z")
    assert "QMAILUSER" not in env and "QMAILHOST" not in env  # -f does not set them in qmail 1.03
    home.forget()
    assert home(["-f", "a@b.c", "joe"]).rc == 0
    assert "MAILNAME" not in home.environ() and "QMAILUSER" not in home.environ()


def test_exit_code_is_qmail_injects(home: Home) -> None:
    r = home(["joe"], env={"REC_EXIT": "100"})
    assert (r.rc, r.err) == (100, b"")
    assert home(["joe"], env={"REC_EXIT": "111"}).rc == 111


def test_mailq(home: Home) -> None:
    r = home(["-bp", "-t", "joe"], env={"REC_EXIT": "3"})
    assert (r.rc, r.err) == (3, b"")
    assert home.argv("qmail-qread") == ["bin/qmail-qread"] and not home.ran("qmail-inject")
    home.forget()
    # -F before -bp is in the environment; options after -bp are not read
    assert home(["-Fname", "-bpx", "-z"]).rc == 0
    assert home.environ("qmail-qread")["MAILNAME"] == "name"
    home.forget()
    link = home.rec.parent / "mailq"
    link.symlink_to(ours("sendmail"))
    assert home(["-t", "joe"], prog=str(link)).rc == 0
    assert home.argv("qmail-qread") == ["bin/qmail-qread"] and not home.ran("qmail-inject")
    r = home(["-z"], prog=str(link))
    assert (r.rc, r.err) == (100, b"mailq: illegal option -- z\n" + USAGE)


def test_smtpd(home: Home) -> None:
    r = home(["-bs"], b"QUIT\r\n", env={"TCPREMOTEINFO": "old", "DATABYTES": "5"})
    assert (r.rc, r.err) == (0, b"")
    assert home.argv("qmail-smtpd") == ["bin/qmail-smtpd"] and home.stdin("qmail-smtpd") == b"QUIT\r\n"
    env = home.environ("qmail-smtpd")
    assert {k: env[k] for k in ("RELAYCLIENT", "DATABYTES", "PROTO", "TCPLOCALIP", "TCPLOCALHOST",
                                "TCPREMOTEIP", "TCPREMOTEHOST", "TCPREMOTEINFO")} == {
        "RELAYCLIENT": "", "DATABYTES": "0", "PROTO": "TCP", "TCPLOCALIP": "127.0.0.1",
        "TCPLOCALHOST": "localhost", "TCPREMOTEIP": "127.0.0.1", "TCPREMOTEHOST": "localhost",
        "TCPREMOTEINFO": "sendmail-bs"}
    home.forget()
    # under tcpserver (PROTO set) the environment is left alone
    assert home(["-bs"], env={"PROTO": "TCP", "TCPREMOTEIP": "10.0.0.1"}).rc == 0
    env = home.environ("qmail-smtpd")
    assert env["TCPREMOTEIP"] == "10.0.0.1" and "TCPREMOTEINFO" not in env and "RELAYCLIENT" not in env


@pytest.mark.parametrize("args,err", [
    (["-z"], b"sendmail: illegal option -- z\n"),
    (["-tz", "joe"], b"sendmail: illegal option -- z\n"),
    (["-:"], b"sendmail: illegal option -- :\n"),
    (["-f"], b"sendmail: option requires an argument -- f\n"),
    (["-t", "-o"], b"sendmail: option requires an argument -- o\n"),
    (["-bx"], b""),
    (["-b", ""], b""),
    (["-bd"], b""),
])
def test_usage(home: Home, args: list, err: bytes) -> None:
    r = home(args)
    assert (r.rc, r.out, r.err) == (100, b"", err + USAGE)
    assert not home.ran("qmail-inject")


def test_newaliases(home: Home) -> None:
    link = home.rec.parent / "newaliases"
    link.symlink_to(ours("sendmail"))
    r = home([], prog=str(link))
    assert (r.rc, r.err) == (100, b"sendmail: fatal: please use fastforward/newaliases instead\n")
    assert not home.ran("qmail-inject")


def test_failures(home: Home, tmp_path: Path) -> None:
    r = home(["joe"], env={"QMAILHOME": str(tmp_path / "nowhere")})
    assert (r.rc, r.err) == (111, b"sendmail: fatal: unable to switch to qmail home directory\n")
    for name, args in (("qmail-inject", ["joe"]), ("qmail-qread", ["-bp"]), ("qmail-smtpd", ["-bs"])):
        (home.home / "bin" / name).unlink()
        r = home(args)
        assert (r.rc, r.out, r.err) == (111, b"", f"sendmail: fatal: unable to run {name}\n".encode())
    # a relative QMAILHOME is taken from the current directory, as chdir does
    r = home(["joe"], env={"QMAILHOME": "."}, cwd=tmp_path)
    assert r.err == b"sendmail: fatal: unable to run qmail-inject\n"


def test_through_qmail_inject(home: Home) -> None:
    inject = home.home / "bin" / "qmail-inject"
    inject.unlink()
    inject.symlink_to(ours("qmail-inject"))
    (home.home / "control").mkdir()
    (home.home / "control" / "me").write_text("mx.example.org\n")
    msg = b"To: ann@example.com, bob\nBcc: carl@example.net\nSubject: hi\n\nhello\n"
    r = home(["-t", "-i", "-F", "Joe User", "-f", "bounces@example.org", "dave@example.com"], msg,
             env={"USER": "joe"})
    assert (r.rc, r.out, r.err) == (0, b"", b"")
    assert home.qq.envelope == (b"Fbounces@example.org\0Tdave@example.com\0Tbob@mx.example.org\0"
                                b"Tann@example.com\0Tcarl@example.net\0\0")
    sent = home.qq.message
    assert b'\nFrom: "Joe User" <joe@mx.example.org>\n' in sent
    assert sent.endswith(b"\nTo: ann@example.com, bob@mx.example.org\nSubject: hi\n\nhello\n")
    assert b"Bcc" not in sent
    # without -t the header's recipients are not used
    r = home(["dave@example.com"], msg, env={"USER": "joe"})
    assert r.rc == 0 and home.qq.envelope == b"Fjoe@mx.example.org\0Tdave@example.com\0\0"
    # a bad option reaches qmail-inject only after --, as an address
    r = home(["--", "-x"], b"", env={"USER": "joe"})
    assert r.rc == 0 and home.qq.envelope == b"Fjoe@mx.example.org\0T-x@mx.example.org\0\0"
