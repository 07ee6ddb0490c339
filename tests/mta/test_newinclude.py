"""fastforward 0.51's newinclude: :include: files to binary mailing lists, against
hand-made expectations and Debian's original (run over a scratch /var/lib/qmail)."""
from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from tests.helpers import ours
from tests.mta.test_fastforward import Forward, ffref, in_namespace, outcome  # noqa: F401

CONTROLS = {"me": "ex.com", "defaulthost": "dh", "defaultdomain": "dd.org", "plusdomain": "pd.net"}
#: the variables newinclude reads besides the controls: kept out of the tests' environment
OVERRIDES = ("QMAILDEFAULTDOMAIN", "QMAILDEFAULTHOST", "QMAILPLUSDOMAIN")

LIST = b"""# the sos list: a comment
alice, bob@heaven.af.mil (Bob)
Joe Shmoe <shmoe@heaven.af.mil>, "spaced out"@x.org
plus+, d@e+, f@, g@[1.2.3.4], h@i.j.

  # not a comment: a blank comes first
:include:sub.bin, :include:/etc/lists/abs, : include : ./rel, :include:"q t"
<>, x;y, "q\\"u"@z.org
last@line.without.newline"""

LIST_BIN = (b"&bob@heaven.af.mil\0&alice@dh.dd.org\0"
            b"&spaced out@x.org\0&shmoe@heaven.af.mil\0"
            b"&h@i.j.\0&g@[1.2.3.4]\0&f@.dd.org\0&d@e.pd.net\0&plus+@dh.dd.org\0"
            b"&first@dh.dd.org\0&comes@dh.dd.org\0&blank@dh.dd.org\0&a@dh.dd.org\0&comment@dh.dd.org\0"
            b"&a@dh.dd.org\0&not@dh.dd.org\0&#@dh.dd.org\0"
            b"./q t\0./rel\0/etc/lists/abs\0./sub.bin\0"
            b'&q"u@z.org\0&y@dh.dd.org\0&x@dh.dd.org\0'
            b"&last@line.without.newline\0")


class Lists:
    """A qmail home with the controls (``home``) and a directory for lists (``dir``)."""

    def __init__(self, root: Path, controls: dict[str, str] | None = CONTROLS) -> None:
        self.home = root / "qmail"
        self.dir = root / "lists"
        (self.home / "control").mkdir(parents=True)
        self.dir.mkdir()
        for name, value in (controls or {}).items():
            (self.home / "control" / name).write_text(value + "\n")
        self.env = {k: v for k, v in os.environ.items() if k not in OVERRIDES}

    def write(self, text: bytes, name: str = "list") -> None:
        (self.dir / name).write_bytes(text)

    def run(self, *args: str, env: dict | None = None,
            umask: int | None = None) -> subprocess.CompletedProcess:
        """Our newinclude in ``dir``."""
        full = dict(self.env, QMAILHOME=str(self.home), **(env or {}))
        pre = (lambda: os.umask(umask)) if umask is not None else None
        return subprocess.run([ours("newinclude"), *args], cwd=self.dir, env=full, capture_output=True,
                              timeout=30, preexec_fn=pre)

    def reference(self, ffref: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
        """The original in ``dir``, its /var/lib/qmail being ``home``."""
        return in_namespace({"/var/lib": self.home.parent}, [ffref / "bin/newinclude", *args],
                            cwd=self.dir, env=dict(self.env, **(env or {})))

    def files(self) -> dict[str, bytes | None]:
        """What is in ``dir``: the contents of each file, None for a directory."""
        return {p.name: None if p.is_dir() else p.read_bytes() for p in sorted(self.dir.iterdir())}


def both(tmp_path: Path, ffref: Path, text: bytes | None, *args: str, env: dict | None = None,
         prepare=None) -> tuple[Lists, Lists, subprocess.CompletedProcess, subprocess.CompletedProcess]:
    """Ours and the original on the same list in two scratch trees."""
    trees = Lists(tmp_path / "ours"), Lists(tmp_path / "ref")
    for t in trees:
        if text is not None:
            t.write(text)
        if prepare is not None:
            prepare(t)
    return (*trees, trees[0].run(*args, env=env), trees[1].reference(ffref, *args, env=env))


def test_newinclude_writes_the_list(tmp_path: Path) -> None:
    t = Lists(tmp_path)
    t.write(LIST)
    assert outcome(t.run("list", umask=0o077)) == (0, b"", b"")
    assert t.files() == {"list": LIST, "list.bin": LIST_BIN}
    assert stat.S_IMODE((t.dir / "list.bin").stat().st_mode) == 0o644
    t.write(b"")
    assert outcome(t.run("list", "ignored")) == (0, b"", b"")
    assert (t.dir / "list.bin").read_bytes() == b""


@pytest.mark.parametrize("env", [None, {"QMAILDEFAULTDOMAIN": "env.dom", "QMAILDEFAULTHOST": "eh",
                                        "QMAILPLUSDOMAIN": ""}])
def test_newinclude_matches_the_original(tmp_path: Path, ffref: Path, env: dict | None) -> None:
    ours_, ref, p, r = both(tmp_path, ffref, LIST, "list", env=env)
    assert outcome(p) == outcome(r) == (0, b"", b"")
    assert ours_.files() == ref.files()
    if env is None:
        assert ours_.files()["list.bin"] == LIST_BIN
    else:
        assert b"&alice@eh.env.dom\0" in ours_.files()["list.bin"]


def test_newinclude_controls(tmp_path: Path, ffref: Path) -> None:
    ours_, ref, p, r = both(tmp_path / "none", ffref, b"bob, c@d, e+\n", "list",
                            prepare=lambda t: shutil.rmtree(t.home / "control"))
    assert outcome(p) == outcome(r) == (0, b"", b"")
    assert ours_.files()["list.bin"] == ref.files()["list.bin"] == b"&e+@me.me\0&c@d.me\0&bob@me.me\0"

    def me_and_cr(t: Lists) -> None:
        (t.home / "control/defaulthost").unlink()
        (t.home / "control/defaultdomain").unlink()
        (t.home / "control/me").write_bytes(b"here.org \t\n")
        (t.home / "control/plusdomain").write_bytes(b"cr\r\n")  # a carriage return stays

    ours_, ref, p, r = both(tmp_path / "me", ffref, b"bob, x@y+\n", "list", prepare=me_and_cr)
    assert outcome(p) == outcome(r) == (0, b"", b"")
    assert ours_.files()["list.bin"] == ref.files()["list.bin"] == b"&x@y.cr\r\0&bob@here.org\0"


ERRORS = [
    (b"a, b )\n", b"unable to parse this line: a, b )\n"),
    (b"ok\nJoe joe@x>\n", b"unable to parse this line: Joe joe@x>\n"),
    (b"a@b, (c, d@e", b"unable to parse this line: a@b, (c, d@e"),
    (b'x, "unterminated\\"\n', b'unable to parse this line: x, "unterminated\\"\n'),
    (b"parse\0error )\n", b"unable to parse this line: parse"),
    (b"a, /var/mail/x\n", b"file delivery /var/mail/x not supported"),
    (b'a, "|prog x"\n', b"program delivery |prog x not supported"),
    (b'"|prog\0x"\n', b"program delivery |prog not supported"),
    (b":include:\n", b"empty :include: filenames not permitted"),
    (b":include:x\\\n", b"newlines not permitted in :include: filenames"),
    (b':include:"a\0b"\n', b"NUL not permitted in :include: filenames"),
    (b"a\\\n", b"newlines not permitted in recipient addresses"),
    (b"a\0b\n", b"NUL not permitted in recipient addresses"),
    (b"x@" + b"y" * 798 + b".\n", b"addresses must be under 800 bytes"),
    (b'x@"a. "\n', b"spaces and tabs not permitted at ends of addresses"),
]


@pytest.mark.parametrize("text,message", ERRORS)
def test_newinclude_refuses(tmp_path: Path, text: bytes, message: bytes) -> None:
    t = Lists(tmp_path)
    t.write(b"old@x.org\n")
    assert t.run("list").returncode == 0
    t.write(text)
    assert outcome(t.run("list")) == (111, b"", b"newinclude: fatal: " + message + b"\n")
    assert t.files() == {"list": text, "list.bin": b"&old@x.org\0", "list.tmp": b""}


@pytest.mark.parametrize("text,message", ERRORS)
def test_newinclude_refuses_as_the_original(tmp_path: Path, ffref: Path, text: bytes, message: bytes) -> None:
    ours_, ref, p, r = both(tmp_path, ffref, text, "list")
    assert outcome(p) == outcome(r) == (111, b"", b"newinclude: fatal: " + message + b"\n")
    assert ours_.files() == ref.files()


def test_newinclude_limits(tmp_path: Path, ffref: Path) -> None:
    longest = b"x@" + b"y" * 796 + b"."  # 800 bytes
    text = longest + b"\n:include:" + b"z" * 2000 + b"\n"
    ours_, ref, p, r = both(tmp_path, ffref, text, "list")
    assert outcome(p) == outcome(r) == (0, b"", b"")
    assert ours_.files() == ref.files()
    assert ours_.files()["list.bin"] == b"&" + longest + b"\0./" + b"z" * 2000 + b"\0"


def unwritable_tmp(t: Lists) -> None:
    (t.dir / "list.tmp").mkdir()


def unrenamable(t: Lists) -> None:
    (t.dir / "list.bin").mkdir()
    (t.dir / "list.bin" / "full").write_bytes(b"")


def unreadable_controls(t: Lists) -> None:
    (t.home / "control/defaulthost").unlink()
    (t.home / "control/defaulthost").mkdir()


SYSTEM_ERRORS = [
    ([], None, 100, b"newinclude: usage: newinclude list\n"),
    (["missing"], None, 111, b"newinclude: fatal: unable to read missing: file does not exist\n"),
    (["."], None, 111, b"newinclude: fatal: unable to read .: is a directory\n"),
    (["list"], unwritable_tmp, 111, b"newinclude: fatal: unable to write to list.tmp: is a directory\n"),
    (["list"], unrenamable, 111, b"newinclude: fatal: unable to move list.tmp to list.bin: is a directory\n"),
    (["list"], unreadable_controls, 111, b"newinclude: fatal: unable to read controls: is a directory\n"),
    ([], unreadable_controls, 111, b"newinclude: fatal: unable to read controls: is a directory\n"),
]


@pytest.mark.parametrize("args,prepare,code,message", SYSTEM_ERRORS)
def test_newinclude_system_errors(tmp_path: Path, ffref: Path, args: list[str], prepare, code: int,
                                  message: bytes) -> None:
    ours_, ref, p, r = both(tmp_path, ffref, b"a@b.c\n", *args, prepare=prepare)
    assert outcome(p) == outcome(r) == (code, b"", message)
    assert ours_.files() == ref.files()


def test_newinclude_without_qmail_home(tmp_path: Path, ffref: Path) -> None:
    ours_, ref, p, r = both(tmp_path, ffref, b"a@b.c\n", "list",
                            prepare=lambda t: shutil.rmtree(t.home))
    assert outcome(p) == (111, b"", f"newinclude: fatal: unable to chdir to {ours_.home}: "
                                    "file does not exist\n".encode())
    assert outcome(r) == (111, b"", b"newinclude: fatal: unable to chdir to /var/lib/qmail: "
                                    b"file does not exist\n")
    assert ours_.files() == ref.files() == {"list": b"a@b.c\n"}


def test_newinclude_then_fastforward(tmp_path: Path) -> None:
    f = Forward(tmp_path)  # list@x.org: ./list.bin, d@x.org
    (f.qq.home / "control").mkdir()
    (f.qq.home / "control/me").write_text("x.org\n")
    env = {"QMAILHOME": str(f.qq.home)}
    for name, text in (("list", b"m1@y.org, m2\n:include:sub.bin\n"), ("sub", b"m3@y.org\n")):
        (tmp_path / name).write_bytes(text)
        p = subprocess.run([ours("newinclude"), name], cwd=tmp_path, env=dict(os.environ, **env),
                           capture_output=True, timeout=30)
        assert outcome(p) == (0, b"", b"")
    r = f.run("list@x.org")
    assert r.rc == 0, r.err
    assert f.qq.envelope == f.envelope("sender@s.org", "m2@x.org", "m1@y.org", "m3@y.org", "d@x.org")
