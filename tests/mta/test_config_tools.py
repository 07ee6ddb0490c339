"""config-fast, splogger and qmail-showctl."""
from __future__ import annotations

import os
import re
import socket
import stat
import subprocess
from pathlib import Path

import pytest

from tests.helpers import ours

# qmail 1.03's config-fast.sh, QMAIL standing for the qmail home: the oracle
CONFIG_FAST_SH = r"""fqdn="$1"
echo Your fully qualified host name is "$fqdn".

echo Putting "$fqdn" into control/me...
echo "$fqdn" > QMAIL/control/me
chmod 644 QMAIL/control/me

( echo "$fqdn" | sed 's/^\([^\.]*\)\.\([^\.]*\)\./\2\./' | (
  read ddom
  echo Putting "$ddom" into control/defaultdomain...
  echo "$ddom" > QMAIL/control/defaultdomain
  chmod 644 QMAIL/control/defaultdomain
) )

( echo "$fqdn" | sed 's/^.*\.\([^\.]*\)\.\([^\.]*\)$/\1.\2/' | (
  read pdom
  echo Putting "$pdom" into control/plusdomain...
  echo "$pdom" > QMAIL/control/plusdomain
  chmod 644 QMAIL/control/plusdomain
) )

echo Putting "$fqdn" into control/locals...
echo "$fqdn" >> QMAIL/control/locals
chmod 644 QMAIL/control/locals

echo Putting "$fqdn" into control/rcpthosts...
echo "$fqdn" >> QMAIL/control/rcpthosts
chmod 644 QMAIL/control/rcpthosts
echo "Now qmail will refuse to accept SMTP messages except to $fqdn."
echo 'Make sure to change rcpthosts if you add hosts to locals or virtualdomains!'
"""

CONTROLS = ("me", "defaultdomain", "plusdomain", "locals", "rcpthosts")


def run(prog: str, args: list[str], home: Path, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, QMAILHOME=str(home))
    return subprocess.run([ours(prog), *args], input=stdin, env=env, capture_output=True, timeout=30)


def qmailhome(root: Path) -> Path:
    (root / "control").mkdir(parents=True)
    return root


# config-fast

def _controls(home: Path) -> dict[str, tuple[bytes, int]]:
    return {name: ((home / "control" / name).read_bytes(),
                   stat.S_IMODE((home / "control" / name).stat().st_mode)) for name in CONTROLS}


@pytest.mark.parametrize("fqdn", ["mail.example.com", "example.com", "a.b.c.d", "localhost",
                                  ".x.y", "a..b", "mx.Example.ORG"])
def test_config_fast_as_the_script(tmp_path: Path, fqdn: str) -> None:
    ours_home = qmailhome(tmp_path / "ours")
    theirs_home = qmailhome(tmp_path / "theirs")
    script = tmp_path / "config-fast.sh"
    script.write_text(CONFIG_FAST_SH.replace("QMAIL", str(theirs_home)))
    for _ in range(2):  # twice: locals and rcpthosts are appended to
        r = run("config-fast", [fqdn], ours_home)
        t = subprocess.run(["sh", str(script), fqdn], capture_output=True, umask=0o077)
        assert (r.returncode, r.stdout, r.stderr) == (0, t.stdout, b"")
    assert _controls(ours_home) == _controls(theirs_home)


def test_config_fast_texts(tmp_path: Path) -> None:
    home = qmailhome(tmp_path)
    r = run("config-fast", ["mail.example.com"], home)
    assert r.stdout.decode() == (
        "Your fully qualified host name is mail.example.com.\n"
        "Putting mail.example.com into control/me...\n"
        "Putting example.com into control/defaultdomain...\n"
        "Putting example.com into control/plusdomain...\n"
        "Putting mail.example.com into control/locals...\n"
        "Putting mail.example.com into control/rcpthosts...\n"
        "Now qmail will refuse to accept SMTP messages except to mail.example.com.\n"
        "Make sure to change rcpthosts if you add hosts to locals or virtualdomains!\n")
    assert (home / "control" / "me").read_text() == "mail.example.com\n"


def test_config_fast_errors(tmp_path: Path) -> None:
    r = run("config-fast", [], tmp_path)
    assert (r.returncode, r.stdout, r.stderr) == (100, b"", b"config-fast: usage: config-fast fqdn\n")
    r = run("config-fast", ["a.b"], tmp_path / "none")
    assert r.returncode == 111
    assert r.stderr == f"config-fast: fatal: unable to write {tmp_path}/none/control/me: " \
                       "file does not exist\n".encode()


# splogger

def test_splogger_records() -> None:
    from mta.splogger import records

    got = list(records([b"hello\nwarn", b"ing: x\nalert: y\xff\x01\n\n", b"no newline"],
                       stamp=lambda: "1.000002"))
    assert got == [(6, "1.000002 hello"), (4, "1.000002 warning: x"), (1, "1.000002 alert: y??")]
    got = list(records([b"alert:" + b"a" * 794 + b"\n", b"b" * 799 + b"\n"], stamp=lambda: "S"))
    assert [(p, m[:8], len(m)) for p, m in got] == [
        (1, "S alert:", 801), (1, "S+a", 3), (6, "S bbbbbb", 801)]


def test_splogger_stamp_and_facility() -> None:
    from mta.splogger import facility_of, stamp_now

    assert re.fullmatch(r"\d+\.\d{6}", stamp_now())
    assert (facility_of("2"), facility_of("16x"), facility_of("x"), facility_of("")) == (16, 128, 0, 0)
    assert facility_of(str(1 << 28)) == -(1 << 31)


@pytest.fixture
def devlog():
    """A datagram socket at /dev/log standing in for syslogd, when nothing is there."""
    if os.path.lexists("/dev/log") or os.geteuid() != 0:
        pytest.skip("needs root and no /dev/log")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        s.bind("/dev/log")
    except OSError as e:
        s.close()
        pytest.skip(f"cannot bind /dev/log: {e}")
    s.settimeout(10)
    try:
        yield s
    finally:
        s.close()
        os.unlink("/dev/log")


#: what our splogger calls sign with; anything else at /dev/log is some other
#: program on the machine (useradd in a parallel test logs there too)
OURS_TAGS = ("splogger", "qmail")


def _syslogged(sock: socket.socket, n: int) -> list[tuple[int, str, str]]:
    """The next ``n`` datagrams our splogger sent (others' are skipped)."""
    out = []
    while len(out) < n:
        data = sock.recv(4096)
        m = re.fullmatch(rb"<(\d+)>\w{3} [ \d]\d \d\d:\d\d:\d\d ([^:]+): (.*)", data, re.S)
        if m is None or m[2].decode(errors="replace").split("[")[0] not in OURS_TAGS:
            continue
        out.append((int(m[1]), m[2].decode(), m[3].decode()))
    return out


def test_splogger_to_syslog(tmp_path: Path, devlog: socket.socket) -> None:
    r = run("splogger", [], tmp_path, stdin=b"status: local 0/10\nwarning: trouble\nalert: oops\nlost")
    assert (r.returncode, r.stdout, r.stderr) == (0, b"", b"")
    got = _syslogged(devlog, 3)
    assert [(p, t) for p, t, _ in got] == [(16 + 6, "splogger"), (16 + 4, "splogger"), (16 + 1, "splogger")]
    assert [re.sub(r"^\d+\.\d{6} ", "", m) for _, _, m in got] == [
        "status: local 0/10", "warning: trouble", "alert: oops"]
    r = run("splogger", ["qmail", "3"], tmp_path, stdin=b"x\n")
    assert r.returncode == 0
    assert _syslogged(devlog, 1)[0][:2] == (3 * 8 + 6, "qmail")
    devlog.settimeout(0.2)
    with pytest.raises(TimeoutError):  # and nothing more from splogger
        _syslogged(devlog, 1)


def test_splogger_smoke(tmp_path: Path) -> None:
    r = run("splogger", ["pyqmail-test"], tmp_path, stdin=b"")
    assert (r.returncode, r.stdout, r.stderr) == (0, b"", b"")


# qmail-showctl

def _ids(lookup, names) -> str:
    out = []
    for name in names:
        try:
            out.append(str(lookup(name)[2]))
        except KeyError:
            out.append("?")
    return ", ".join(out)


def test_showctl_defaults_and_files(tmp_path: Path) -> None:
    import grp
    import pwd

    home = qmailhome(tmp_path)
    assert run("config-fast", ["mail.example.com"], home).returncode == 0
    c = home / "control"
    (c / "badmailfrom").write_text("# spam\nspam@example.org \n\n@bad.example\n")
    (c / "concurrencylocal").write_text("5\n")
    (c / "concurrencyremote").write_text("junk\n")
    (c / "databytes").write_text("3000000000\n")  # beyond a C int: negative, shown 0
    (c / "bouncefrom").write_text("bounce\tbot\n")
    (c / "percenthack").write_text("")
    (c / "smtproutes").write_text(":relay.example.net\n")
    (c / "unknownfile").write_text("x\n")
    r = run("qmail-showctl", [], home)
    assert (r.returncode, r.stderr) == (0, b"")
    users = _ids(pwd.getpwnam, ("alias", "qmaild", "qmaill", "root", "qmailp", "qmailq", "qmailr", "qmails"))
    groups = _ids(grp.getgrnam, ("nofiles", "qmail"))
    assert r.stdout.decode() == f"""qmail home directory: {home}.
user-ext delimiter: -.
paternalism (in decimal): 2.
silent concurrency limit: 120.
subdirectory split: 23.
user ids: {users}.
group ids: {groups}.

badmailfrom: 
spam@example.org not accepted in MAIL FROM.
@bad.example not accepted in MAIL FROM.

bouncefrom: Bounce user name is bounce?bot.

bouncehost: (Default.) Bounce host name is mail.example.com.

concurrencylocal: Local concurrency is 5.

concurrencyremote: (Default.) Remote concurrency is 20.

databytes: SMTP DATA limit is 0 bytes.

defaultdomain: Default domain name is example.com.

defaulthost: (Default.) Default host name is mail.example.com.

doublebouncehost: (Default.) 2B recipient host: mail.example.com.

doublebounceto: (Default.) 2B recipient user: postmaster.

envnoathost: (Default.) Presumed domain name is mail.example.com.

helohost: (Default.) SMTP client HELO host name is mail.example.com.

idhost: (Default.) Message-ID host name is mail.example.com.

localiphost: (Default.) Local IP address becomes mail.example.com.

locals: 
Messages for mail.example.com are delivered locally.

me: My name is mail.example.com.

percenthack: 

plusdomain: Plus domain name is example.com.

qmqpservers: (Default.) No QMQP servers.

queuelifetime: (Default.) Message lifetime in the queue is 604800 seconds.

rcpthosts: 
SMTP clients may send messages to recipients at mail.example.com.

morercpthosts: (Default.) No effect.

morercpthosts.cdb: (Default.) No effect.

smtpgreeting: (Default.) SMTP greeting: 220 mail.example.com.

smtproutes: 
SMTP route: :relay.example.net

timeoutconnect: (Default.) SMTP client connection timeout is 60 seconds.

timeoutremote: (Default.) SMTP client data timeout is 1200 seconds.

timeoutsmtpd: (Default.) SMTP server data timeout is 1200 seconds.

virtualdomains: (Default.) No virtual domains.

unknownfile: I have no idea what this file does.
"""


def _section(out: bytes, name: str) -> str:
    text = out.decode()
    start = text.index(f"\n{name}: ") + 1
    end = text.find("\n\n", start)
    return text[start:end if end >= 0 else None]


def test_showctl_no_me_and_morercpthosts(tmp_path: Path) -> None:
    home = qmailhome(tmp_path)
    c = home / "control"
    (c / "morercpthosts").write_text("other.example\n")
    r = run("qmail-showctl", [], home)
    assert _section(r.stdout, "me") == "me: (Default.) My name is undefined! Uh-oh."
    assert _section(r.stdout, "bouncehost") == "bouncehost: (Default.) Bounce host name is bouncehost."
    assert _section(r.stdout, "morercpthosts") == (
        "morercpthosts: \nNo rcpthosts; doesn't matter that morercpthosts has other.example.")
    assert _section(r.stdout, "morercpthosts.cdb") == (
        "morercpthosts.cdb: Oops! morercpthosts exists but morercpthosts.cdb doesn't.")
    (c / "rcpthosts").write_text("a.example\n")
    (c / "morercpthosts.cdb").write_bytes(b"")
    os.utime(c / "morercpthosts.cdb", (1000, 1000))
    r = run("qmail-showctl", [], home)
    assert _section(r.stdout, "morercpthosts") == (
        "morercpthosts: \nSMTP clients may send messages to recipients at other.example.")
    assert _section(r.stdout, "morercpthosts.cdb") == (
        "morercpthosts.cdb: Oops! morercpthosts.cdb is older than morercpthosts.")
    os.utime(c / "morercpthosts.cdb")
    r = run("qmail-showctl", [], home)
    assert _section(r.stdout, "morercpthosts.cdb") == (
        "morercpthosts.cdb: Modified recently enough; hopefully up to date.")
    (c / "morercpthosts").unlink()
    r = run("qmail-showctl", [], home)
    assert _section(r.stdout, "morercpthosts.cdb") == (
        "morercpthosts.cdb: Oops! morercpthosts.cdb exists but morercpthosts doesn't.")


def test_showctl_trouble(tmp_path: Path) -> None:
    home = qmailhome(tmp_path / "q")
    c = home / "control"
    (c / "me").write_text("me.example\n")
    for name in ("locals", "helohost", "timeoutsmtpd"):
        (c / name).mkdir()
    r = run("qmail-showctl", [], home)
    assert r.returncode == 0
    for name in ("locals", "helohost", "timeoutsmtpd"):
        assert _section(r.stdout, name) == f"{name}: Oops! Trouble reading this file."
    (c / "me").unlink()
    (c / "me").mkdir()
    r = run("qmail-showctl", [], home)
    assert (r.returncode, r.stdout.decode().split("\n")[-1]) == (111, "Oops! Trouble reading control/me.")
    r = run("qmail-showctl", [], tmp_path / "none")
    assert (r.returncode, r.stdout.decode().split("\n")[-2:]) == (
        111, [f"Oops! Unable to chdir to {tmp_path}/none.", ""])
    r = run("qmail-showctl", [], tmp_path)
    assert (r.returncode, r.stdout.decode().split("\n")[-2:]) == (
        111, ["Oops! Unable to chdir to control.", ""])
