"""The chain-loaders: envdir, envuidgid, setuidgid, softlimit, setlock, pgrphack, fghack.

Golden transcripts first: every scenario builds a fresh directory, runs one
command in it with Debian's program and, in a second directory built the same
way, with ours, and the exit code, stdout and stderr must be equal (the
scenario's directory and the programs' directory masked).  Many scenarios run
a child that shows what it was given (``env``, ``id``, ``/proc/self/limits``,
``/proc/self/fdinfo``), so the transcript covers the effect as well as the
messages.  Then behaviour that a transcript cannot show: locks held across
programs, process groups, fghack waiting for descendants.
"""
from __future__ import annotations

import fcntl
import os
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest

from tests.helpers import OURS, Result, cmd, wait_for, account_cmd

#: the environment every scenario starts from (env -i, more or less)
ENV = {"PATH": "/usr/bin:/bin", "HOME": "/", "LANG": "C", "UID": "7", "ZZ": "last"}
#: setpriv: run as root, without the capability named
WITHOUT = "/usr/bin/setpriv --inh-caps -{cap} --bounding-set -{cap}".split()


def without(*caps: str) -> tuple[str, ...]:
    return tuple(w.format(cap=",-".join(caps)) for w in WITHOUT)


# -- a throw-away system account, made with useradd and removed afterwards -----

@dataclass(frozen=True)
class Account:
    name: str
    group: str
    extra: str
    uid: int
    gid: int


@pytest.fixture(scope="module")
def account():
    """A system account with its own group and one supplementary group."""
    assert os.geteuid() == 0, "these tests run as root (CI does)"
    tag = uuid.uuid4().hex[:8]
    name, extra = f"pyqt{tag}", f"pyqg{tag}"
    account_cmd(["groupadd", "-r", extra])
    try:
        account_cmd(["useradd", "-r", "-M", "-U", "-d", "/nonexistent", "-s", "/usr/sbin/nologin",
                "-G", extra, name])
        try:
            import pwd
            pw = pwd.getpwnam(name)
            yield Account(name, name, extra, pw.pw_uid, pw.pw_gid)
        finally:
            account_cmd(["userdel", name])
    finally:
        subprocess.run(["groupdel", extra], capture_output=True)
        subprocess.run(["groupdel", name], capture_output=True)


# -- set-ups: each gets the scenario's directory ---------------------------------

def nothing(root: Path) -> None:
    pass


def files(spec: dict[str, bytes | str | None]) -> Callable[[Path], None]:
    """``root/d`` with files (bytes), symbolic links (str) or subdirectories (None)."""
    def setup(root: Path) -> None:
        d = root / "d"
        d.mkdir()
        for name, content in spec.items():
            p = d / os.fsdecode(name.encode("utf-8", "surrogateescape"))
            if content is None:
                p.mkdir()
            elif isinstance(content, str):
                os.symlink(content, p)
            else:
                p.write_bytes(content)
    return setup


def plain_file(root: Path) -> None:
    (root / "f").write_text("just a file\n")


def not_executable(root: Path) -> None:
    """prog and bin/prog are not executable, bin2/prog is."""
    (root / "prog").write_text("#!/bin/sh\necho hi\n")
    for d in ("bin", "bin2"):
        (root / d).mkdir()
        (root / d / "prog").write_text(f"#!/bin/sh\necho {d}\n")
    (root / "bin2" / "prog").chmod(0o755)


def unreadable(root: Path) -> None:
    files({"A": b"a\n", "B": b"b\n"})(root)
    (root / "d" / "B").chmod(0)


def locked(root: Path) -> None:
    """``root/lock`` is flocked by the test itself: another open file, so it conflicts."""
    fd = os.open(root / "lock", os.O_WRONLY | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    _held.append(fd)


#: descriptors holding locks for the scenario being run
_held: list[int] = []


# -- the scenarios ----------------------------------------------------------------

@dataclass(frozen=True)
class Case:
    id: str
    prog: str
    args: tuple[str, ...] = ()
    setup: Callable[[Path], None] = nothing
    rc: int = 0
    err: str | None = ""  # None: not checked beyond ours == theirs
    out: str | None = ""
    wrap: tuple[str, ...] = ()
    env: dict[str, str] | None = None
    after: Callable[[Path], str] | None = None


ENVDIR_USAGE = "envdir: usage: envdir dir child\n"
ENVUIDGID_USAGE = "envuidgid: usage: envuidgid account child\n"
SETUIDGID_USAGE = "setuidgid: usage: setuidgid account child\n"
SOFTLIMIT_USAGE = ("softlimit: usage: softlimit [-a allbytes] [-c corebytes] [-d databytes] "
                   "[-f filebytes] [-l lockbytes] [-m membytes] [-o openfiles] [-p processes] "
                   "[-r residentbytes] [-s stackbytes] [-t cpusecs] child\n")
SETLOCK_USAGE = "setlock: usage: setlock [ -nNxX ] file program [ arg ... ]\n"
LIMITS = ("cat", "/proc/self/limits")

#: files for envdir's own rules, in one directory (readdir order is the same for both sides)
ENVDIR_RULES = {
    "PLAIN": b"value\n",
    "FIRST_LINE": b"first\nsecond\n",
    "TRAILING": b"blanks \t \t\nnext",
    "LEADING": b"  kept",
    "NUL": b"a\0b\0",
    "CR": b"crlf\r\n",
    "EMPTY": b"",
    "HOME": b"",  # removes HOME
    "UID": b"42",  # replaces UID in place
    "BLANK_LINE": b"\nsecond",
    "ONLY_BLANKS": b"  \t",
    ".hidden": b"skipped",
    "NOEOL": b"no newline",
    "K=V": b"x",  # the name ends at '=': K becomes "V=x"
    "E=Q": b"",  # an empty file: E becomes "Q"
    "DANGLING": "nowhere",  # envdir.c reuses the previous file's value
    "n\udcff": b"not utf-8",
}


def limit_cases() -> list[Case]:
    cases = []
    for flag in "acdflmoprst":
        n = "100000000" if flag in "adms" else "4096"  # cat needs some memory
        cases.append(Case(f"softlimit-{flag}-number", "softlimit", (f"-{flag}", n, *LIMITS),
                          out=None))
        cases.append(Case(f"softlimit-{flag}-hard", "softlimit", (f"-{flag}", "=", *LIMITS),
                          out=None))
    return cases


CASES = [
    # envdir ----------------------------------------------------------------
    Case("envdir-no-args", "envdir", (), rc=111, err=ENVDIR_USAGE),
    Case("envdir-no-child", "envdir", ("d",), files({}), rc=111, err=ENVDIR_USAGE),
    Case("envdir-missing-dir", "envdir", ("nonexistent", "env"), rc=111,
         err="envdir: fatal: unable to switch to directory nonexistent: file does not exist\n"),
    Case("envdir-not-a-dir", "envdir", ("f", "env"), plain_file, rc=111,
         err="envdir: fatal: unable to switch to directory f: not a directory\n"),
    Case("envdir-subdirectory", "envdir", ("d", "env"), files({"SUB": None}), rc=111,
         err="envdir: fatal: unable to read d/SUB: is a directory\n"),
    Case("envdir-unreadable-file", "envdir", ("d", "env"), unreadable, rc=111,
         wrap=without("dac_override", "dac_read_search"),
         err="envdir: fatal: unable to read d/B: access denied\n"),
    Case("envdir-missing-child", "envdir", ("d", "nonexistent"), files({"A": b"a"}), rc=111,
         err="envdir: fatal: unable to run nonexistent: file does not exist\n"),
    Case("envdir-child-not-executable", "envdir", ("d", "./prog"),
         lambda r: (files({})(r), not_executable(r)), rc=111,
         err="envdir: fatal: unable to run ./prog: access denied\n"),
    Case("envdir-child-is-directory", "envdir", ("d", "./d"), files({}), rc=111,
         err="envdir: fatal: unable to run ./d: access denied\n"),
    Case("envdir-child-not-in-path", "envdir", ("d", "d"), files({}), rc=111,
         err="envdir: fatal: unable to run d: file does not exist\n"),
    Case("envdir-path-search-stops-at-enotdir", "envdir", ("d", "env"), files({}), rc=111,
         env={**ENV, "PATH": "/nonexistent:/etc/passwd:/usr/bin"},
         err="envdir: fatal: unable to run env: not a directory\n"),
    Case("envdir-path-search-goes-on-after-eacces", "envdir", ("d", "prog"),
         lambda r: (files({})(r), not_executable(r)), rc=0, out="bin2\n",
         env={**ENV, "PATH": "bin:/nonexistent:bin2"}),
    Case("envdir-path-search-reports-eacces", "envdir", ("d", "prog"),
         lambda r: (files({})(r), not_executable(r)), rc=111,
         env={**ENV, "PATH": "/nonexistent:bin:/nonexistent"},
         err="envdir: fatal: unable to run prog: access denied\n"),
    Case("envdir-empty-path-entry-is-cwd", "envdir", ("d", "prog"),
         lambda r: (files({})(r), not_executable(r)), rc=111,
         env={**ENV, "PATH": ":/nonexistent"},
         err="envdir: fatal: unable to run prog: access denied\n"),
    Case("envdir-no-path", "envdir", ("d", "env"), files({"X": b"1"}), env={}, out=None),
    Case("envdir-empty-child-name", "envdir", ("d", ""), files({}), rc=111, err=None),
    Case("envdir-rules", "envdir", ("d", "env"), files(ENVDIR_RULES), out=None),
    Case("envdir-empty-dir", "envdir", ("d", "env"), files({}), out=None),
    Case("envdir-descriptors", "envdir", ("d", "ls", "/proc/self/fd"), files({"A": b"1"}),
         out=None),
    Case("envdir-dangling-first", "envdir", ("d", "env"), files({"ONLY": "nowhere"}), out=None),
    Case("envdir-new-path-old-lookup", "envdir", ("d", "env"),
         files({"PATH": b"/nonexistent\n"}), out=None),
    Case("envdir-nested", "envdir", ("d", "{bin}/envdir", "d", "env"), files({"A": b"1", "B": b""}),
         out=None),
    # envuidgid -----------------------------------------------------------------
    Case("envuidgid-no-args", "envuidgid", (), rc=100, err=ENVUIDGID_USAGE),
    Case("envuidgid-no-child", "envuidgid", ("root",), rc=100, err=ENVUIDGID_USAGE),
    Case("envuidgid-unknown", "envuidgid", ("nosuchaccount", "env"), rc=111,
         err="envuidgid: fatal: unknown account nosuchaccount\n"),
    Case("envuidgid-empty-name", "envuidgid", ("", "env"), rc=111,
         err="envuidgid: fatal: unknown account \n"),
    Case("envuidgid-missing-child", "envuidgid", ("root", "nonexistent"), rc=111,
         err="envuidgid: fatal: unable to run nonexistent: file does not exist\n"),
    Case("envuidgid-env", "envuidgid", ("{user}", "env"), out=None),
    Case("envuidgid-root-env", "envuidgid", ("root", "env"), out=None),
    Case("envuidgid-stays-root", "envuidgid", ("{user}", "id"), out=None),
    # setuidgid -------------------------------------------------------------------
    Case("setuidgid-no-args", "setuidgid", (), rc=100, err=SETUIDGID_USAGE),
    Case("setuidgid-no-child", "setuidgid", ("root",), rc=100, err=SETUIDGID_USAGE),
    Case("setuidgid-unknown", "setuidgid", ("nosuchaccount", "id"), rc=111,
         err="setuidgid: fatal: unknown account nosuchaccount\n"),
    Case("setuidgid-missing-child", "setuidgid", ("{user}", "nonexistent"), rc=111,
         err="setuidgid: fatal: unable to run nonexistent: file does not exist\n"),
    Case("setuidgid-id", "setuidgid", ("{user}", "id"), out=None),
    Case("setuidgid-ids-in-proc", "setuidgid", ("{user}", "grep", "-E", "^(Uid|Gid|Groups)",
                                                "/proc/self/status"), out=None),
    Case("setuidgid-nobody", "setuidgid", ("nobody", "id"), out=None),
    Case("setuidgid-keeps-env", "setuidgid", ("{user}", "env"), out=None),
    Case("setuidgid-cannot-setgid", "setuidgid", ("{user}", "id"), wrap=without("setgid"),
         rc=111, err="setuidgid: fatal: unable to setgid: permission denied\n"),
    Case("setuidgid-cannot-setuid", "setuidgid", ("{user}", "id"), wrap=without("setuid"),
         rc=111, err="setuidgid: fatal: unable to setuid: permission denied\n"),
    # softlimit ---------------------------------------------------------------------
    Case("softlimit-no-args", "softlimit", (), rc=100, err=SOFTLIMIT_USAGE),
    Case("softlimit-options-no-child", "softlimit", ("-m", "1000000"), rc=100,
         err=SOFTLIMIT_USAGE),
    Case("softlimit-illegal-option", "softlimit", ("-z", "true"), rc=100,
         err="softlimit: illegal option -- z\n" + SOFTLIMIT_USAGE),
    Case("softlimit-missing-value", "softlimit", ("-t",), rc=100,
         err="softlimit: option requires an argument -- t\n" + SOFTLIMIT_USAGE),
    Case("softlimit-bad-value-before-bad-option", "softlimit", ("-d", "12x", "-t"), rc=100,
         err=SOFTLIMIT_USAGE),
    Case("softlimit-negative", "softlimit", ("-d", "-1", "true"), rc=100, err=SOFTLIMIT_USAGE),
    Case("softlimit-plus-sign", "softlimit", ("-d", "+1", "true"), rc=100, err=SOFTLIMIT_USAGE),
    Case("softlimit-missing-child", "softlimit", ("-t", "5", "nonexistent"), rc=111,
         err="softlimit: fatal: unable to run nonexistent: file does not exist\n"),
    Case("softlimit-dash-child", "softlimit", ("-",), rc=111,
         err="softlimit: fatal: unable to run -: file does not exist\n"),
    Case("softlimit-double-dash", "softlimit", ("-t", "7", "--", *LIMITS), out=None),
    Case("softlimit-options-stop-at-child", "softlimit", ("-c", "0", "cat", "-t", "5",
                                                          "/proc/self/limits"), rc=1, out=None,
         err=None),
    Case("softlimit-m", "softlimit", ("-m", "100000000", *LIMITS), out=None),
    Case("softlimit-m-hard", "softlimit", ("-m", "=", *LIMITS), out=None),
    Case("softlimit-above-hard-is-cut", "softlimit", ("-l", "99999999999", *LIMITS), out=None),
    Case("softlimit-wraps-at-2-64", "softlimit", ("-d", "99999999999999999999999", *LIMITS),
         out=None),
    Case("softlimit-2-63", "softlimit", ("-d", str(2**63), *LIMITS), out=None),
    Case("softlimit-empty-is-zero", "softlimit", ("-c", "", *LIMITS), out=None),
    Case("softlimit-clustered", "softlimit", ("-t5", "-f", "1000", "-o64", *LIMITS), out=None),
    Case("softlimit-every-flag", "softlimit",
         ("-a", "500000000", "-c", "0", "-d", "300000000", "-f", "10000000", "-l", "65536",
          "-o", "100", "-p", "500", "-r", "200000000", "-s", "1000000", "-t", "60", *LIMITS),
         out=None),
    *limit_cases(),
    # setlock ------------------------------------------------------------------------
    Case("setlock-no-args", "setlock", (), rc=100, err=SETLOCK_USAGE),
    Case("setlock-no-child", "setlock", ("f",), rc=100, err=SETLOCK_USAGE),
    Case("setlock-options-only", "setlock", ("-nx",), rc=100, err=SETLOCK_USAGE),
    Case("setlock-illegal-option", "setlock", ("-nz", "f", "true"), rc=100,
         err="setlock: illegal option -- z\n" + SETLOCK_USAGE),
    Case("setlock-cannot-open", "setlock", ("nonexistent/f", "true"), rc=111,
         err="setlock: fatal: unable to open nonexistent/f: file does not exist\n"),
    Case("setlock-cannot-open-x", "setlock", ("-x", "nonexistent/f", "true"), rc=0),
    Case("setlock-cannot-open-x-then-X", "setlock", ("-xX", "nonexistent/f", "true"), rc=111,
         err="setlock: fatal: unable to open nonexistent/f: file does not exist\n"),
    Case("setlock-is-directory", "setlock", ("d", "true"), files({}), rc=111,
         err="setlock: fatal: unable to open d: is a directory\n"),
    Case("setlock-held-n", "setlock", ("-n", "lock", "true"), locked, rc=111,
         err="setlock: fatal: unable to lock lock: temporary failure\n"),
    Case("setlock-held-nx", "setlock", ("-nx", "lock", "echo", "ran"), locked, rc=0),
    Case("setlock-held-n-then-N-x", "setlock", ("-n", "-Nx", "lock", "echo", "ran"),
         lambda r: (r / "lock").touch(), rc=0, out="ran\n"),
    Case("setlock-missing-child", "setlock", ("f", "nonexistent"), rc=111,
         err="setlock: fatal: unable to run nonexistent: file does not exist\n",
         after=lambda r: oct((r / "f").stat().st_mode)),
    Case("setlock-creates-0600", "setlock", ("f", "true"),
         after=lambda r: oct((r / "f").stat().st_mode)),
    Case("setlock-descriptors", "setlock", ("f", "ls", "/proc/self/fd"), out=None),
    Case("setlock-child-gets-the-fd", "setlock", ("f", "grep", "flags", "/proc/self/fdinfo/3"),
         out=None),
    Case("setlock-child-holds-the-lock", "setlock",
         ("f", "grep", "-c", "FLOCK *ADVISORY *WRITE", "/proc/self/fdinfo/3"), out="1\n"),
    # pgrphack -------------------------------------------------------------------------
    Case("pgrphack-no-args", "pgrphack", (), rc=100, err="pgrphack: usage: pgrphack child\n"),
    Case("pgrphack-missing-child", "pgrphack", ("nonexistent",), rc=111,
         err="pgrphack: fatal: unable to run nonexistent: file does not exist\n"),
    Case("pgrphack-option-is-child", "pgrphack", ("-z",), rc=111,
         err="pgrphack: fatal: unable to run -z: file does not exist\n"),
    Case("pgrphack-empty-child", "pgrphack", ("",), rc=111,
         err="pgrphack: fatal: unable to run : access denied\n"),
    Case("pgrphack-exit-code", "pgrphack", ("sh", "-c", "exit 9"), rc=9),
    Case("pgrphack-signals-as-given", "pgrphack", ("grep", "-E", "^Sig(Blk|Ign|Cgt)", "/proc/self/status"),
         out=None),
    Case("pgrphack-keeps-ignored-sigint", "pgrphack", ("grep", "-E", "^Sig(Blk|Ign|Cgt)", "/proc/self/status"),
         wrap=("sh", "-c", 'trap "" INT; exec "$0" "$@"'), out=None),
    # fghack -----------------------------------------------------------------------------
    Case("fghack-no-args", "fghack", (), rc=100, err="fghack: usage: fghack child\n"),
    Case("fghack-missing-child", "fghack", ("nonexistent",), rc=111,
         err="fghack: fatal: unable to run nonexistent: file does not exist\n"),
    Case("fghack-exit-code", "fghack", ("sh", "-c", "echo out; echo err >&2; exit 7"), rc=7,
         out="out\n", err="err\n"),
    Case("fghack-child-crashed", "fghack", ("sh", "-c", "kill -9 $$"), rc=111,
         err="fghack: fatal: child crashed\n"),
    Case("fghack-descriptors", "fghack", ("ls", "/proc/self/fd"), out=None),
]


def masked(res: Result, root: Path, bindir: Path) -> Result:
    out, err = res.out, res.err
    for p, name in ((root, "ROOT"), (bindir, "BIN")):
        out, err = out.replace(str(p), name), err.replace(str(p), name)
    return Result(res.rc, out, err)


def run_case(case: Case, prog: Path, root: Path, user: str) -> tuple[Result, str]:
    root.mkdir()
    case.setup(root)
    args = [*case.wrap, str(prog),
            *(a.replace("{user}", user).replace("{bin}", str(prog.parent)) for a in case.args)]
    env = dict(case.env if case.env is not None else ENV)
    try:
        res = cmd(args, cwd=root, env=env)
    finally:
        while _held:
            os.close(_held.pop())
    after = case.after(root) if case.after else ""
    return masked(res, root, prog.parent), after


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_golden(case: Case, ref: Path, tmp_path: Path, account: Account) -> None:
    got = {side: run_case(case, d / case.prog, tmp_path / side, account.name)
           for side, d in (("theirs", ref), ("ours", OURS))}
    assert got["ours"] == got["theirs"]
    res, _ = got["ours"]
    assert res.rc == case.rc, res
    if case.err is not None:
        assert res.err == case.err, res
    if case.out is not None:
        assert res.out == case.out, res
    elif case.rc == 0:
        assert res.out, res  # a child that shows something: both said the same thing


# -- effects spelled out (the transcripts above only say "the same as Debian's") --------

def env_lines(out: str) -> list[str]:
    return out.splitlines()


def test_envdir_sets_and_unsets(tmp_path: Path) -> None:
    files(ENVDIR_RULES)(tmp_path)
    res = cmd([str(OURS / "envdir"), "d", "env"], cwd=tmp_path, env=ENV)
    assert res.rc == 0, res
    env = dict(line.split("=", 1) for line in res.out.split("\n") if "=" in line)
    assert env["PLAIN"] == "value"
    assert env["FIRST_LINE"] == "first"
    assert env["TRAILING"] == "blanks"
    assert env["LEADING"] == "  kept"
    assert env["CR"] == "crlf\r"
    assert env["NOEOL"] == "no newline"
    assert env["UID"] == "42"
    assert env["BLANK_LINE"] == "" and env["ONLY_BLANKS"] == ""
    assert env["K"] == "V=x" and env["E"] == "Q"
    assert "a\nb\n" in res.out  # NULs became newlines
    for gone in ("HOME", "EMPTY", ".hidden"):
        assert gone not in env
    assert env["ZZ"] == "last" and env["PATH"] == ENV["PATH"]


def test_envdir_order_of_variables(tmp_path: Path, ref: Path) -> None:
    """A replaced variable takes the place of the last one, as pathexec.c does."""
    files({"HOME": b"/home\n", "NEW": b"1"})(tmp_path)
    outs = [cmd([str(d / "envdir"), "d", "env"], cwd=tmp_path, env=ENV).out for d in (ref, OURS)]
    assert outs[0] == outs[1]
    assert outs[1].splitlines()[0] == "PATH=/usr/bin:/bin"


def test_envuidgid_values(account: Account) -> None:
    res = cmd([str(OURS / "envuidgid"), account.name, "env"], env=ENV)
    lines = env_lines(res.out)
    assert f"GID={account.gid}" in lines and f"UID={account.uid}" in lines, res
    assert "UID=7" not in lines
    assert lines[-1] == f"UID={account.uid}"  # UID=7's slot went to the last one


def test_setuidgid_drops_supplementary_groups(account: Account, ref: Path) -> None:
    ids = {}
    for side, d in (("theirs", ref), ("ours", OURS)):
        res = cmd([str(d / "setuidgid"), account.name, "id"], env=ENV)
        assert res.rc == 0, res
        ids[side] = res.out
    assert ids["ours"] == ids["theirs"]
    assert ids["ours"] == (f"uid={account.uid}({account.name}) gid={account.gid}({account.group})"
                           f" groups={account.gid}({account.group})\n")
    # the account does have the supplementary group: id without setuidgid shows it
    assert account.extra in cmd(["id", account.name]).out


@pytest.mark.parametrize("flag, name, value", [
    ("-m", "Max data size", "12345678"), ("-m", "Max stack size", "12345678"),
    ("-m", "Max address space", "12345678"), ("-o", "Max open files", "77"),
    ("-p", "Max processes", "88"), ("-t", "Max cpu time", "99"), ("-c", "Max core file size", "0"),
])
def test_softlimit_sets_soft_limit(flag: str, name: str, value: str) -> None:
    res = cmd([str(OURS / "softlimit"), flag, value, *LIMITS], env=ENV)
    line = next(line for line in res.out.splitlines() if line.startswith(name))
    assert line.split()[len(name.split())] == value, line


# -- setlock: ours and theirs exclude each other (flock on the same file) -----------------

@pytest.mark.parametrize("holder, waiter", [("ours", "theirs"), ("theirs", "ours"),
                                            ("ours", "ours")])
def test_setlock_interoperates(holder: str, waiter: str, ref: Path, tmp_path: Path,
                               spawn) -> None:
    progs = {"ours": str(OURS / "setlock"), "theirs": str(ref / "setlock")}
    lock = tmp_path / "lock"
    held = spawn.start([progs[holder], str(lock), "sh", "-c", "echo held; exec sleep 60"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert held.stdout.readline() == b"held\n"
    # non-blocking: refused at once
    res = cmd([progs[waiter], "-n", str(lock), "echo", "ran"], env=ENV)
    assert (res.rc, res.out, res.err) == (
        111, "", f"setlock: fatal: unable to lock {lock}: temporary failure\n")
    assert cmd([progs[waiter], "-nx", str(lock), "echo", "ran"], env=ENV).rc == 0
    # blocking: waits until the holder goes, then runs
    waiting = spawn.start([progs[waiter], str(lock), "echo", "ran"], stdout=subprocess.PIPE)
    time.sleep(0.3)
    assert waiting.poll() is None, "setlock did not wait for the lock"
    held.kill()
    held.wait()
    assert waiting.stdout.read() == b"ran\n"
    assert waiting.wait(timeout=10) == 0


def test_setlock_lock_outlives_setlock_in_child(tmp_path: Path, spawn) -> None:
    """The child inherits the locked descriptor: a grandchild keeps the lock."""
    lock = tmp_path / "lock"
    p = spawn.start([str(OURS / "setlock"), str(lock), "sh", "-c", "sleep 60 & echo $!"],
                    stdout=subprocess.PIPE)
    grandchild = int(p.stdout.readline())
    assert p.wait(timeout=10) == 0
    try:
        res = cmd([str(OURS / "setlock"), "-n", str(lock), "true"], env=ENV)
        assert res.rc == 111 and "temporary failure" in res.err, res
    finally:
        os.kill(grandchild, 9)
    wait_for(lambda: cmd([str(OURS / "setlock"), "-n", str(lock), "true"]).rc == 0,
             what="the lock to go with the grandchild")


# -- pgrphack and fghack ------------------------------------------------------------------

@pytest.mark.parametrize("side", ["ours", "theirs"])
def test_pgrphack_makes_group_leader(side: str, ref: Path) -> None:
    prog = str((OURS if side == "ours" else ref) / "pgrphack")
    # not a leader before: run it from a shell that is its own group leader
    res = cmd(["sh", "-c", f'echo $$; exec "{prog}" cat /proc/self/stat'],
              env=ENV)
    lines = res.out.splitlines()
    fields = lines[1].rsplit(")", 1)[1].split()
    pid = int(lines[0])  # exec keeps the shell's pid
    assert (int(fields[2]), int(fields[3])) == (pid, pid), res  # pgrp, session


@pytest.mark.parametrize("side", ["ours", "theirs"])
def test_fghack_waits_for_descendants(side: str, ref: Path) -> None:
    prog = str((OURS if side == "ours" else ref) / "fghack")
    t0 = time.monotonic()
    res = cmd([prog, "sh", "-c", "sleep 1 >/dev/null 2>&1 & exit 3"], env=ENV)
    elapsed = time.monotonic() - t0
    assert res.rc == 3, res
    assert elapsed >= 0.9, elapsed
    # a descendant that closes the pipe's descriptors does not hold fghack
    t0 = time.monotonic()
    closer = " ".join(f"{fd}>&-" for fd in range(3, 40))
    res = cmd([prog, "bash", "-c", f"sleep 2 >/dev/null 2>&1 {closer} & exit 0"], env=ENV)
    assert res.rc == 0 and time.monotonic() - t0 < 1.5, res


def test_chainloaders_start_light() -> None:
    """The chain-loaders run in every run script: no typing/argparse/re of their own."""
    code = ("import sys; import svtools.{m}; "
            "print(sorted(m for m in ('typing', 'argparse', 'getopt', 're', 'subprocess') "
            "if m in sys.modules))")
    for m in ("envdir", "envuidgid", "setuidgid", "softlimit", "setlock", "pgrphack", "fghack"):
        res = subprocess.run([str(OURS / "python"), "-S", "-c", code.format(m=m)],
                             capture_output=True, text=True, cwd=Path(__file__).parents[2])
        assert res.stdout == "[]\n", (m, res)
