"""checkpassword: check a system account's password, then run a program as it.

Usage: ``checkpassword prog [ arg ... ]`` (checkpassword-0.90's interface).

Reads descriptor 3 to its end (at most 512 bytes), then closes it: a login
name ended by NUL, a password ended by NUL, a timestamp (ignored) and
possibly more.  The password is checked against the account's hash in
/etc/shadow (or /etc/passwd) with libcrypt's crypt(), see
:mod:`pyqmail.pwcheck`.  On success: the group list becomes the account's
group alone, then its gid and its uid; the working directory its home;
``$USER``, ``$HOME`` and ``$SHELL`` are set; ``prog`` is exec'd.

Exit codes, with nothing printed: 1 for an unacceptable password (unknown
account, wrong or empty password, more than 512 bytes of input) and when the
ids cannot be changed, 2 for misuse (no ``prog``, input not two NUL-ended
strings), 111 for temporary trouble (reading descriptor 3 or the shadow file,
changing to the home directory, running ``prog``).
"""
from __future__ import annotations

import os

from pyqmail import pathexec, pwcheck
from pyqmail.strerr import run

#: the most descriptor 3 may hold
MAXINPUT = 512
BAD = 1
MISUSE = 2
TEMP = 111


def read_input(fd: int = 3) -> bytes | int:
    """What ``fd`` holds up to its end, or the exit code if that cannot be had."""
    data = b""
    while True:
        try:
            chunk = os.read(fd, MAXINPUT + 1 - len(data))
        except OSError:
            return TEMP
        if not chunk:
            break
        data += chunk
        if len(data) > MAXINPUT:
            return BAD
    try:
        os.close(fd)
    except OSError:
        pass
    return data


def split(data: bytes) -> tuple[bytes, bytes] | None:
    """The login name and password, each of which must end with NUL; else None."""
    login, nul, rest = data.partition(b"\0")
    if not nul or not rest:
        return None
    password, nul, _ = rest.partition(b"\0")
    if not nul:
        return None
    return login, password


def become(pw) -> int:
    """Take the account's ids and home; 0 or the exit code."""
    try:
        os.setgroups([pw.pw_gid])
        os.setgid(pw.pw_gid)
        os.setuid(pw.pw_uid)
    except OSError:
        return BAD
    try:
        os.chdir(pw.pw_dir)
    except OSError:
        return TEMP
    return 0


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        return MISUSE
    data = read_input()
    if isinstance(data, int):
        return data
    fields = split(data)
    if fields is None:
        return MISUSE
    login, password = fields
    try:
        pw = pwcheck.check(login, password)
    except pwcheck.Trouble:
        return TEMP
    if pw is None:
        return BAD
    code = become(pw)
    if code:
        return code
    env = pathexec.environ_with([b"USER=" + os.fsencode(pw.pw_name),
                                 b"HOME=" + os.fsencode(pw.pw_dir),
                                 b"SHELL=" + os.fsencode(pw.pw_shell)])
    pathexec.run(argv[1:], env)
    return TEMP


def cli() -> None:
    run(main)


if __name__ == "__main__":
    cli()
