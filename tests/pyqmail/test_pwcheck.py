"""pyqmail.pwcheck: libcrypt's crypt() through ctypes, the shadow file, the check."""
from __future__ import annotations

import os
import pwd
import shutil
import subprocess
from pathlib import Path

import pytest

from pyqmail import pwcheck

#: hashes of "secret" made by libxcrypt (and, where it can, checked by openssl below)
KNOWN = {
    b"$y$j9T$abcdefghijklmnop$": b"$y$j9T$abcdefghijklmnop$3dL1LkYnZM.OVXuVdnnaKVDlLYT92dRwOzDZ5XiVCe.",
    b"$6$saltsalt$": (b"$6$saltsalt$TVLlQcbpFVof5W3Yz4DTP6gRstiNuHwwTt6GLc1E5n0U0aDehy0S5knV8w"
                      b"iOQSpT0Y77vwPZN.Pq.H91p5hVO1"),
    b"$1$saltsalt$": b"$1$saltsalt$9xy1btjgzLYfb7hivXtC//",
    b"ab": b"abNANd1rDfiNc",
}


@pytest.mark.parametrize("setting", list(KNOWN))
def test_crypt_known_hashes(setting: bytes) -> None:
    assert pwcheck.crypt(b"secret", setting) == KNOWN[setting]
    # a full hash is a setting too: that is how a password is checked
    assert pwcheck.crypt(b"secret", KNOWN[setting]) == KNOWN[setting]
    assert pwcheck.crypt(b"Secret", KNOWN[setting]) != KNOWN[setting]


@pytest.mark.skipif(shutil.which("openssl") is None, reason="no openssl")
@pytest.mark.parametrize("flag,prefix", [("-6", b"$6$"), ("-5", b"$5$"), ("-1", b"$1$")])
def test_crypt_agrees_with_openssl(flag: str, prefix: bytes) -> None:
    made = subprocess.run(["openssl", "passwd", flag, "-salt", "pyqmail", "pass word"],
                          capture_output=True, check=True).stdout.strip()
    assert made.startswith(prefix)
    assert pwcheck.crypt(b"pass word", made) == made
    assert pwcheck.matches(b"pass word", made)
    assert not pwcheck.matches(b"pass-word", made)


@pytest.mark.parametrize("stored", [b"", b"x", b"*", b"!", b"!" + KNOWN[b"$6$saltsalt$"],
                                    b"!!", b"*LK*", b"$6$", b"$y$"])
def test_unusable_hashes_never_match(stored: bytes) -> None:
    assert not pwcheck.matches(b"secret", stored)
    assert not pwcheck.matches(b"", stored)


def test_crypt_refusal_is_none() -> None:
    assert pwcheck.crypt(b"secret", b"x") is None
    assert pwcheck.crypt(b"secret", b"!locked") is None


def test_strings_end_at_nul_as_in_c() -> None:
    setting = b"$6$saltsalt$"
    assert pwcheck.crypt(b"secret\0more", setting) == KNOWN[setting]
    assert pwcheck.crypt(b"secret", setting + b"\0junk") == KNOWN[setting]


def test_matches_and_wrong_passwords() -> None:
    for stored in KNOWN.values():
        assert pwcheck.matches(b"secret", stored)
        assert not pwcheck.matches(b"secret ", stored)
        assert not pwcheck.matches(b"", stored)


def test_shadow_hash_finds_the_exact_name(tmp_path: Path) -> None:
    shadow = tmp_path / "shadow"
    shadow.write_bytes(b"root:*:19000:0:99999:7:::\n"
                       b"bobby:$1$b$xx:19000::::::\n"
                       b"bob:$6$s$hash:19000:0:99999:7:::\n"
                       b"nofields\n"
                       b"empty::19000::::::\n")
    assert pwcheck.shadow_hash(b"bob", str(shadow)) == b"$6$s$hash"
    assert pwcheck.shadow_hash(b"bobby", str(shadow)) == b"$1$b$xx"
    assert pwcheck.shadow_hash(b"empty", str(shadow)) == b""
    assert pwcheck.shadow_hash(b"bo", str(shadow)) is None
    assert pwcheck.shadow_hash(b"nofields", str(shadow)) is None
    assert pwcheck.shadow_hash(b"carol", str(shadow)) is None


def test_shadow_missing_is_no_entry_and_other_errors_are_trouble(tmp_path: Path) -> None:
    assert pwcheck.shadow_hash(b"root", str(tmp_path / "none")) is None
    with pytest.raises(pwcheck.Trouble):
        pwcheck.shadow_hash(b"root", str(tmp_path))  # a directory: EISDIR


def test_check_uses_shadow_then_passwd(tmp_path: Path) -> None:
    me = pwd.getpwuid(os.getuid())
    name = me.pw_name.encode()
    shadow = tmp_path / "shadow"
    shadow.write_bytes(b"other:x:1::::::\n" + name + b":" + KNOWN[b"$6$saltsalt$"] + b":19000::::::\n")
    found = pwcheck.check(name, b"secret", str(shadow))
    assert found is not None and found.pw_uid == os.getuid()
    assert pwcheck.check(name, b"wrong", str(shadow)) is None
    # without a shadow line the passwd entry's own field counts ("x": never)
    shadow.write_bytes(b"")
    if me.pw_passwd in ("x", "*", "!", ""):
        assert pwcheck.check(name, b"secret", str(shadow)) is None
    with pytest.raises(pwcheck.Trouble):
        pwcheck.check(name, b"secret", str(tmp_path))


@pytest.mark.parametrize("name", [b"", b"no-such-user-pyqmail", b"ro\0ot", b"\xff\xfe"])
def test_unknown_accounts(name: bytes, tmp_path: Path) -> None:
    assert pwcheck.account(name) is None
    assert pwcheck.check(name, b"secret", str(tmp_path / "none")) is None


def test_library_missing_is_trouble(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pwcheck, "_crypt", None)
    monkeypatch.setattr(pwcheck, "LIBCRYPT", ("libpyqmail-no-such.so.9",))
    with pytest.raises(pwcheck.Trouble):
        pwcheck.crypt(b"a", b"ab")
