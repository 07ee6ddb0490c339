"""fastforward 0.51: setforward, printforward, setmaillist, printmaillist,
newaliases and fastforward, against hand-made expectations and Debian's
original binaries (``apt-get download fastforward``)."""
from __future__ import annotations

import os
import shutil
import stat
import struct
import subprocess
from pathlib import Path

import pytest

from tests import reference
from tests.helpers import ours
from tests.mta.util import MESSAGE, FakeQueue, run

FF_REF = reference.REF / "fastforward"
ENV_LINES = {"UFLINE": "From a@b Thu Jan 01 00:00:00 1970\n", "RPLINE": "Return-Path: <a@b>\n",
             "DTLINE": "Delivered-To: alias-joe@example.com\n"}


@pytest.fixture(scope="session")
def ffref() -> Path:
    """Debian's fastforward and dot-forward, unpacked (the C originals)."""
    reference.ensure(FF_REF, ("fastforward", "dot-forward"))
    return FF_REF / "usr"


def need_namespace() -> None:
    """The originals have /etc and /var/lib/qmail built in: they are run in a
    mount namespace with scratch directories bound there, which needs root."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("running the originals over /etc needs root and unshare")


def in_namespace(binds: dict[str, Path], argv: list, *, cwd: Path | None = None,
                 env: dict | None = None, input: bytes | None = None) -> subprocess.CompletedProcess:
    """Run ``argv`` with each directory of ``binds`` mounted on its key."""
    need_namespace()
    mounts = "".join(f'mount --bind "{src}" "{dst}" && ' for dst, src in binds.items())
    return subprocess.run(["unshare", "-m", "sh", "-c", mounts + 'exec "$@"', "sh", *map(str, argv)],
                          cwd=cwd, env=env, input=input, capture_output=True, timeout=60)


def sh(args: list, *, input: bytes = b"", cwd: Path | None = None, env: dict | None = None,
       umask: int | None = None) -> subprocess.CompletedProcess:
    """Run a program (ours by name, or a path) with ``input`` on stdin."""
    prog = str(args[0]) if "/" in str(args[0]) else ours(str(args[0]))
    full = dict(os.environ, **(env or {}))
    pre = (lambda: os.umask(umask)) if umask is not None else None
    return subprocess.run([prog, *map(str, args[1:])], input=input, cwd=cwd, env=full,
                          capture_output=True, timeout=30, preexec_fn=pre)


def outcome(p: subprocess.CompletedProcess) -> tuple[int, bytes, bytes]:
    return p.returncode, p.stdout, p.stderr


def setforward(tmp: Path, text: bytes, name: str = "f.cdb") -> Path:
    p = sh(["setforward", tmp / name, tmp / (name + ".tmp")], input=text)
    assert outcome(p) == (0, b"", b"")
    return tmp / name


def esc(s: str) -> str:
    """``s`` quoted for setforward's format."""
    return "".join("\\" + c if c in " \t\n,:;#\\" else c for c in s)


# setforward: the database format

def cdb_hash(key: bytes) -> int:
    h = 5381
    for c in key:
        h = ((h * 33) ^ c) & 0xFFFFFFFF
    return h


def test_setforward_writes_the_format_byte_for_byte(tmp_path: Path) -> None:
    # one record: 2048 bytes of table pointers, the record, one table of two slots
    cdb = setforward(tmp_path, b"# a comment: ignored; really\nJoe@Example.COM :\n  bob@x.org ;\n")
    key, data = b":joe@example.com", b"&bob@x.org\0"
    end = 2048 + 8 + len(key) + len(data)
    h = cdb_hash(key)
    header = b"".join(struct.pack("<LL", end if i <= h & 255 else end + 16, 2 if i == h & 255 else 0)
                      for i in range(256))
    slots = [b"\0" * 8, b"\0" * 8]
    slots[(h >> 8) % 2] = struct.pack("<LL", h, 2048)
    expected = header + struct.pack("<LL", len(key), len(data)) + key + data + b"".join(slots)
    assert cdb.read_bytes() == expected
    assert not (tmp_path / "f.cdb.tmp").exists()


SETFORWARD_CORPUS = rb"""
# every kind of command
root@yp.to: god@heaven.af.mil, &staff@af.mil;
sos@heaven.af.mil: ?owner-sos@heaven.af.mil, /etc/lists/sos.bin, ./rel.bin;
dew@: |dew-monitor, !dew\ monitor\ -v;
@host.dom: catch\,all@x.org;
# duplicates keep their order; an owner alone; an empty target
dup@x: one@x; DUP@X: two@x;
owner@x: ?o@x;
: nobody@x;
quoted\:target\#1@x: a\ b@c, \\back@slash;
mixed@x:, , a@x,, b@x ,;
"""


def test_setforward_matches_the_original(tmp_path: Path, ffref: Path) -> None:
    ours_ = setforward(tmp_path, SETFORWARD_CORPUS, "ours.cdb")
    p = sh([ffref / "bin/setforward", tmp_path / "ref.cdb", tmp_path / "ref.tmp"], input=SETFORWARD_CORPUS)
    assert outcome(p) == (0, b"", b"")
    assert ours_.read_bytes() == (tmp_path / "ref.cdb").read_bytes()


@pytest.mark.parametrize("text,message", [
    (b"a@b: c@d", "final instruction must end with semicolon"),
    (b"a@b", "final instruction must end with semicolon"),
    (b"a@b: c@d: e@f;", "double colons are not permitted"),
    (b"a@b, c@d: e@f;", "commas are not permitted before colons"),
    (b"a@b; c@d;", "commas are not permitted before colons"),
    (b"a@b: c\0d;", "NUL bytes are not permitted"),
    (b"a@b: " + b"x" * 801 + b";", "addresses over 800 bytes are not permitted"),
    (b"a@b: c@d\\", "final instruction must end with semicolon"),
])
def test_setforward_refuses_bad_input(tmp_path: Path, ffref: Path, text: bytes, message: str) -> None:
    old = setforward(tmp_path, b"old@x: y@z;\n")
    before = old.read_bytes()
    p = sh(["setforward", old, tmp_path / "f.tmp"], input=text)
    assert outcome(p) == (100, b"", f"setforward: fatal: {message}\n".encode())
    assert old.read_bytes() == before
    ref = sh([ffref / "bin/setforward", tmp_path / "r.cdb", tmp_path / "r.tmp"], input=text)
    assert outcome(ref) == outcome(p)


def test_setforward_limits_and_system_errors(tmp_path: Path) -> None:
    # 800 bytes is allowed; an "&" counts; lists and programs have no limit
    ok = b"a@b: " + b"x" * 800 + b", &" + b"y" * 799 + b", /" + b"z" * 2000 + b";"
    assert sh(["setforward", tmp_path / "ok.cdb", tmp_path / "ok.tmp"], input=ok).returncode == 0
    p = sh(["setforward", tmp_path / "x.cdb"])
    assert outcome(p) == (100, b"", b"setforward: usage: setforward data.cdb data.tmp\n")
    p = sh(["setforward", tmp_path / "x.cdb", tmp_path / "no/x.tmp"], input=b"a: b;")
    assert outcome(p) == (111, b"", f"setforward: fatal: unable to create {tmp_path}/no/x.tmp: "
                                    "file does not exist\n".encode())
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir/file").write_text("")
    p = sh(["setforward", tmp_path / "dir", tmp_path / "x.tmp"], input=b"a: b;")
    assert outcome(p)[0] == 111
    assert p.stderr.startswith(f"setforward: fatal: unable to move {tmp_path}/x.tmp to {tmp_path}/dir: "
                               .encode())


# printforward

PRINTED = b"""root@yp.to:
, &god@heaven.af.mil
, &staff@af.mil
;
sos@heaven.af.mil: ?owner-sos@heaven.af.mil;
sos@heaven.af.mil:
, /etc/lists/sos.bin
, ./rel.bin
;
dew@:
, |dew-monitor
, !dew\\ monitor\\ -v
;
@host.dom:
, &catch\\,all@x.org
;
dup@x:
, &one@x
;
dup@x:
, &two@x
;
owner@x: ?o@x;
:
, &nobody@x
;
quoted\\:target\\#1@x:
, &a\\ b@c
, &\\\\back@slash
;
mixed@x:
, &a@x
, &b@x
;
"""


def test_printforward_prints_what_setforward_reads(tmp_path: Path, ffref: Path) -> None:
    cdb = setforward(tmp_path, SETFORWARD_CORPUS)
    p = sh(["printforward"], input=cdb.read_bytes())
    assert outcome(p) == (0, PRINTED, b"")
    assert outcome(sh([ffref / "bin/printforward"], input=cdb.read_bytes())) == outcome(p)
    # printed and set again: the same database
    again = setforward(tmp_path, p.stdout, "again.cdb")
    assert again.read_bytes() == cdb.read_bytes()


def test_printforward_escapes_odd_bytes(tmp_path: Path, ffref: Path) -> None:
    cdb = setforward(tmp_path, b"hi@x: \\\x01\\\x80\\ a, \\\xff;\n")
    p = sh(["printforward"], input=cdb.read_bytes())
    assert outcome(p) == (0, b"hi@x:\n, &\\\x01\\\x80\\ a\n, &\\\xff\n;\n", b"")
    assert outcome(sh([ffref / "bin/printforward"], input=cdb.read_bytes())) == outcome(p)


def raw_cdb(records: list[tuple[bytes, bytes]]) -> bytes:
    """A database holding exactly ``records`` (no check on their contents)."""
    body = b"".join(struct.pack("<LL", len(k), len(d)) + k + d for k, d in records)
    return struct.pack("<LL", 2048 + len(body), 0) + b"\0" * 2040 + body


@pytest.mark.parametrize("db", [
    b"", b"\0" * 100, raw_cdb([(b"", b"")]), raw_cdb([(b"x", b"y")]),
    raw_cdb([(b":a", b"&b")]), raw_cdb([(b":a", b"\0")]), raw_cdb([(b":a", b"x\0")]),
    raw_cdb([(b":a", b"&" + b"x" * 899 + b"\0")]), raw_cdb([(b":a", b"&b\0")])[:-2],
])
def test_printforward_refuses_what_is_no_database(ffref: Path, db: bytes) -> None:
    p = sh(["printforward"], input=db)
    # the original's messages start "printmaillist:"
    assert (p.returncode, p.stderr) == (100, b"printmaillist: fatal: bad database format\n")
    ref = sh([ffref / "bin/printforward"], input=db)
    assert (ref.returncode, ref.stderr) == (p.returncode, p.stderr)


# setmaillist and printmaillist

def test_setmaillist_format(tmp_path: Path, ffref: Path) -> None:
    text = (b"# the list\n\ngod@heaven.af.mil  \n&djb@silverton.berkeley.edu\t\n"
            b"./other.bin\n/etc/lists/x.bin\n \n last@line.org")
    p = sh(["setmaillist", tmp_path / "l.bin", tmp_path / "l.tmp"], input=text, umask=0o077)
    assert outcome(p) == (0, b"", b"")
    data = (tmp_path / "l.bin").read_bytes()
    assert data == (b"&god@heaven.af.mil\0&djb@silverton.berkeley.edu\0./other.bin\0/etc/lists/x.bin\0"
                    b"& last@line.org\0")
    assert stat.S_IMODE((tmp_path / "l.bin").stat().st_mode) == 0o644
    ref = sh([ffref / "bin/setmaillist", tmp_path / "r.bin", tmp_path / "r.tmp"], input=text)
    assert outcome(ref) == outcome(p) and (tmp_path / "r.bin").read_bytes() == data
    p = sh(["printmaillist"], input=data)
    printed = b"&god@heaven.af.mil\n&djb@silverton.berkeley.edu\n./other.bin\n/etc/lists/x.bin\n& last@line.org\n"
    assert outcome(p) == (0, printed, b"")
    assert outcome(sh([ffref / "bin/printmaillist"], input=data)) == outcome(p)
    assert outcome(sh(["printmaillist"], input=b"")) == (0, b"", b"")


@pytest.mark.parametrize("text,message", [
    (b"a@b\nc\0d\n", "NUL in input"),
    (b"x" * 801 + b"\n", "addresses must be under 800 bytes"),
])
def test_setmaillist_refuses(tmp_path: Path, ffref: Path, text: bytes, message: str) -> None:
    p = sh(["setmaillist", tmp_path / "l.bin", tmp_path / "l.tmp"], input=text)
    assert outcome(p) == (111, b"", f"setmaillist: fatal: {message}\n".encode())
    assert not (tmp_path / "l.bin").exists()
    ref = sh([ffref / "bin/setmaillist", tmp_path / "r.bin", tmp_path / "r.tmp"], input=text)
    assert outcome(ref) == outcome(p)
    p = sh(["setmaillist", tmp_path / "l.bin"])
    assert outcome(p) == (100, b"", b"setmaillist: usage: setmaillist list.bin list.tmp\n")


@pytest.mark.parametrize("data", [b"&a@b", b"x@y\0", b"\0", b"&a\nb\0", b"&" + b"x" * 899 + b"\0"])
def test_printmaillist_refuses(ffref: Path, data: bytes) -> None:
    p = sh(["printmaillist"], input=data)
    assert (p.returncode, p.stderr) == (100, b"printmaillist: fatal: bad mailing list format\n")
    ref = sh([ffref / "bin/printmaillist"], input=data)
    assert (ref.returncode, ref.stderr) == (p.returncode, p.stderr)


# newaliases

ALIASES = b"""# comment
  continued comment
root: alice, bill
postmaster@heaven.af.mil: bob@heaven.af.mil
hostmaster:
   fred,

   joe
nocolon bob
Root2: Bob (Bob, the postmaster), Joe Shmoe <shmoe@heaven.af.mil>
fred: "spaced out mailbox"@heaven.af.mil
weather: "|weather-server -x"
sos: :include:/etc/lists/sos, : include : rel/list, :include:"./q t"
owner-sos: sos-request
@virt.dom: catch@all.org
plus: a@b+, c+, d@e, f@[1.2.3.4], g@h.i.
mixed: x;y, <a@b>, "q\\"u" , joe@
Dup: first
dup: second
last: not read without its newline"""

ALIASES_PRINTED = b"""root@:
, &bill@dh.dd.org
, &alice@dh.dd.org
;
postmaster@heaven.af.mil:
, &bob@heaven.af.mil
;
hostmaster@:
, &joe@dh.dd.org
, &fred@dh.dd.org
;
nocolon@:
, &bob@dh.dd.org
;
root2@:
, &shmoe@heaven.af.mil
, &Bob@dh.dd.org
;
fred@:
, &spaced\\ out\\ mailbox@heaven.af.mil
;
weather@:
, !weather-server\\ -x
;
sos@:
, ./q\\ t.bin
, ./rel/list.bin
, /etc/lists/sos.bin
;
sos@: ?owner-sos@dh.dd.org;
owner-sos@:
, &sos-request@dh.dd.org
;
@virt.dom:
, &catch@all.org
;
plus@:
, &g@h.i.
, &f@[1.2.3.4]
, &d@e.dd.org
, &c+@dh.dd.org
, &a@b.pd.net
;
mixed@:
, &joe@dh.dd.org
, &q"u@dh.dd.org
, &a@b.dd.org
, &y@dh.dd.org
, &x@dh.dd.org
;
dup@:
, &first@dh.dd.org
;
dup@:
, &second@dh.dd.org
;
"""


class Aliases:
    """A scratch /etc (``etc``) and qmail home with the controls (``home``)."""

    def __init__(self, root: Path, controls: dict[str, str] | None = None) -> None:
        self.etc = root / "etc"
        self.home = root / "qmail"
        self.etc.mkdir(parents=True)
        (self.home / "control").mkdir(parents=True)
        if controls is None:
            controls = {"me": "ex.com", "defaulthost": "dh", "defaultdomain": "dd.org",
                        "plusdomain": "pd.net"}
        for name, value in controls.items():
            (self.home / "control" / name).write_text(value + "\n")
        self.env = {"FASTFORWARD_ETC": str(self.etc), "QMAILHOME": str(self.home)}

    def run(self, text: bytes | None, umask: int | None = None) -> subprocess.CompletedProcess:
        if text is not None:
            (self.etc / "aliases").write_bytes(text)
        return sh(["newaliases"], env=self.env, umask=umask)

    def reference(self, ffref: Path) -> subprocess.CompletedProcess:
        """The original newaliases on the same files (cdb in ``etc``)."""
        return in_namespace({"/etc": self.etc, "/var/lib": self.home.parent},
                            [ffref / "sbin/qmail-newaliases"])

    @property
    def cdb(self) -> Path:
        return self.etc / "aliases.cdb"


def test_newaliases(tmp_path: Path) -> None:
    a = Aliases(tmp_path)
    p = a.run(ALIASES, umask=0o077)
    assert outcome(p) == (0, b"", b"")
    assert sh(["printforward"], input=a.cdb.read_bytes()).stdout == ALIASES_PRINTED
    assert stat.S_IMODE(a.cdb.stat().st_mode) == 0o644
    assert sorted(os.listdir(a.etc)) == ["aliases", "aliases.cdb"]


def test_newaliases_matches_the_original(tmp_path: Path, ffref: Path) -> None:
    a = Aliases(tmp_path / "ours")
    assert outcome(a.run(ALIASES)) == (0, b"", b"")
    b = Aliases(tmp_path / "ref")
    (b.etc / "aliases").write_bytes(ALIASES)
    assert outcome(b.reference(ffref)) == (0, b"", b"")
    assert a.cdb.read_bytes() == b.cdb.read_bytes()


def test_newaliases_controls_default_to_me(tmp_path: Path) -> None:
    a = Aliases(tmp_path, {})
    assert a.run(b"x: bob, carol@host, dave@, eve+, f@g+\n").returncode == 0
    printed = sh(["printforward"], input=a.cdb.read_bytes()).stdout
    assert printed == (b"x@:\n, &f@g.me\n, &eve+@me.me\n, &dave@me.me\n, &carol@host.me\n"
                       b", &bob@me.me\n;\n")
    shutil.rmtree(a.home / "control")
    (a.home / "control").mkdir()
    (a.home / "control/me").write_text("here.org\n")
    assert a.run(None).returncode == 0
    assert sh(["printforward"], input=a.cdb.read_bytes()).stdout.startswith(b"x@:\n, &f@g.here.org\n")


NEWALIASES_ERRORS = [
    (b"root: alice\nfoo:\n", 111, b"unable to parse this line: foo:\n"),
    (b'"|prog"\n', 111, b'unable to parse this line: "|prog"\n'),
    (b"root: alice\n  (unbalanced\n", 111, b"unable to parse this line: root: alice\n  (unbalanced\n"),
    (b"a: b )\n", 111, b"unable to parse this line: a: b )\n"),
    (b"a: Bob b@c>\n", 111, b"unable to parse this line: a: Bob b@c>\n"),
    (b"root: /var/mail/root\n", 111, b"file delivery /var/mail/root not supported"),
    (b"root: <>\n", 111, b"empty recipient addresses not permitted"),
    (b"root: :include:\n", 111, b"empty :include: filenames not permitted"),
    (b"a: b@" + b"c" * 800 + b"\n", 100, b"addresses over 800 bytes are not permitted"),
    (b"a: b\0c@d\n", 111, b"NUL not permitted in recipient addresses"),
    (b'a: "|x\0y"\n', 111, b"NUL not permitted in program names"),
    (b'a: :include:"x\0y"\n', 111, b"NUL not permitted in :include: filenames"),
]


@pytest.mark.parametrize("text,code,message", NEWALIASES_ERRORS)
def test_newaliases_refuses(tmp_path: Path, text: bytes, code: int, message: bytes) -> None:
    a = Aliases(tmp_path)
    a.run(b"old: x@y\n")
    before = a.cdb.read_bytes()
    p = a.run(text)
    assert outcome(p) == (code, b"", b"newaliases: fatal: " + message + b"\n")
    assert a.cdb.read_bytes() == before


@pytest.mark.parametrize("text,code,message", NEWALIASES_ERRORS)
def test_newaliases_refuses_as_the_original(tmp_path: Path, ffref: Path, text: bytes, code: int,
                                             message: bytes) -> None:
    a = Aliases(tmp_path)
    (a.etc / "aliases").write_bytes(text)
    ref = a.reference(ffref)
    assert outcome(ref) == (code, b"", b"newaliases: fatal: " + message + b"\n")


def test_newaliases_system_errors(tmp_path: Path) -> None:
    a = Aliases(tmp_path)
    p = sh(["newaliases"], env=a.env)
    assert outcome(p) == (111, b"", f"newaliases: fatal: unable to read {a.etc}/aliases: "
                                    "file does not exist\n".encode())
    (a.etc / "aliases").write_bytes(b"a: b\n")
    (a.home / "control/defaulthost").unlink()
    (a.home / "control/defaulthost").mkdir()
    p = sh(["newaliases"], env=a.env)
    assert outcome(p) == (111, b"", b"newaliases: fatal: unable to read controls: is a directory\n")
    env = dict(a.env, QMAILHOME=str(tmp_path / "nohome"))
    p = sh(["newaliases"], env=env)
    assert outcome(p) == (111, b"", f"newaliases: fatal: unable to chdir to {tmp_path}/nohome: "
                                    "file does not exist\n".encode())


def test_newaliases_system_errors_as_the_original(tmp_path: Path, ffref: Path) -> None:
    a = Aliases(tmp_path)
    assert outcome(a.reference(ffref)) == (111, b"", b"newaliases: fatal: unable to read /etc/aliases: "
                                                     b"file does not exist\n")
    (a.etc / "aliases").write_bytes(b"a: b\n")
    (a.home / "control/defaulthost").unlink()
    (a.home / "control/defaulthost").mkdir()
    assert outcome(a.reference(ffref)) == (111, b"", b"newaliases: fatal: unable to read controls: "
                                                     b"is a directory\n")


# fastforward

FORWARDS = br"""
joe@example.com: joe@elsewhere.org;
@example.com: catchall@elsewhere.org;
postmaster@: pm@elsewhere.org;
everybody@x.org: programmers@x.org, testers@x.org;
programmers@x.org: joe@x.org, bob@x.org;
testers@x.org: joe@x.org, fred@x.org;
loop1@x.org: loop2@x.org;
loop2@x.org: loop1@x.org;
sos@x.org: ?owner-sos@x.org, a@x.org, b@x.org;
umbrella@x.org: sos@x.org, c@x.org;
list@x.org: ./list.bin, d@x.org;
"""


class Forward:
    """A forwarding database in ``dir`` and a fake queue, for running fastforward."""

    def __init__(self, root: Path, text: bytes = FORWARDS) -> None:
        self.root = root
        self.qq = FakeQueue(root)
        self.cdb = setforward(root, text)

    def run(self, rcpt: str | None, *flags: str, sender: str | None = "sender@s.org",
            message: bytes | None = MESSAGE, env: dict | None = None):
        full = dict(self.qq.env, **ENV_LINES, **(env or {}))
        if rcpt is not None:
            full["RECIPIENT"] = rcpt
        if sender is not None:
            full["SENDER"] = sender
        return run("fastforward", [*flags, self.cdb], message=message, tmp=self.root, env=full,
                   cwd=self.root)

    def envelope(self, sender: str, *recips: str) -> bytes:
        return ("F" + sender + "\0" + "".join("T" + r + "\0" for r in recips) + "\0").encode()


def test_fastforward_forwards(tmp_path: Path) -> None:
    f = Forward(tmp_path)
    r = f.run("Joe@Example.COM")
    assert r.rc == 0 and r.out == b""
    assert r.err.startswith(b"fastforward: qp ") and r.err[16:-1].isdigit()
    assert f.qq.envelope == f.envelope("sender@s.org", "joe@elsewhere.org")
    assert f.qq.message == ENV_LINES["DTLINE"].encode() + MESSAGE


@pytest.mark.parametrize("rcpt,recips", [
    ("joe@example.com", ["joe@elsewhere.org"]),       # the address itself first
    ("jim@example.com", ["catchall@elsewhere.org"]),  # then @host
    ("postmaster@any.where", ["pm@elsewhere.org"]),   # then user@
    ("everybody@x.org", ["bob@x.org", "joe@x.org", "fred@x.org"]),  # joe once
    ("umbrella@x.org", ["sos@x.org", "c@x.org"]),     # a target with an owner is not expanded
])
def test_fastforward_targets(tmp_path: Path, rcpt: str, recips: list[str]) -> None:
    f = Forward(tmp_path)
    r = f.run(rcpt)
    assert r.rc == 0, r.err
    assert f.qq.envelope == f.envelope("sender@s.org", *recips)


def test_fastforward_owner_is_the_sender(tmp_path: Path) -> None:
    f = Forward(tmp_path)
    assert f.run("sos@x.org").rc == 0
    assert f.qq.envelope == f.envelope("owner-sos@x.org", "a@x.org", "b@x.org")
    # bounces are not given an owner
    for sender in ("", "#@[]"):
        assert f.run("sos@x.org", sender=sender).rc == 0
        assert f.qq.envelope == f.envelope(sender, "a@x.org", "b@x.org")
    assert f.run("sos@x.org", sender=None).rc == 0
    assert f.qq.envelope == f.envelope("owner-sos@x.org", "a@x.org", "b@x.org")
    assert f.run("joe@example.com", sender=None).rc == 0
    assert f.qq.envelope == f.envelope("original envelope sender", "joe@elsewhere.org")


def test_fastforward_not_found_and_passthrough(tmp_path: Path) -> None:
    f = Forward(tmp_path)
    r = f.run("nobody@nowhere.org")
    assert (r.rc, r.out, r.err) == (100, b"", b"Sorry, no mailbox here by that name. (#5.1.1)\n")
    r = f.run("nobody@nowhere.org", "-p")
    assert (r.rc, r.out, r.err) == (0, b"", b"")
    assert not f.qq.called
    r = f.run("joe@example.com", "-p")
    assert r.rc == 99 and r.err.startswith(b"fastforward: qp ")
    r = f.run("joe@example.com", "-pP")
    assert r.rc == 0
    # a loop forwards nowhere: accepted, nothing sent
    (f.qq.dir / "env").unlink()
    r = f.run("loop1@x.org")
    assert (r.rc, r.err) == (0, b"") and not f.qq.called
    assert f.run("loop1@x.org", "-p").rc == 99


def test_fastforward_default_recipient(tmp_path: Path) -> None:
    f = Forward(tmp_path)
    r = f.run(None, "-d", env={"DEFAULT": "joe", "EXT": "x", "HOST": "example.com"})
    assert r.rc == 0 and f.qq.envelope == f.envelope("sender@s.org", "joe@elsewhere.org")
    r = f.run("joe@example.com", "-d", env={"EXT": "postmaster", "HOST": "y.org"})
    assert r.rc == 0 and f.qq.envelope == f.envelope("sender@s.org", "pm@elsewhere.org")
    r = f.run("joe@example.com", "-dD")
    assert r.rc == 0 and f.qq.envelope == f.envelope("sender@s.org", "joe@elsewhere.org")
    r = f.run(None, "-d", env={"HOST": "y.org"})
    assert (r.rc, r.err) == (100, b"fastforward: fatal: $DEFAULT or $EXT must be set\n")
    r = f.run(None, "-d", env={"EXT": "joe"})
    assert (r.rc, r.err) == (100, b"fastforward: fatal: $HOST must be set\n")
    r = f.run(None)
    assert (r.rc, r.err) == (100, b"fastforward: fatal: $RECIPIENT must be set\n")


def test_fastforward_mailing_lists(tmp_path: Path) -> None:
    f = Forward(tmp_path)
    p = sh(["setmaillist", tmp_path / "list.bin", tmp_path / "list.tmp"],
           input=b"m1@y.org\n&m2@y.org\n./sub.bin\njoe@x.org\n")
    assert p.returncode == 0
    p = sh(["setmaillist", tmp_path / "sub.bin", tmp_path / "sub.tmp"], input=b"m3@y.org\n./list.bin\n")
    assert p.returncode == 0
    r = f.run("list@x.org")
    assert r.rc == 0, r.err
    assert f.qq.envelope == f.envelope("sender@s.org", "m1@y.org", "m2@y.org", "m3@y.org",
                                       "joe@x.org", "d@x.org")
    os.chmod(tmp_path / "sub.bin", 0o640)
    r = f.run("list@x.org")
    assert (r.rc, r.err) == (111, b"fastforward: fatal: ./sub.bin is not world-readable\n")
    os.unlink(tmp_path / "sub.bin")
    r = f.run("list@x.org")
    assert (r.rc, r.err) == (111, b"fastforward: fatal: unable to read ./sub.bin: file does not exist\n")


def test_fastforward_programs(tmp_path: Path) -> None:
    out1, out2 = tmp_path / "out1", tmp_path / "out2"
    text = f"""p@x.org: |cat\\ >{esc(str(out1))}, !cat\\ >{esc(str(out2))}, q@y.org;
perm@x.org: |exit\\ 100; perm64@x.org: |exit\\ 64; temp@x.org: |exit\\ 3;
crash@x.org: |kill\\ -9\\ $$; cd@x.org: |cat\\ >/dev/null, r@y.org;
""".encode()
    f = Forward(tmp_path, text)
    r = f.run("p@x.org")
    assert r.rc == 0 and r.err.startswith(b"fastforward: qp ")
    assert out1.read_bytes() == MESSAGE
    assert out2.read_bytes() == "".join(ENV_LINES.values()).encode() + MESSAGE
    # after each program the message is read again from its start
    assert f.qq.message == ENV_LINES["DTLINE"].encode() + MESSAGE
    assert f.qq.envelope == f.envelope("sender@s.org", "q@y.org")
    for rcpt, code in (("perm@x.org", 100), ("perm64@x.org", 100), ("temp@x.org", 111)):
        r = f.run(rcpt)
        assert (r.rc, r.out, r.err) == (code, b"", b"")
    r = f.run("crash@x.org")
    assert r.rc == 111 and r.err.startswith(b"fastforward: fatal: child crashed in |kill -9 $$")
    big = b"Subject: big\n\n" + b"x" * 999 + b"\n" * 300
    r = f.run("cd@x.org", message=big)
    assert r.rc == 0 and f.qq.message == ENV_LINES["DTLINE"].encode() + big


def test_fastforward_queue_failures(tmp_path: Path) -> None:
    f = Forward(tmp_path)
    f.qq.exit_with(31)
    r = f.run("joe@example.com")
    assert (r.rc, r.err) == (100, b"fastforward: fatal: mail server permanently rejected message (#5.3.0)\n")
    f.qq.exit_with(53)
    r = f.run("joe@example.com", "-p")
    assert (r.rc, r.err) == (111, b"fastforward: fatal: qq write error or disk full (#4.3.0)\n")


def test_fastforward_bad_databases(tmp_path: Path) -> None:
    f = Forward(tmp_path)
    full = f.cdb.read_bytes()
    for data in (b"", full[:1000], full[:2100]):
        f.cdb.write_bytes(data)
        r = f.run("joe@example.com")
        assert (r.rc, r.err) == (111, f"fastforward: fatal: unable to read {f.cdb}: "
                                      "input/output error\n".encode())
    f.cdb.unlink()
    r = f.run("joe@example.com")
    assert (r.rc, r.err) == (111, f"fastforward: fatal: unable to read {f.cdb}: "
                                  "file does not exist\n".encode())
    f.cdb.mkdir()
    r = f.run("joe@example.com")
    assert (r.rc, r.err) == (111, f"fastforward: fatal: unable to read {f.cdb}: is a directory\n".encode())
    assert not f.qq.called
    r = run("fastforward", [], tmp=tmp_path)
    assert (r.rc, r.err) == (100, b"fastforward: usage: fastforward [ -nNpP ] data.cdb\n")
    r = run("fastforward", ["-x", "f.cdb"], tmp=tmp_path)
    assert (r.rc, r.err) == (100, b"fastforward: illegal option -- x\n"
                                  b"fastforward: usage: fastforward [ -nNpP ] data.cdb\n")


NOPRINT = FORWARDS + (b"prog@x.org: |echo\\ hi, !cat\\ >/dev/null, joe@x.org;\n"
                      b"odd@x.org: \\ tab\\\tand\\,ctl@x.org, h\\\x01g\\\x80h@x.org;\n")


@pytest.mark.parametrize("rcpt,flags", [
    ("prog@x.org", ["-n"]), ("everybody@x.org", ["-n"]), ("sos@x.org", ["-n"]), ("odd@x.org", ["-n"]),
    ("loop1@x.org", ["-n"]), ("loop1@x.org", ["-np"]), ("nobody@x.org", ["-n"]), ("nobody@x.org", ["-pn"]),
    ("list@x.org", ["-n"]), ("umbrella@x.org", ["-nd"]), ("joe@example.com", ["-Nn", "-p"]),
])
def test_fastforward_n_as_the_original(tmp_path: Path, ffref: Path, rcpt: str, flags: list[str]) -> None:
    f = Forward(tmp_path, NOPRINT)
    assert sh(["setmaillist", tmp_path / "list.bin", tmp_path / "list.tmp"], input=b"m1@y.org\n").returncode == 0
    env = dict(f.qq.env, RECIPIENT=rcpt, SENDER="s@s.org", EXT="umbrella", HOST="x.org")
    ours_ = sh(["fastforward", *flags, f.cdb], env=env, cwd=tmp_path)
    ref = sh([ffref / "bin/fastforward", *flags, f.cdb], env=env, cwd=tmp_path)
    assert outcome(ours_) == outcome(ref)
    assert not f.qq.called


def test_fastforward_n_output(tmp_path: Path) -> None:
    f = Forward(tmp_path, NOPRINT)
    r = f.run("prog@x.org", "-n", message=None)
    assert (r.rc, r.out, r.err) == (0, b"", b"run |echo hi\nrun !cat >/dev/null\nfrom <sender@s.org>\n"
                                            b"to <joe@x.org>\n")
    r = f.run("odd@x.org", "-n", message=None)
    assert r.err == b"from <sender@s.org>\nto < tab_and,ctl@x.org>\nto <h_g_h@x.org>\n"
    r = f.run("loop1@x.org", "-n", message=None)
    assert (r.rc, r.err) == (0, b"no forwarding\n")
    assert not f.qq.called


def test_newaliases_then_fastforward(tmp_path: Path) -> None:
    a = Aliases(tmp_path)
    out = tmp_path / "weather.out"
    text = f"""root: alice, Bill@Else.Where
postmaster: root
weather: "|cat > {out}"
sos: :include:{tmp_path}/sos
owner-sos: sos-owner@dh.dd.org
""".encode()
    assert outcome(a.run(text)) == (0, b"", b"")
    assert sh(["setmaillist", tmp_path / "sos.bin", tmp_path / "sos.tmp"], input=b"x@y.org\nroot@dh.dd.org\n")\
        .returncode == 0
    qq = FakeQueue(tmp_path / "q")
    env = dict(qq.env, **ENV_LINES, SENDER="s@s.org")
    r = run("fastforward", ["-d", a.cdb], tmp=tmp_path, env=dict(env, EXT="postmaster", HOST="dh.dd.org"))
    assert r.rc == 0, r.err
    assert qq.envelope == b"Fs@s.org\0Troot@dh.dd.org\0\0"  # no wildcards past the recipient
    r = run("fastforward", [a.cdb], tmp=tmp_path, env=dict(env, RECIPIENT="root@dh.dd.org"))
    assert r.rc == 0, r.err
    assert qq.envelope == b"Fs@s.org\0TBill@Else.Where\0Talice@dh.dd.org\0\0"
    r = run("fastforward", [a.cdb], tmp=tmp_path, env=dict(env, RECIPIENT="weather@any.host"))
    assert (r.rc, r.err) == (0, b"")
    assert out.read_bytes() == "".join(ENV_LINES.values()).encode() + MESSAGE
    r = run("fastforward", [a.cdb], tmp=tmp_path, env=dict(env, RECIPIENT="sos@dh.dd.org"))
    assert r.rc == 0, r.err
    assert qq.envelope == b"Fowner-sos@dh.dd.org\0Tx@y.org\0Troot@dh.dd.org\0\0"
