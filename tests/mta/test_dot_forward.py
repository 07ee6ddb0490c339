"""dot-forward 0.71: .forward files under qmail, against hand-made expectations
and Debian's original (run over a scratch /var/lib/qmail)."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.mta.test_fastforward import ENV_LINES, ffref, in_namespace, outcome, sh  # noqa: F401
from tests.mta.util import MESSAGE, FakeQueue, run

CONTROLS = {"me": "ex.com", "defaulthost": "dh", "defaultdomain": "dd.org", "plusdomain": "pd.net"}


class Home:
    """A user's home with a .forward, the environment qmail-local gives, a fake queue."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.qq = FakeQueue(root)
        (self.qq.home / "control").mkdir()
        for name, value in CONTROLS.items():
            (self.qq.home / "control" / name).write_text(value + "\n")
        self.home = root / "home"
        self.home.mkdir()
        self.env = dict(self.qq.env, **ENV_LINES, HOME=str(self.home), USER="joe", LOCAL="joe",
                        HOST="host.x", RECIPIENT="joe@host.x", SENDER="s@s.org", NEWSENDER="s@s.org",
                        EXT="", DEFAULT="")

    def forward(self, text: bytes, name: str = ".forward") -> None:
        (self.home / name).write_bytes(text)

    def run(self, *args: str, message: bytes | None = MESSAGE, env: dict | None = None):
        full = {k: v for k, v in dict(self.env, **(env or {})).items() if v is not None}
        return run("dot-forward", list(args or [".forward"]), message=message, tmp=self.root,
                   env=full, cwd=self.home)


def envelope(sender: str, *recips: str) -> bytes:
    return ("F" + sender + "\0" + "".join("T" + r + "\0" for r in recips) + "\0").encode()


def test_forwarding(tmp_path: Path) -> None:
    h = Home(tmp_path)
    h.forward(b"# my addresses\nbob, fred (Fred) , Joe Shmoe <shmoe@heaven.af.mil>\n"
              b'"spaced out"@a.b, y+, z@w+, x@\n')
    r = h.run()
    assert r.rc == 99 and r.out == b""
    assert r.err.startswith(b"dot-forward: info: qp ") and r.err[22:-1].isdigit()
    # each line from right to left
    assert h.qq.envelope == envelope("s@s.org", "shmoe@heaven.af.mil", "fred@dh.dd.org", "bob@dh.dd.org",
                                     "x@.dd.org", "z@w.pd.net", "y+@dh.dd.org", "spaced out@a.b")
    assert h.qq.message == ENV_LINES["DTLINE"].encode() + MESSAGE
    r = h.run(env={"NEWSENDER": None})
    assert r.rc == 99 and h.qq.envelope.startswith(b"F\0T")


def test_no_file_or_empty_file(tmp_path: Path) -> None:
    h = Home(tmp_path)
    r = h.run()
    assert (r.rc, r.out, r.err) == (0, b"", b"")
    h.forward(b"# nothing but comments\n\n", ".forward")
    h.forward(b"second@x.org\n", ".forward2")
    r = h.run(".forward", ".missing", ".forward2")
    assert r.rc == 99 and h.qq.envelope == envelope("s@s.org", "second@x.org")
    (h.qq.dir / "env").unlink()
    r = h.run(".forward", ".missing")
    assert (r.rc, r.err) == (0, b"") and not h.qq.called


@pytest.mark.parametrize("me", ["joe", "JOE", "\\joe", "Joe@Host.X", "Joe Bloggs <joe@host.x>"])
def test_direct_delivery(tmp_path: Path, me: str) -> None:
    h = Home(tmp_path)
    h.forward(f"{me}, bob@elsewhere.org\n".encode())
    r = h.run()
    assert r.rc == 0 and r.err.startswith(b"dot-forward: info: qp ")
    assert h.qq.envelope == envelope("s@s.org", "bob@elsewhere.org")
    h.forward(f"{me}\n".encode())
    (h.qq.dir / "env").unlink()
    r = h.run()
    assert (r.rc, r.err) == (0, b"") and not h.qq.called


def test_programs(tmp_path: Path) -> None:
    h = Home(tmp_path)
    out = tmp_path / "vacation.out"
    h.forward(f'"|cat > {out}", bob@x.org\n'.encode())
    r = h.run()
    assert r.rc == 99, r.err
    assert out.read_bytes() == "".join(ENV_LINES.values()).encode() + MESSAGE
    # the message is read again from its start for the forward
    assert h.qq.message == ENV_LINES["DTLINE"].encode() + MESSAGE
    assert h.qq.envelope == envelope("s@s.org", "bob@x.org")
    # a command that reads nothing of a big message does not hang dot-forward
    h.forward(b'"|true"\n')
    r = h.run(message=b"Subject: big\n\n" + b"x" * 1000000)
    assert (r.rc, r.err) == (99, b"")
    # an @ makes it an address
    h.forward(b'"|prog"@x.org\n')
    assert h.run().rc == 99 and h.qq.envelope == envelope("s@s.org", "|prog@x.org")


@pytest.mark.parametrize("command,code,err", [
    ("exit 100", 100, b""), ("exit 64", 100, b""), ("exit 112", 100, b""), ("exit 1", 111, b""),
    ("kill -9 $$", 111, b"dot-forward: fatal: child crashed\n"),
])
def test_program_failures(tmp_path: Path, command: str, code: int, err: bytes) -> None:
    h = Home(tmp_path)
    h.forward(f'"|{command}", bob@x.org\n'.encode())
    r = h.run()
    assert (r.rc, r.out, r.err) == (code, b"", err)
    assert not h.qq.called


@pytest.mark.parametrize("text,err", [
    (b"/var/mail/joe\n", b"dot-forward: fatal: file delivery /var/mail/joe not supported\n"),
    (b"a, (b\n", b"dot-forward: fatal: unable to parse this line: a, (b\n\n"),
    (b"bob@x.org\na >b\n", b"dot-forward: fatal: unable to parse this line: a >b\n\n"),
])
def test_refusals(tmp_path: Path, text: bytes, err: bytes) -> None:
    h = Home(tmp_path)
    h.forward(text)
    r = h.run()
    assert (r.rc, r.out, r.err) == (111, b"", err)
    assert not h.qq.called


def test_system_errors(tmp_path: Path) -> None:
    h = Home(tmp_path)
    (h.home / ".forward").mkdir()
    r = h.run()
    assert (r.rc, r.err) == (111, b"dot-forward: fatal: unable to read .forward: is a directory\n")
    (h.home / ".forward").rmdir()
    h.forward(b"bob@x.org\n")
    r = h.run(env={"QMAILHOME": str(tmp_path / "nohome")})
    assert (r.rc, r.err) == (111, f"dot-forward: fatal: unable to chdir to {tmp_path}/nohome: "
                                  "file does not exist\n".encode())
    h.qq.exit_with(31)
    r = h.run()
    assert (r.rc, r.err) == (100, b"dot-forward: fatal: unable to forward message: "
                                  b"mail server permanently rejected message (#5.3.0)\n")
    h.qq.exit_with(53)
    r = h.run()
    assert (r.rc, r.err) == (111, b"dot-forward: fatal: unable to forward message: "
                                  b"qq write error or disk full (#4.3.0)\n")
    r = h.run("-x")
    assert (r.rc, r.err) == (100, b"dot-forward: illegal option -- x\n"
                                  b"dot-forward: usage: dot-forward [ -nN ] file ...\n")


FORWARD = b"""# comment
bob, fred (Fred) , Joe Shmoe <shmoe@heaven.af.mil>
"|vacation bob"
\\joe, JOE@Host.x, x@ , y+, "spaced out"@a.b, z@w+, [1.2.3.4]

<>, a@b.c;d
"""


def test_n_prints_the_instructions(tmp_path: Path) -> None:
    h = Home(tmp_path)
    h.forward(FORWARD)
    r = h.run("-n", ".forward", message=None)
    assert (r.rc, r.out) == (0, b"")
    assert r.err == (b"forward shmoe@heaven.af.mil\nforward fred@dh.dd.org\nforward bob@dh.dd.org\n"
                     b"pipe through vacation bob\nforward [1.2.3.4]@dh.dd.org\nforward z@w.pd.net\n"
                     b"forward spaced out@a.b\nforward y+@dh.dd.org\nforward x@.dd.org\n"
                     b"forward d@dh.dd.org\nforward a@b.c\ndirect delivery\n")
    assert not h.qq.called
    r = h.run("-n", ".none", message=None)
    assert (r.rc, r.err) == (0, b"direct delivery\n")
    h.forward(b"#\n", ".empty")
    h.forward(b"a@b.c\n", ".f2")
    r = h.run("-n", ".empty", ".f2", message=None)
    assert (r.rc, r.err) == (99, b"skipping empty file .empty\nforward a@b.c\n")
    r = h.run("-nN", ".f2")
    assert r.rc == 99 and h.qq.called


@pytest.mark.parametrize("text,args", [
    (FORWARD, ["-n", ".forward"]), (FORWARD, ["-n", ".none"]), (b"#\n", ["-n", ".forward", ".none"]),
    (b"a, (b\n", ["-n", ".forward"]), (b"x: /dev/null\n", ["-n", ".forward"]),
    (b'a@b, "|exit 0", c\n', ["-n", ".forward"]), (b"a >b\n", ["-n", ".forward"]),
])
def test_n_as_the_original(tmp_path: Path, ffref: Path, text: bytes, args: list[str]) -> None:  # noqa: F811
    h = Home(tmp_path)
    h.forward(text)
    env = {"USER": "joe", "HOST": "host.x", "PATH": "/usr/bin:/bin", "QMAILHOME": str(h.qq.home)}
    ours_ = sh(["dot-forward", *args], env=env, cwd=h.home)
    (tmp_path / "qmail").symlink_to("qmailhome")  # the original's /var/lib/qmail
    ref = in_namespace({"/var/lib": tmp_path}, [ffref / "bin/dot-forward", *args], cwd=h.home, env=env)
    assert outcome(ours_) == outcome(ref)
