"""qmail-newu, the users/cdb lookup, qmail-getpw and qmail-pw2u (qmail-users(5))."""
from __future__ import annotations

import os
import pwd
import subprocess
import uuid
from pathlib import Path

import pytest

from pyqmail import cdb, users
from tests import reference
from tests.helpers import ours, account_cmd

ASSIGN = b"""\
=joe:joe:1001:100:/home/joe:::
=Mary:mary:1002:100:/home/mary:-:list:
+joe-:joe:1001:100:/home/joe:-::
+:alias:7790:2108:/var/qmail/alias:-::
+list-:mary:1002:100:/home/mary:-:l-:
+Big.:big:1003:100:/home/big:-::
.
ignored after the dot
"""


def run(prog: str, args: list[str], home: Path, *, input: bytes = b"",
        env: dict | None = None) -> subprocess.CompletedProcess:
    e = dict(os.environ, QMAILHOME=str(home))
    if env:
        e.update(env)
    return subprocess.run([ours(prog), *args], input=input, env=e, capture_output=True, timeout=30)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    (tmp_path / "users").mkdir()
    return tmp_path


def newu(home: Path, assign: bytes) -> subprocess.CompletedProcess:
    (home / "users" / "assign").write_bytes(assign)
    return run("qmail-newu", [], home)


# qmail-newu

def test_newu_records(home: Path) -> None:
    r = newu(home, ASSIGN)
    assert (r.returncode, r.stdout, r.stderr) == (0, b"", b"")
    assert not (home / "users" / "cdb.tmp").exists()
    assert (home / "users" / "cdb").stat().st_mode & 0o777 == 0o644
    with cdb.Reader(str(home / "users" / "cdb")) as db:
        assert list(db) == [
            (b"!joe\0", b"joe\x001001\x00100\x00/home/joe\x00\x00"),
            (b"!mary\0", b"mary\x001002\x00100\x00/home/mary\x00-\x00list"),
            (b"!joe-", b"joe\x001001\x00100\x00/home/joe\x00-\x00"),
            (b"!", b"alias\x007790\x002108\x00/var/qmail/alias\x00-\x00"),
            (b"!list-", b"mary\x001002\x00100\x00/home/mary\x00-\x00l-"),
            (b"!big.", b"big\x001003\x00100\x00/home/big\x00-\x00"),
            (b"", b"-."),
        ]


def test_newu_bytes_match_tinycdb(home: Path, tmp_path: Path) -> None:
    assert newu(home, ASSIGN).returncode == 0
    ours_ = (home / "users" / "cdb").read_bytes()
    with cdb.Reader(str(home / "users" / "cdb")) as db:
        records = list(db)
    prog, env = reference.cdb_tool()
    text = b"".join(b"+%d,%d:%s->%s\n" % (len(k), len(v), k, v) for k, v in records) + b"\n"
    subprocess.run([prog, "-c", str(tmp_path / "t.cdb")], input=text, env=env, check=True)
    assert (tmp_path / "t.cdb").read_bytes() == ours_


@pytest.mark.parametrize("assign", [
    b"=joe:joe:1:1:/h:::\n",                 # no dot line
    b"=joe:joe:1:1:/h:::",                   # last line without newline
    b"=joe:joe:1:1:/h::\n.\n",               # five colons
    b"joe\n.\n",                             # no colon
    b":joe:1:1:/h:::\n.\n",                  # colon first
    b"=jo\0e:joe:1:1:/h:::\n.\n",            # NUL
    b"\n.\n",                                # blank line
])
def test_newu_bad_format(home: Path, assign: bytes) -> None:
    r = newu(home, assign)
    assert (r.returncode, r.stderr) == (111, b"qmail-newu: fatal: bad format in users/assign\n")
    assert not (home / "users" / "cdb").exists()


def test_newu_dot_only_and_dot_prefix(home: Path) -> None:
    assert newu(home, b".").returncode == 0  # a final "." without newline is enough
    with cdb.Reader(str(home / "users" / "cdb")) as db:
        assert list(db) == [(b"", b"")]
    assert newu(home, b"=a:a:1:1:/a:::\n.anything\n=b:\n").returncode == 0
    with cdb.Reader(str(home / "users" / "cdb")) as db:
        assert [k for k, _ in db] == [b"!a\0", b""]


def test_newu_extra_fields_dropped(home: Path) -> None:
    assert newu(home, b"xJoe:joe:1:2:/h:-:e:more:stuff\n.\n").returncode == 0
    with cdb.Reader(str(home / "users" / "cdb")) as db:
        assert list(db) == [(b"!joe\0", b"joe\x001\x002\x00/h\x00-\x00e"), (b"", b"")]


def test_newu_errors(home: Path, tmp_path: Path) -> None:
    r = run("qmail-newu", [], home)
    assert (r.returncode, r.stderr) == (111, b"qmail-newu: fatal: unable to open users/assign\n")
    r = run("qmail-newu", [], tmp_path / "nowhere")
    assert (r.returncode, r.stderr) == (111, b"qmail-newu: fatal: unable to chdir\n")
    (home / "users" / "assign").mkdir()
    r = run("qmail-newu", [], home)
    assert (r.returncode, r.stderr) == (111, b"qmail-newu: fatal: unable to read users/assign\n")
    (home / "users" / "assign").rmdir()
    (home / "users" / "assign").write_bytes(b".\n")
    (home / "users" / "cdb").mkdir()
    r = run("qmail-newu", [], home)
    assert (r.returncode, r.stderr) == (
        111, b"qmail-newu: fatal: unable to move users/cdb.tmp to users/cdb\n")
    (home / "users" / "cdb").rmdir()
    (home / "users" / "cdb.tmp").unlink()  # left behind, as qmail-newu leaves it
    (home / "users" / "cdb.tmp").mkdir()
    r = run("qmail-newu", [], home)
    assert (r.returncode, r.stderr) == (111, b"qmail-newu: fatal: unable to open users/cdb.tmp\n")


# the users/cdb lookup (qmail-lspawn)

def test_lookup(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QMAILHOME", str(home))
    assert users.lookup(b"joe") is None  # no users/cdb: ask qmail-getpw
    assert newu(home, ASSIGN).returncode == 0
    lk = users.lookup
    assert lk(b"joe") == b"joe\x001001\x00100\x00/home/joe\x00\x00\x00"
    assert lk("JOE") == lk(b"joe")
    assert lk(b"MARY") == b"mary\x001002\x00100\x00/home/mary\x00-\x00list\x00"
    # longest wildcard first; the extension keeps its case
    assert lk(b"joe-Foo-bar") == b"joe\x001001\x00100\x00/home/joe\x00-\x00Foo-bar\x00"
    assert lk(b"List-X") == b"mary\x001002\x00100\x00/home/mary\x00-\x00l-X\x00"
    assert lk(b"big.x") == b"big\x001003\x00100\x00/home/big\x00-\x00x\x00"
    # "+:" catches everything else, with all of local as the extension
    assert lk(b"Nobody") == b"alias\x007790\x002108\x00/var/qmail/alias\x00-\x00Nobody\x00"
    assert lk(b"joe-") == b"joe\x001001\x00100\x00/home/joe\x00-\x00\x00"
    assert users.parse(lk(b"joe-Foo")) == users.Assignment(
        b"joe", 1001, 100, b"/home/joe", b"-", b"Foo")
    assert users.parse(b"a\0b\0c") is None


def test_lookup_wildchars_gate(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QMAILHOME", str(home))
    # a prefix is only tried if its last character ends some wildcard: "ab" ends
    # in "b", which no "+" line ends in, so "+ab" is never found (as in qmail)
    assert newu(home, b"+a-:x:1:1:/x:-::\n.\n").returncode == 0
    assert users.lookup(b"a-z") == b"x\x001\x001\x00/x\x00-\x00z\x00"
    assert users.lookup(b"b-z") is None
    (home / "users" / "assign").write_bytes(b"+ab:x:1:1:/x:-::\n+c-:y:2:2:/y:-::\n.\n")
    with open(home / "users" / "cdb", "wb") as f:
        w = cdb.Writer(f)
        w.add(b"!ab", b"x\x001\x001\x00/x\x00-\x00")
        w.add(b"", b"-")
        w.finish()
    assert users.lookup(b"abc") is None


def test_lookup_trouble(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QMAILHOME", str(home))
    with open(home / "users" / "cdb", "wb") as f:
        w = cdb.Writer(f)
        w.add(b"!joe\0", b"joe\x001\x001\x00/h\x00\x00")
        w.finish()
    with pytest.raises(users.UsersCdbError):  # no "" record
        users.lookup(b"joe")
    (home / "users" / "cdb").write_bytes(b"short")
    with pytest.raises(users.UsersCdbError):
        users.lookup(b"joe")


# qmail-getpw, with throw-away system accounts

@pytest.fixture(scope="module")
def account(tmp_path_factory: pytest.TempPathFactory):
    """A system account whose home exists and is its own."""
    assert os.geteuid() == 0, "these tests run as root (CI does)"
    name = f"pyqu{uuid.uuid4().hex[:8]}"
    homedir = tmp_path_factory.mktemp("home") / name
    homedir.mkdir()
    account_cmd(["useradd", "-r", "-M", "-U", "-d", str(homedir), "-s", "/usr/sbin/nologin", name])
    try:
        pw = pwd.getpwnam(name)
        os.chown(homedir, pw.pw_uid, pw.pw_gid)
        yield pw
    finally:
        account_cmd(["userdel", name])
        subprocess.run(["groupdel", name], capture_output=True)


def getpw(local: str, home: Path) -> subprocess.CompletedProcess:
    return run("qmail-getpw", [local], home)


def answer(pw: pwd.struct_passwd, dash: str, ext: str) -> bytes:
    return "\0".join([pw.pw_name, str(pw.pw_uid), str(pw.pw_gid), pw.pw_dir, dash, ext, ""]).encode()


def test_getpw_user(account: pwd.struct_passwd, home: Path) -> None:
    r = getpw(account.pw_name, home)
    assert (r.returncode, r.stdout, r.stderr) == (0, answer(account, "", ""), b"")
    r = getpw(account.pw_name.upper() + "-Foo-bar", home)  # looked up lower-cased
    assert (r.returncode, r.stdout) == (0, answer(account, "-", "Foo-bar"))
    r = getpw(account.pw_name + "-", home)
    assert (r.returncode, r.stdout) == (0, answer(account, "-", ""))


def test_getpw_usage(home: Path) -> None:
    r = run("qmail-getpw", [], home)
    assert (r.returncode, r.stdout, r.stderr) == (100, b"", b"")


@pytest.fixture(scope="module")
def alias(account: pwd.struct_passwd, tmp_path_factory: pytest.TempPathFactory):
    """The alias account (made if missing, then removed); first checks exit 116 without it."""
    try:
        yield pwd.getpwnam("alias")
        return
    except KeyError:
        pass
    home = tmp_path_factory.mktemp("q")
    r = getpw("nosuchuser", home)
    assert (r.returncode, r.stdout) == (116, b"")  # QLX_NOALIAS
    aliashome = tmp_path_factory.mktemp("alias")
    account_cmd(["useradd", "-r", "-M", "-U", "-d", str(aliashome), "-s", "/usr/sbin/nologin", "alias"])
    try:
        yield pwd.getpwnam("alias")
    finally:
        account_cmd(["userdel", "alias"])
        subprocess.run(["groupdel", "alias"], capture_output=True)


def test_getpw_alias(account: pwd.struct_passwd, alias: pwd.struct_passwd, home: Path) -> None:
    r = getpw("Nobody-Here", home)
    assert (r.returncode, r.stdout) == (0, answer(alias, "-", "Nobody-Here"))
    r = getpw("root", home)  # uid 0 never gets mail directly
    assert (r.returncode, r.stdout) == (0, answer(alias, "-", "root"))
    r = getpw("x" * 40 + "-" + account.pw_name, home)  # a prefix of 32+ is not tried
    assert r.stdout == answer(alias, "-", "x" * 40 + "-" + account.pw_name)
    homedir = Path(account.pw_dir)
    os.chown(homedir, 0, 0)  # home not owned by the account
    try:
        r = getpw(account.pw_name + "-x", home)
        assert (r.returncode, r.stdout) == (0, answer(alias, "-", account.pw_name + "-x"))
    finally:
        os.chown(homedir, account.pw_uid, account.pw_gid)
    homedir.rename(homedir.with_name("moved"))  # home missing
    try:
        r = getpw(account.pw_name, home)
        assert (r.returncode, r.stdout) == (0, answer(alias, "-", account.pw_name))
    finally:
        homedir.with_name("moved").rename(homedir)
    assert getpw(account.pw_name, home).stdout == answer(account, "", "")


# qmail-pw2u

@pytest.fixture
def homes(tmp_path: Path) -> Path:
    """Homes owned by uids 7001 (joe, alias), 7002 (mary); "foreign" by 7009."""
    for name, uid in (("joe", 7001), ("alias", 7003), ("mary", 7002), ("foreign", 7009)):
        (tmp_path / name).mkdir()
        os.chown(tmp_path / name, uid, 100)
    return tmp_path


def passwd(homes: Path) -> bytes:
    return (f"root:x:0:0:root:/root:/bin/sh\n"
            f"joe:x:7001:100:Joe:{homes}/joe:/bin/sh\n"
            f"alias:*:7003:100::{homes}/alias:\n"
            f"mary:x:7002:100:Mary:{homes}/mary:/bin/sh\n"
            f"Upper:x:7001:100::{homes}/joe:/bin/sh\n"
            f"bob:x:7004:100::{homes}/foreign:/bin/sh\n"
            f"gone:x:7005:100::{homes}/gone:/bin/sh\n"
            f"short:x:7001:100::{homes}/joe\n"
            f"badline\n"
            f"nul\0:x:7001:100::{homes}/joe:\n"
            f"last:x:7001:100::{homes}/joe:").encode()


def pw2u(home: Path, args: list[str], stdin: bytes) -> subprocess.CompletedProcess:
    return run("qmail-pw2u", args, home, input=stdin)


def test_pw2u_default(home: Path, homes: Path) -> None:
    r = pw2u(home, [], passwd(homes))
    h = str(homes)
    assert (r.returncode, r.stderr) == (0, b"")
    assert r.stdout.decode() == (
        f"=joe:joe:7001:100:{h}/joe:::\n"
        f"+joe-:joe:7001:100:{h}/joe:-::\n"
        f"+:alias:7003:100:{h}/alias:-::\n"
        f"=alias:alias:7003:100:{h}/alias:::\n"
        f"+alias-:alias:7003:100:{h}/alias:-::\n"
        f"=mary:mary:7002:100:{h}/mary:::\n"
        f"+mary-:mary:7002:100:{h}/mary:-::\n"
        f"=last:last:7001:100:{h}/joe:::\n"
        f"+last-:last:7001:100:{h}/joe:-::\n"
        ".\n")


def test_pw2u_options(home: Path, homes: Path) -> None:
    h = str(homes)
    r = pw2u(home, ["-H", "-u", "-C", "-/"], passwd(homes))
    assert r.returncode == 0
    assert r.stdout.decode() == (
        f"=joe:joe:7001:100:{h}/joe:::\n"
        f"+:alias:7003:100:{h}/alias:-/::\n"
        f"=alias:alias:7003:100:{h}/alias:::\n"
        f"=mary:mary:7002:100:{h}/mary:::\n"
        f"=Upper:Upper:7001:100:{h}/joe:::\n"
        f"=bob:bob:7004:100:{h}/foreign:::\n"
        f"=gone:gone:7005:100:{h}/gone:::\n"
        f"=last:last:7001:100:{h}/joe:::\n"
        ".\n")
    r = pw2u(home, ["-c", "+", "-U"], passwd(homes))
    assert f"+joe+:joe:7001:100:{h}/joe:-::\n".encode() in r.stdout
    assert b"Upper" not in r.stdout
    r = pw2u(home, ["-h"], passwd(homes))
    assert (r.returncode, r.stderr) == (111, f"qmail-pw2u: fatal: unable to stat {h}/gone\n".encode())
    r = pw2u(home, ["-x"], passwd(homes))
    assert (r.returncode, r.stdout, r.stderr) == (100, b"", b"qmail-pw2u: illegal option -- x\n")


def test_pw2u_no_alias(home: Path, homes: Path) -> None:
    r = pw2u(home, [], f"joe:x:7001:100:Joe:{homes}/joe:/bin/sh\n".encode())
    assert (r.returncode, r.stdout, r.stderr) == (
        111, b"", b"qmail-pw2u: fatal: unable to find alias user\n")
    r = run("qmail-pw2u", [], homes / "nowhere", input=b"")
    assert (r.returncode, r.stderr) == (111, b"qmail-pw2u: fatal: unable to chdir\n")


def test_pw2u_files(home: Path, homes: Path) -> None:
    h = str(homes)
    u = home / "users"
    (u / "include").write_bytes(b"# who\nJOE \nalias\nmary\n\n")
    (u / "exclude").write_bytes(b"mary\t\n")
    (u / "mailnames").write_bytes(b"joe:joe.user:JOE::j\nnocolon\nalias:\nalias:a1\n")
    (u / "subusers").write_bytes(b"#no colon line\nlist:JOE:l:\nshort:joe\n")
    (u / "append").write_bytes(b"=x:x:1:1:/x:::\nraw tail")
    r = pw2u(home, [], passwd(homes))
    assert (r.returncode, r.stderr) == (0, b"")
    assert r.stdout.decode() == (
        f"=joe.user:joe:7001:100:{h}/joe:::\n"
        f"+joe.user-:joe:7001:100:{h}/joe:-::\n"
        f"=JOE:joe:7001:100:{h}/joe:::\n"
        f"+JOE-:joe:7001:100:{h}/joe:-::\n"
        f"=j:joe:7001:100:{h}/joe:::\n"
        f"+j-:joe:7001:100:{h}/joe:-::\n"
        f"+:alias:7003:100:{h}/alias:-::\n"
        f"=a1:alias:7003:100:{h}/alias:::\n"
        f"+a1-:alias:7003:100:{h}/alias:-::\n"
        f"=list:joe:7001:100:{h}/joe:-:l:\n"
        f"+list-:joe:7001:100:{h}/joe:-:l-:\n"
        "=x:x:1:1:/x:::\nraw tail.\n")
    (u / "subusers").write_bytes(b"list:nobody:l:\n")
    r = pw2u(home, [], passwd(homes))
    assert (r.returncode, r.stderr) == (
        111, b"qmail-pw2u: fatal: unable to find nobody user for subuser\n")
    (u / "subusers").unlink()
    (u / "exclude").unlink()
    (u / "exclude").mkdir()
    r = pw2u(home, [], passwd(homes))
    assert (r.returncode, r.stderr) == (111, b"qmail-pw2u: fatal: unable to read controls\n")


def test_pw2u_then_newu(home: Path, homes: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    r = pw2u(home, [], passwd(homes))
    assert newu(home, r.stdout).returncode == 0
    monkeypatch.setenv("QMAILHOME", str(home))
    assert users.lookup(b"Mary-Lists") == f"mary\x007002\x00100\x00{homes}/mary\x00-\x00Lists\x00".encode()
    assert users.lookup(b"stranger") == f"alias\x007003\x00100\x00{homes}/alias\x00-\x00stranger\x00".encode()
