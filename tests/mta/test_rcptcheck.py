"""Recipient checking at RCPT time (control/realrcptto, mta/rcptcheck.py), as the
realrcptto patch: real qmail-smtpd processes on pipes with a scratch QMAILHOME,
accounts from users/assign (qmail-newu) whose homes the test makes."""
from __future__ import annotations

import os
import pwd
import subprocess
from pathlib import Path

import pytest

from tests.helpers import ours
from tests.mta.test_qmail_smtpd import control, home, lines, queued, smtpd  # noqa: F401

GREET = "220 mx.example ESMTP"
NO = "550 sorry, no mailbox here by that name. (#5.1.1)"
OK = "250 ok"


def assign(home: Path, text: str) -> None:
    (home / "users").mkdir(exist_ok=True)
    (home / "users" / "assign").write_text(text + ".\n")
    subprocess.run([ours("qmail-newu")], env={**os.environ, "QMAILHOME": str(home)},
                   check=True, capture_output=True)


def mkhome(path: Path, *dotqmails: str) -> Path:
    path.mkdir(mode=0o755)
    for name in dotqmails:
        (path / name).write_text("./Maildir/\n")
        (path / name).chmod(0o644)
    return path


@pytest.fixture
def boxes(home: Path, tmp_path: Path) -> Path:
    """box: an account (box, box-EXT) with .qmail-foo, .qmail-list-default; vbox: the
    virtual domain virt.example's, with .qmail-info; the rest to an alias home with
    .qmail-postmaster only.  realrcptto on."""
    uid, gid = os.getuid(), os.getgid()
    box = mkhome(tmp_path / "box", ".qmail-foo", ".qmail-list-default", ".qmail-a:b")
    vbox = mkhome(tmp_path / "vbox", ".qmail-info")
    alias = mkhome(tmp_path / "alias", ".qmail-postmaster")
    assign(home, "\n".join([
        f"=box:box:{uid}:{gid}:{box}:::",
        f"+box-:box:{uid}:{gid}:{box}:-::",
        f"+vbox-:vbox:{uid}:{gid}:{vbox}:-::",
        f"=gone:gone:{uid}:{gid}:{tmp_path / 'nowhere'}:-:x:",
        f"+:alias:{uid}:{gid}:{alias}:-::",
        ""]))
    control(home, "rcpthosts", "mx.example\n.sub.example\nvirt.example\n")
    control(home, "virtualdomains", "virt.example:vbox\n")
    control(home, "realrcptto", "1\n")
    return box


def session(*rcpts: str) -> bytes:
    return (b"MAIL FROM:<a@b.example>\r\n"
            + b"".join(b"RCPT TO:<" + r.encode() + b">\r\n" for r in rcpts) + b"QUIT\r\n")


def replies(home: Path, *rcpts: str, **env: str | None) -> list[str]:
    out, rc = smtpd(home, session(*rcpts), **env)
    assert rc == 0
    got = out.split("\r\n")
    assert got[:2] == [GREET, OK] and got[-2:] == ["221 mx.example", ""]
    return got[2:-2]


def test_off_by_default_is_qmail(home: Path, boxes: Path) -> None:
    (home / "control" / "realrcptto").unlink()
    assert replies(home, "nobody@mx.example", "box-bar@mx.example") == [OK, OK]
    control(home, "realrcptto", "0\n")
    assert replies(home, "nobody@mx.example") == [OK]


def test_local_recipients(home: Path, boxes: Path) -> None:
    assert replies(home,
                   "box@mx.example",           # no extension: .qmail or the default delivery
                   "Box-Foo@MX.example",       # .qmail-foo (extension lower-cased)
                   "box-bar@mx.example",       # no .qmail-bar, no .qmail-default
                   "box-list-x-y@mx.example",  # .qmail-list-default
                   "box-list@mx.example",      # neither .qmail-list nor .qmail-default
                   "box-a.b@mx.example",       # a dot names the file with a colon
                   "postmaster@mx.example",    # the alias home's .qmail-postmaster
                   "nobody@mx.example",        # the alias home has no .qmail-nobody
                   "box-bar") == [             # envnoathost (default me) is local
        OK, OK, NO, OK, NO, OK, OK, NO, NO]


def test_default_catch_all(home: Path, boxes: Path) -> None:
    assert replies(home, "box-bar@mx.example") == [NO]
    (boxes / ".qmail-default").write_text("./Maildir/\n")
    assert replies(home, "box-bar@mx.example", "box-list@mx.example",
                   "box-x-y-z@mx.example") == [OK, OK, OK]


def test_undecidable_is_accepted(home: Path, boxes: Path) -> None:
    # a home that is not there, a .qmail that qmail-local would refuse (writable): delivery decides
    writable = boxes / ".qmail-w"
    writable.write_text("./Maildir/\n")
    writable.chmod(0o666)
    assert replies(home, "gone@mx.example", "box-w@mx.example") == [OK, OK]


def test_unknown_account_through_getpw(home: Path) -> None:
    """No users/cdb: qmail-getpw finds no account, so the alias account's home
    (no .qmail-LOCAL there, no .qmail-default) or, with no alias account, nothing."""
    try:
        alias = pwd.getpwnam("alias").pw_dir
    except KeyError:
        pass  # QLX_NOALIAS: refused, as the patch does
    else:
        if not os.path.isdir(alias) or os.path.exists(os.path.join(alias, ".qmail-default")):
            pytest.skip("the alias account's home would accept it")
    control(home, "realrcptto", "1\n")
    assert replies(home, "nosuchaccountxyz@mx.example") == [NO]


def test_remote_recipients_not_checked(home: Path, boxes: Path) -> None:
    # in rcpthosts but neither in locals nor virtualdomains: qmail-remote's
    assert replies(home, "nobody@a.sub.example") == [OK]
    # relaying: RELAYCLIENT's suffix first; local recipients are still checked
    assert replies(home, "nobody@elsewhere.example", "nobody@mx.example", "box-foo@mx.example",
                   RELAYCLIENT="") == [OK, NO, OK]
    # box+"-bar" has no @: box-bar@envnoathost, local and without a .qmail-bar
    assert replies(home, "box", RELAYCLIENT="-bar") == [NO]
    assert replies(home, "box", RELAYCLIENT="-foo") == [OK]


def test_virtualdomains_prefix(home: Path, boxes: Path) -> None:
    # virt.example:vbox makes info@virt.example vbox-info: vbox's .qmail-info
    assert replies(home, "info@virt.example", "sales@virt.example") == [OK, NO]
    # percenthack then virtualdomains, as qmail-send
    control(home, "percenthack", "mx.example\n")
    assert replies(home, "info%virt.example@mx.example", "x%virt.example@mx.example") == [OK, NO]


def test_refused_recipient_not_queued(home: Path, boxes: Path) -> None:
    out, rc = smtpd(home, b"MAIL FROM:<a@b.example>\r\nRCPT TO:<nobody@mx.example>\r\n"
                    b"RCPT TO:<box-foo@mx.example>\r\nDATA\r\nSubject: x\r\n\r\nhi\r\n.\r\nQUIT\r\n")
    assert out.startswith(lines(GREET, OK, NO, OK, "354 go ahead"))
    assert rc == 0
    [(msg, env)] = queued(home)
    assert env == b"Fa@b.example\0Tbox-foo@mx.example\0\0"


def test_enhanced_status_code(home: Path, boxes: Path) -> None:
    control(home, "enhancedstatuscodes", "1\n")
    out, rc = smtpd(home, session("nobody@mx.example"))
    assert "\r\n550 5.1.1 sorry, no mailbox here by that name. (#5.1.1)\r\n" in out


def test_controls_unreadable(home: Path, boxes: Path) -> None:
    if os.geteuid() == 0:
        (home / "control" / "virtualdomains").unlink()
        (home / "control" / "virtualdomains").mkdir()  # unreadable as a file, even for root
    else:
        (home / "control" / "virtualdomains").chmod(0)
    out, rc = smtpd(home, session("box@mx.example"))
    assert (out, rc) == (lines("421 unable to read controls (#4.3.0)"), 1)
