"""Control files read as qmail's control.c reads them."""
from __future__ import annotations

import pytest

from pyqmail import control


@pytest.fixture
def home(tmp_path, monkeypatch):
    (tmp_path / "control").mkdir()
    monkeypatch.setenv("QMAILHOME", str(tmp_path))
    return tmp_path / "control"


def test_home_default(monkeypatch):
    monkeypatch.delenv("QMAILHOME", raising=False)
    assert control.path("control", "me") == "/var/qmail/control/me"


def test_readline_defaults_and_me(home):
    assert control.readline("bouncefrom", "MAILER-DAEMON") == "MAILER-DAEMON"
    assert control.readline("helohost", flagme=True) is None
    (home / "me").write_text("mail.example.com \t\nignored\n")
    assert control.readline("me") == "mail.example.com"
    assert control.readline("helohost", flagme=True) == "mail.example.com"
    (home / "helohost").write_text("helo.example.com")
    assert control.readline("helohost", flagme=True) == "helo.example.com"


def test_readint(home):
    assert control.readint("concurrencylocal", 10) == 10
    (home / "concurrencylocal").write_text("25\n")
    assert control.readint("concurrencylocal", 10) == 25
    (home / "databytes").write_text("12x\n")
    assert control.readint("databytes", 0) == 12
    (home / "databytes").write_text("x12\n")  # qmail's control_readint keeps the default
    assert control.readint("databytes", 7) == 7


def test_readlines(home):
    assert control.readlines("rcpthosts") == []
    (home / "me").write_text("me.example\n")
    assert control.readlines("locals", flagme=True) == ["me.example"]
    (home / "locals").write_text("# comment\nlocalhost\n\n  \nexample.com  \nlast")
    assert control.readlines("locals", flagme=True) == ["localhost", "example.com", "last"]


def test_unreadable_is_an_error(home):
    (home / "rcpthosts").mkdir()
    with pytest.raises(IsADirectoryError):
        control.readlines("rcpthosts")


def test_carriage_returns_stay(home):
    # control.c strips spaces, tabs and newlines only (checked against fastforward's copy)
    (home / "me").write_bytes(b"crlf.example\r\n")
    (home / "locals").write_bytes(b"a.example\r\n\r\nb.example \t\n")
    assert control.readline("me") == "crlf.example\r"
    assert control.readlines("locals") == ["a.example\r", "\r", "b.example"]
    assert control.firstline(str(home / "none")) is None
    assert control.filelines(str(home / "locals")) == [b"a.example\r", b"\r", b"b.example"]
