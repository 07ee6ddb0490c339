"""tcprules and tcprulescheck against Debian's ucspi-tcp 0.88 (and ucspi-tcp-ipv6).

* golden transcripts: the same argv and stdin to ours and to theirs, each in a
  fresh directory holding an old ``rules.cdb``; exit code, stdout, stderr, the
  CDB and the temporary file afterwards must be the same;
* byte-identical CDBs for many small edge cases and for a large generated rules
  file mixing every form of address, range and instruction;
* tcprulescheck: theirs reading our CDB and ours reading theirs say the same,
  for connections aimed at every kind of rule; our lookup order in-process
  (tcpserver.rules) gives what their program prints, for many more;
* IPv6: ours against Debian's ucspi-tcp-ipv6 for addresses holding colons.
"""
from __future__ import annotations

import io
import os
import random
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from pyqmail import cdb
from tcpserver import rules, tcprules
from tcpserver.tcprulescheck import describe
from tests import reference
from tests.helpers import OURS

OLD = b"the old rules.cdb, which a failure must leave alone\n"
BASE_ENV = {"PATH": "/usr/bin:/bin", "LANG": "C"}


@pytest.fixture(scope="module")
def ref6() -> Path:
    return reference.ipv6_bindir()


@dataclass
class Outcome:
    rc: int
    out: bytes
    err: bytes
    cdb: bytes | None
    tmp: bytes | None


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except (FileNotFoundError, IsADirectoryError):
        return None


def run_rules(bindir: Path, root: Path, stdin: bytes, args: list[str] | None = None,
              shell: str | None = None) -> Outcome:
    """Run ``tcprules`` from ``bindir`` in ``root`` (which holds an old rules.cdb)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "rules.cdb").write_bytes(OLD)
    args = ["rules.cdb", "rules.tmp"] if args is None else args
    prog = str(bindir / "tcprules")
    argv = [prog, *args] if shell is None else ["sh", "-c", f'exec "$0" "$@" {shell}', prog, *args]
    p = subprocess.run(argv, input=stdin, cwd=root, env=BASE_ENV, capture_output=True, timeout=60)
    return Outcome(p.returncode, p.stdout, p.stderr, _read(root / "rules.cdb"),
                   _read(root / "rules.tmp"))


def both(ref: Path, tmp_path: Path, stdin: bytes, args: list[str] | None = None,
         shell: str | None = None) -> tuple[Outcome, Outcome]:
    theirs = run_rules(ref, tmp_path / "theirs", stdin, args, shell)
    ours = run_rules(OURS, tmp_path / "ours", stdin, args, shell)
    return ours, theirs


# -- lines tcprules refuses, and other failures --------------------------------

BAD = {
    "no instruction": b"a:b\n",
    "colons in a name, not IPv6": b"x:y:allow\n",
    "colons in a host, not IPv6": b"x@=h:a:deny\n",
    "IPv6 with a scope": b"fe80::1%eth0:allow\n",
    "allo": b"1.2.3.4:allo\n",
    "allowx": b"1.2.3.4:allowx\n",
    "deny then space": b"1.2.3.4:deny X\n",
    "comma alone": b"1.2.3.4:deny,\n",
    "no equals": b"1.2.3.4:allow,X\n",
    "nothing after equals": b"1.2.3.4:allow,X=\n",
    "blank after equals, stripped": b"1.2.3.4:allow,X= \n",
    "unclosed quote": b'1.2.3.4:allow,X="abc\n',
    "junk after quote": b'1.2.3.4:allow,X="a"b\n',
    "comma at end": b'1.2.3.4:allow,X="a",\n',
    "space quote cut by stripping": b"1.2.3.4:allow,X= a \n",
    "carriage return": b"1.2.3.4:allow\r\n",
    "second instruction": b"1.2.3.4:deny:allow\n",
    "colon alone": b":\n",
    "indented comment": b" #x:y\n",
    "range not a number": b"1.2.3.x-5:allow\n",
    "range top not a number": b"1.2.3.4-5x:allow\n",
    "two dashes": b"1.2.3.4-5-6:allow\n",
    "range sign": b"1.2.3.+4-5:allow\n",
    "range of a prefix, not a number": b"10.a-3.:allow\n",
    "NUL in the line": b"a\0b:bad\n",
    "trailing blanks dropped in message": b"a:bad \t \n",
    "not UTF-8": b"\xff\xfe:bad\n",
    "after good lines": b"1.2.3.4:allow\n5.6.7.:deny\n# c\n=x:maybe\n9.9.9.9:allow\n",
    "last line without newline": b"1.2.3.4:allow\nx:y",
    "bad range after bad data": b'1.2.3.x-5:allow,X="\n',
}


@pytest.mark.parametrize("name", list(BAD))
def test_bad_line_golden(name: str, ref: Path, tmp_path: Path) -> None:
    ours, theirs = both(ref, tmp_path, BAD[name])
    assert theirs.rc == 100 and b"unable to parse this line" in theirs.err
    assert ours == theirs
    assert ours.cdb == OLD


FAILURES = {
    "usage, no arguments": ([], None),
    "usage, one argument": (["rules.cdb"], None),
    "tmp in a missing directory": (["rules.cdb", "nodir/rules.tmp"], None),
    "tmp is a directory": (["rules.cdb", "."], None),
    "tmp is empty": (["rules.cdb", ""], None),
    "cdb is empty": (["", "rules.tmp"], None),
    "cdb is a directory": (["sub", "rules.tmp"], None),
    "disk full": (["rules.cdb", "/dev/full"], None),
    "stdin write-only": (["rules.cdb", "rules.tmp"], "0>wo"),
    "stdin closed": (["rules.cdb", "rules.tmp"], "<&-"),
    "options are not options": (["-x", "rules.tmp"], None),
    "extra arguments ignored": (["rules.cdb", "rules.tmp", "more"], None),
}


@pytest.mark.parametrize("name", list(FAILURES))
def test_failure_golden(name: str, ref: Path, tmp_path: Path) -> None:
    args, shell = FAILURES[name]
    for side in ("ours", "theirs"):
        (tmp_path / side / "sub" / "x").mkdir(parents=True)
    ours, theirs = both(ref, tmp_path, b"1.2.3.4:allow\n", args, shell)
    assert ours == theirs
    if name.startswith("usage"):
        assert theirs.err == b"tcprules: usage: tcprules rules.cdb rules.tmp\n"
    elif name not in ("options are not options", "extra arguments ignored"):
        assert theirs.rc == 111 and theirs.err.startswith(b"tcprules: fatal: unable to ")
        assert ours.cdb == OLD
    if name == "options are not options":
        assert (tmp_path / "ours" / "-x").read_bytes() == (tmp_path / "theirs" / "-x").read_bytes()


FUZZ_BYTES = b'.-=@,"a1 \t#/0\0\xff9x'
FUZZ_TOKENS = (b":allow", b":deny", b':allow,X="y"', b"-3:deny", b":allow,", b":deny,A=/b/",
               b":allow,=''", b"7-:allow")


@pytest.mark.parametrize("seed", range(4))
def test_random_lines_golden(seed: int, ref: Path, tmp_path: Path) -> None:
    """Random short inputs, good and bad, each line with at most one colon (so
    that none is read as IPv6): the same outcome as theirs, every time."""
    rnd = random.Random(seed)
    outcomes = set()
    for i in range(30):
        lines = []
        for _ in range(rnd.randrange(1, 4)):
            line = bytes(rnd.choices(FUZZ_BYTES, k=rnd.randrange(14)))
            if rnd.random() < 0.7:
                pos = rnd.randrange(len(line) + 1)
                line = line[:pos] + rnd.choice(FUZZ_TOKENS) + line[pos:]
            lines.append(line)
        text = b"\n".join(lines) + rnd.choice((b"", b"\n"))
        ours, theirs = both(ref, tmp_path / str(i), text)
        assert ours == theirs, text
        outcomes.add(theirs.rc)
    assert outcomes == {0, 100}


# -- inputs tcprules accepts: the CDBs must be the same bytes ------------------

GOOD = {
    "empty input": b"",
    "comments and blank lines": b"# comment\n\n#1.2.3.4:deny\n\n",
    "lines without a colon are skipped": b"foo\n1.2.3.4:allow\nbar baz\n",
    "blank-only lines": b"   \n\t\n \t \n",
    "comment with a bad rule": b"#:bad\n",
    "no final newline": b"1.2.3.4:allow",
    "trailing blanks": b"1.2.3.4:allow   \t\n5.6.7.8:deny\t\n",
    "manual page": (b"joe@127.0.0.1:first\n18.23.0.32:second\n:third\n127.:fourth\n")
                   .replace(b"first", b"allow").replace(b"second", b"deny")
                   .replace(b"third", b'allow,X="3"').replace(b"fourth", b"deny"),
    "manual page variables": (b'10.0.:allow,RELAYCLIENT="@fix.me"\n'
                              b"10.1.:allow,RELAYCLIENT=/@fix.me/\n"
                              b'127.0.0.1:allow,RELAYCLIENT="",TCPLOCALHOST="movie.edu"\n'),
    "ranges": (b"1.2.3.37-53:allow\n10.2-3.:deny\n1.2.3.250-300:allow\n1.2.3.7-3:allow\n"
               b"1.2.3.-2:allow\n1.2.3.253-:deny\n-3:allow\n7-9:deny\n1.2.3.0-255:allow\n"),
    "range wrapping at 2**64": b"1.2.3.18446744073709551616-2:allow\n",
    "range end cut by a NUL": b"1.2.3.4\0x-5:allow\n",
    "no ranges with = or @": b"joe@1.2.3.1-3:allow\n=a-b.example:deny\n=1-2.:allow\n",
    "hosts": b"=host.example.com:allow\n=.example.com:deny\n=:allow\n=.:deny\n",
    "info": b"joe@1.2.3.4:allow\njoe@=host.example:deny\n@1.2.3.4:allow\n@=:deny\n",
    "empty address": b":allow\n:deny\n",
    "quotes": (b"1:allow,A=\"\",B=//,C=xyx,D=,a,,E=::,F=='=,G=\"a,b=c:d\"\n"
               b'2:allow,="empty name",X,Y="comma in name"\n'
               b'3:deny,X="set but denied"\n4:allow,X=" "\n'),
    "NUL in a value": b'1.2.3.4:allow,X="a\0b"\n',
    "carriage return in the address": b"1.2.3.4\r:allow\n",
    "not UTF-8": b'=h\xe9.example:allow,X="\xff\xfe"\n',
    "same rule many times": b"1.2.3.4:allow\n" * 300,
    "long line": b"=" + b"h" * 100_000 + b":allow,X=\"" + b"v" * 50_000 + b"\"\n",
}


@pytest.mark.parametrize("name", list(GOOD))
def test_good_input_byte_identical(name: str, ref: Path, tmp_path: Path) -> None:
    ours, theirs = both(ref, tmp_path, GOOD[name])
    assert theirs.rc == 0, theirs.err
    assert ours == theirs
    assert ours.cdb != OLD and ours.tmp is None


# -- a large generated rules file -------------------------------------------------

QUOTES = b'"/\'x|#:,=!'
VALUE_BYTES = b"abcXYZ019 ,=:@.-_\"/'\xc3\xa9\xff"


@dataclass
class Generated:
    text: bytes
    ips: list[bytes]
    prefixes: list[bytes]
    hosts: list[bytes]
    infos: list[bytes]


def _ip(rnd: random.Random) -> bytes:
    return b".".join(b"%d" % rnd.choice((1, 10, 127, 192, rnd.randrange(256))) if i < 2
                     else b"%d" % rnd.randrange(256) for i in range(4))


def _host(rnd: random.Random) -> bytes:
    parts = [rnd.choice((b"mail", b"www", b"a-b", b"x", b"h%d" % rnd.randrange(50)))
             for _ in range(rnd.randrange(1, 3))]
    return b".".join(parts + [rnd.choice((b"example", b"test", b"corp")), rnd.choice((b"com", b"org", b"de"))])


def _instructions(rnd: random.Random) -> bytes:
    out = rnd.choice((b"allow", b"allow", b"deny"))
    for _ in range(rnd.choice((0, 0, 1, 1, 2, 3))):
        q = rnd.choice(QUOTES)
        name = rnd.choice((b"RELAYCLIENT", b"X", b"TCPLOCALHOST", b"A_B", b"", b"n-m"))
        value = bytes(c for c in rnd.choices(VALUE_BYTES, k=rnd.randrange(12)) if c != q)
        out += b",%s=%c%s%c" % (name, q, value, q)
    return out


def generate(seed: int, n: int) -> Generated:
    """``n`` lines mixing every form tcprules knows, and the addresses they name."""
    rnd = random.Random(seed)
    g = Generated(b"", [], [], [], [])
    lines = []
    for _ in range(n):
        kind = rnd.randrange(22)
        ip = _ip(rnd)
        octets = ip.split(b".")
        if kind == 0:
            addr = ip
            g.ips.append(ip)
        elif kind == 1:
            addr = b".".join(octets[:rnd.randrange(1, 4)]) + b"."
            g.prefixes.append(addr)
        elif kind == 2:
            lo = rnd.randrange(256)
            addr = b".".join(octets[:3]) + b".%d-%d" % (lo, max(lo + rnd.randrange(-3, 40), 0))
            g.prefixes.append(b".".join(octets[:3]) + b".")
        elif kind == 3:
            lo = rnd.randrange(256)
            addr = b".".join(octets[:2]) + b".%d-%d." % (lo, min(lo + rnd.randrange(6), 300))
            g.prefixes.append(b".".join(octets[:2]) + b".")
        elif kind == 4:
            lo = rnd.randrange(250)
            addr = b"%d-%d." % (lo, lo + rnd.randrange(4))
        elif kind == 5:
            host = _host(rnd)
            addr = b"=" + host
            g.hosts.append(host)
        elif kind == 6:
            host = _host(rnd)
            addr = b"=" + host[host.index(b"."):]
            g.hosts.append(b"sub." + host)
        elif kind == 7:
            addr = b"="
        elif kind == 8:
            info = rnd.choice((b"joe", b"bill", b"root", b"x-y"))
            addr = info + b"@" + ip
            g.infos.append(info)
            g.ips.append(ip)
        elif kind == 9:
            info, host = rnd.choice((b"joe", b"bill")), _host(rnd)
            addr = info + b"@=" + host
            g.infos.append(info)
            g.hosts.append(host)
        elif kind == 10:
            addr = b""
        elif kind == 11:
            lines.append(b"# " + _ip(rnd) + b":deny a comment")
            continue
        elif kind == 12:
            lines.append(b"")
            continue
        elif kind == 13:
            lines.append(b"no colon here " + ip)
            continue
        elif kind == 14:
            lines.append(ip + b":" + _instructions(rnd) + rnd.choice((b" ", b"\t", b" \t ")))
            g.ips.append(ip)
            continue
        elif kind == 15:
            lines.append(rnd.choice((b"  ", b"\t", b" \t")))
            continue
        elif kind == 16 and lines:
            prev = lines[rnd.randrange(len(lines))]
            if b":" in prev and not prev.startswith(b"#"):
                lines.append(prev.split(b":", 1)[0] + b":" + _instructions(rnd))
            continue
        elif kind == 17:
            addr = b".".join(octets[:3]) + rnd.choice((b".-%d" % rnd.randrange(5),
                                                       b".%d-" % rnd.randrange(250, 256)))
        elif kind == 18:
            addr = rnd.choice((b"joe@1.2.3.4-6", b"=a-b.example.com", b"=1-2."))
        elif kind == 19:
            addr = ip + b"-" + b"%d" % rnd.randrange(256)  # 1.2.3.4-9: last octet range
        else:
            addr = ip
            g.ips.append(ip)
        lines.append(addr + b":" + _instructions(rnd))
    g.text = b"\n".join(lines) + rnd.choice((b"\n", b""))
    return g


def test_large_generated_file_byte_identical(ref: Path, tmp_path: Path) -> None:
    g = generate(1, 6000)
    ours, theirs = both(ref, tmp_path, g.text)
    assert theirs.rc == 0, theirs.err
    assert ours == theirs
    with cdb.Reader(tmp_path / "ours" / "rules.cdb") as r:
        assert sum(1 for _ in r) > 6000


@pytest.mark.parametrize("seed", range(2, 8))
def test_generated_files_byte_identical(seed: int, ref: Path, tmp_path: Path) -> None:
    g = generate(seed, 400)
    ours, theirs = both(ref, tmp_path, g.text)
    assert theirs.rc == 0, theirs.err
    assert ours == theirs


# -- tcprulescheck ---------------------------------------------------------------

def connection_env(ip: bytes | None, host: bytes | None, info: bytes | None) -> dict:
    env = {k.encode(): v.encode() for k, v in BASE_ENV.items()}
    for name, value in ((b"TCPREMOTEIP", ip), (b"TCPREMOTEHOST", host), (b"TCPREMOTEINFO", info)):
        if value is not None:
            env[name] = value
    return env


def check(bindir: Path, rules_cdb: Path, conn: tuple) -> tuple[int, bytes, bytes]:
    p = subprocess.run([str(bindir / "tcprulescheck"), str(rules_cdb)], env=connection_env(*conn),
                       capture_output=True, timeout=30)
    return p.returncode, p.stdout, p.stderr


def in_process(rules_cdb: Path, conn: tuple) -> tuple[int, bytes, bytes]:
    """What our tcprulescheck prints, computed with tcpserver.rules directly."""
    ip, host, info = conn
    with cdb.Reader(rules_cdb) as r:
        found = rules.match(r, b"0.0.0.0" if ip is None else ip, info, host)
    return 0, describe(*found) if found else b"default:\nallow connection\n", b""


def connections(g: Generated, seed: int, n: int) -> list[tuple]:
    """Connections aimed at the generated rules: exact, prefix, host, info, nothing."""
    rnd = random.Random(seed)
    out: list[tuple] = [(None, None, None), (b"", None, None), (b"0.0.0.0", b"", b"")]
    for _ in range(n):
        kind = rnd.randrange(6)
        if kind == 0 and g.ips:
            ip = rnd.choice(g.ips)
        elif kind == 1 and g.prefixes:
            ip = rnd.choice(g.prefixes) + b"%d" % rnd.randrange(256)
            ip = b".".join((ip.split(b".") + [b"1", b"2", b"3"])[:4])
        else:
            ip = _ip(rnd)
        host = None
        if rnd.random() < 0.6:
            host = rnd.choice(g.hosts) if g.hosts and rnd.random() < 0.7 else _host(rnd)
            if rnd.random() < 0.3:
                host = b"deep." + host
        info = None
        if rnd.random() < 0.4:
            info = rnd.choice(g.infos) if g.infos and rnd.random() < 0.7 else b"nobody"
        out.append((ip, host, info))
    return out


@pytest.fixture(scope="module")
def compiled(tmp_path_factory, ref: Path) -> tuple[Generated, Path, Path]:
    """One generated rules file compiled by theirs and by ours."""
    g = generate(11, 2500)
    # without a rule for the empty address, so that some connections get the default
    g.text = b"\n".join(line for line in g.text.split(b"\n") if not line.startswith(b":"))
    root = tmp_path_factory.mktemp("compiled")
    theirs = run_rules(ref, root / "theirs", g.text)
    ours = run_rules(OURS, root / "ours", g.text)
    assert theirs.rc == ours.rc == 0
    return g, root / "theirs" / "rules.cdb", root / "ours" / "rules.cdb"


def test_tcprulescheck_cross_reads(compiled, ref: Path) -> None:
    """Theirs on our CDB and ours on theirs answer alike, for every kind of connection."""
    g, their_cdb, our_cdb = compiled
    conns = connections(g, 1, 45)
    answers = set()
    for conn in conns:
        theirs = check(ref, our_cdb, conn)
        ours = check(OURS, their_cdb, conn)
        assert ours == theirs, conn
        answers.add(theirs[1].split(b"\n")[0])
    assert len(answers) > 15  # the connections hit many different rules


def test_lookup_order_matches_theirs(compiled, ref: Path) -> None:
    """tcpserver.rules, in process, finds the rule their tcprulescheck finds."""
    g, their_cdb, our_cdb = compiled
    kinds = set()
    for conn in connections(g, 2, 600):
        theirs = check(ref, our_cdb, conn)
        assert in_process(their_cdb, conn) == theirs, conn
        first = theirs[1].split(b"\n")[0]
        kinds.add(b"info" if b"@" in first else b"host" if b"rule =" in first
                  else b"default" if first == b"default:" else b"prefix" if first.endswith(b".:")
                  else b"ip")
    assert kinds == {b"info", b"host", b"default", b"prefix", b"ip"}


def test_manual_page_examples(tmp_path: Path, ref: Path) -> None:
    text = b"joe@127.0.0.1:allow,W=\"first\"\n18.23.0.32:allow,W=\"second\"\n:allow,W=\"third\"\n127.:allow,W=\"fourth\"\n"
    out = run_rules(OURS, tmp_path, text)
    assert out.rc == 0
    want = {(b"10.119.75.38", None): b"third", (b"18.23.0.32", None): b"second",
            (b"127.0.0.1", b"bill"): b"fourth", (b"127.0.0.1", b"joe"): b"first"}
    for (ip, info), word in want.items():
        for bindir in (OURS, ref):
            rc, stdout, _ = check(bindir, tmp_path / "rules.cdb", (ip, None, info))
            assert rc == 0 and b"set environment variable W=" + word + b"\n" in stdout


def test_tcprulescheck_output_forms(tmp_path: Path, ref: Path) -> None:
    text = (b'1.2.3.4:allow,A="1",B="",C="x=y"\n5.6.7.8:deny,A="not shown"\n'
            b"=h.example:deny\n9.:allow\n")
    run_rules(OURS, tmp_path, text)
    for conn, want in (((b"1.2.3.4", None, None),
                        b"rule 1.2.3.4:\nset environment variable A=1\nset environment variable B=\n"
                        b"set environment variable C=x=y\nallow connection\n"),
                       ((b"5.6.7.8", None, None), b"rule 5.6.7.8:\ndeny connection\n"),
                       ((b"7.7.7.7", b"h.example", None), b"rule =h.example:\ndeny connection\n"),
                       ((b"9.8.7.6", None, None), b"rule 9.:\nallow connection\n"),
                       ((b"7.7.7.7", None, None), b"default:\nallow connection\n")):
        assert check(ref, tmp_path / "rules.cdb", conn) == (0, want, b"")
        assert check(OURS, tmp_path / "rules.cdb", conn) == (0, want, b"")


def _cdb_file(data: bytes | None):
    def setup(path: Path) -> None:
        if data is not None:
            path.write_bytes(data)
    return setup


def _valid(n: int | None = None) -> bytes:
    """A CDB of 51 rules, cut to ``n`` bytes."""
    buf = io.BytesIO()
    w = cdb.Writer(buf)
    for i in range(50):
        w.add(b"1.2.3.%d" % i, b"D\0")
    w.add(b"", b"+X=y\0")
    w.finish()
    return buf.getvalue()[:n]


CHECK_FAILURES = {
    "missing file": None,
    "empty file": b"",
    "header cut short": _valid(100),
    "records cut short": _valid(2100),
    "tables cut short": _valid(len(_valid()) - 20),
    "zeroed header": bytes(4096),
}


@pytest.mark.parametrize("name", list(CHECK_FAILURES))
def test_tcprulescheck_bad_files_golden(name: str, tmp_path: Path, ref: Path) -> None:
    _cdb_file(CHECK_FAILURES[name])(tmp_path / "r.cdb")
    for ip in (b"1.2.3.4", b"9.9.9.9"):
        theirs = check(ref, tmp_path / "r.cdb", (ip, None, None))
        ours = check(OURS, tmp_path / "r.cdb", (ip, None, None))
        assert ours == theirs


def test_tcprulescheck_fifo_does_not_hang(tmp_path: Path, ref: Path) -> None:
    os.mkfifo(tmp_path / "r.cdb")
    theirs = check(ref, tmp_path / "r.cdb", (b"1.2.3.4", None, None))
    assert check(OURS, tmp_path / "r.cdb", (b"1.2.3.4", None, None)) == theirs
    assert theirs[0] == 111


def test_tcprulescheck_usage(ref: Path) -> None:
    for bindir in (ref, OURS):
        p = subprocess.run([str(bindir / "tcprulescheck")], capture_output=True, env=BASE_ENV)
        assert (p.returncode, p.stdout, p.stderr) == (
            100, b"", b"tcprulescheck: usage: tcprulescheck rules.cdb\n")


# -- IPv6, as Debian's ucspi-tcp-ipv6 has it -------------------------------------

IPV6_RULES = (b"2001:db8::1:allow,A=\"exact\"\n2001:db8::allow,A=\"db8 prefix\"\n"
              b"2001:allow,A=\"not a prefix\"\n::1:deny\njoe@::1:allow,A=\"joe\"\n"
              b"::ffff:1.2.3.:allow,A=\"mapped\"\nFE80::A:deny\n"
              b"1.2.3.4:allow\n=h.example:deny\n:allow,A=\"default\"\n")


def test_ipv6_rules_byte_identical_to_ucspi_tcp_ipv6(ref6: Path, tmp_path: Path) -> None:
    theirs = run_rules(ref6, tmp_path / "theirs", IPV6_RULES)
    ours = run_rules(OURS, tmp_path / "ours", IPV6_RULES)
    assert theirs.rc == 0, theirs.err
    assert ours == theirs


@pytest.mark.parametrize("line", [b"fe80::-3:allow\n", b"::1:allowx\n", b"::1:deny,X\n",
                                  b"1.2.3.4:allow:deny\n", b"::1:deny:allow\n"])
def test_ipv6_bad_lines_as_ucspi_tcp_ipv6(line: bytes, ref6: Path, tmp_path: Path) -> None:
    theirs = run_rules(ref6, tmp_path / "theirs", line)
    ours = run_rules(OURS, tmp_path / "ours", line)
    assert theirs.rc == 100
    assert ours == theirs


def test_ipv6_lookup_as_ucspi_tcp_ipv6(ref6: Path, tmp_path: Path) -> None:
    run_rules(OURS, tmp_path, IPV6_RULES)
    for ip in (b"2001:db8::1", b"2001:db8::2", b"2001:db8:1::5", b"2001:4::1", b"::1",
               b"::ffff:1.2.3.4", b"1.2.3.4", b"fe80::1"):
        for host, info in ((None, None), (b"h.example", None), (None, b"joe"), (b"x.y", b"joe")):
            conn = (ip, host, info)
            theirs = check(ref6, tmp_path / "rules.cdb", conn)
            assert check(OURS, tmp_path / "rules.cdb", conn) == theirs, conn
            assert in_process(tmp_path / "rules.cdb", conn) == theirs, conn


# -- tcpserver.rules as a library ---------------------------------------------------

def test_candidates_order() -> None:
    assert list(rules.candidates("1.2.3.4", "joe", "mail.example.com")) == [
        b"joe@1.2.3.4", b"joe@=mail.example.com", b"1.2.3.4", b"=mail.example.com",
        b"1.2.3.", b"1.2.", b"1.", b"=.example.com", b"=.com", b"=", b""]
    assert list(rules.candidates("1.2.3.4")) == [b"1.2.3.4", b"1.2.3.", b"1.2.", b"1.", b""]
    assert list(rules.candidates("2001:db8::1", None, "h")) == [
        b"2001:db8::1", b"=h", b"2001:db8::", b"2001:db8:", b"2001:", b"=", b""]


def test_lookup_and_parse(tmp_path: Path) -> None:
    run_rules(OURS, tmp_path, b'1.2.3.:allow,RELAYCLIENT="",X="a=b"\n5.:deny,Y="z"\n')
    with cdb.Reader(tmp_path / "rules.cdb") as r:
        assert rules.match(r, "1.2.3.4") == (b"1.2.3.", b"+RELAYCLIENT=\0+X=a=b\0")
        data = rules.lookup(r, "1.2.3.4", None, None)
        assert rules.parse(data) == rules.Rule(False, [(b"RELAYCLIENT", b""), (b"X", b"a=b")])
        assert rules.parse(rules.lookup(r, "5.6.7.8")) == rules.Rule(True, [(b"Y", b"z")])
        assert rules.lookup(r, "9.9.9.9") is None
    assert rules.parse(b"+A=1\0+noequals\0junk+B=2") == rules.Rule(False, [(b"A", b"1")])


def test_parse_line_forms() -> None:
    assert tcprules.parse_line(b"# x") is None
    assert tcprules.parse_line(b"") is None
    assert tcprules.parse_line(b"no colon") is None
    assert tcprules.parse_line(b"1.2.3.4:deny,X=/y/ \t") == (b"1.2.3.4", b"D\0+X=y\0")
    assert tcprules.parse_line(b"::1:allow") == (b"::1", b"")
    with pytest.raises(tcprules.BadLine):
        tcprules.parse_line(b"a:b")
    assert tcprules.keys(b"1.2.3.4-6") == [b"1.2.3.4", b"1.2.3.5", b"1.2.3.6"]
    assert tcprules.keys(b"10.2-3.") == [b"10.2.", b"10.3."]
    assert tcprules.keys(b"1.2.3.254-999") == [b"1.2.3.254", b"1.2.3.255"]
    assert tcprules.keys(b"joe@1.2.3.4-6") == [b"joe@1.2.3.4-6"]
    with pytest.raises(ValueError):
        tcprules.keys(b"1.2.3.a-6")
