"""qmail-rspawn: run remote deliveries for qmail-send (qmail-rspawn(8)).

Usage: ``qmail-rspawn`` (qmail-start runs it as qmailr, with qmail-send's
commands on fd 0 and its reports on fd 1; see :mod:`pyqmail.spawner`).
Each recipient is sent by ``qmail-remote host sender recip`` (or the
program ``$QMAILREMOTE`` names), and its per-recipient and message reports
are turned into one K, Z or D report for qmail-send.  Clears
``lock/tcpto`` at start.

When the program is our qmail-remote, it runs in a forked child of this
process with the argv, descriptors and environment an exec would give.
"""
from __future__ import annotations

import os
import signal

from pyqmail import preload, spawner
from pyqmail.errstr import error_temp
from pyqmail.strerr import run

_remote = None
_prog = "qmail-remote"


def report(wstat: int, s: bytes) -> bytes:
    """qmail-rspawn's report from qmail-remote's exit status and output."""
    if os.WIFSIGNALED(wstat):
        return b"Zqmail-remote crashed.\n"
    code = os.WEXITSTATUS(wstat)
    if code == 111:
        return b"ZUnable to run qmail-remote.\n"
    if code != 0:
        return b"DUnable to run qmail-remote.\n"
    if not s:
        return b"Zqmail-remote produced no output.\n"
    result = -1
    j = 0
    for k in range(len(s)):
        if s[k] == 0:
            c = s[j:j + 1]
            if c == b"K":
                result = 1
                break
            if c == b"Z":
                result = 0
                break
            if c == b"D":
                break
            j = k + 1
    orr = result
    if s[:1] == b"s":
        orr = 0
    elif s[:1] == b"h":
        orr = -1
    out = {1: b"K", 0: b"Z", -1: b"D"}[orr]
    first = s.find(b"\0", 1)
    if first >= 0:
        out += s[1:first]
        k = first + 1
        if result <= orr and k < len(s) and s[k:k + 1] in (b"Z", b"D", b"K"):
            out += s[k + 1:].split(b"\0", 1)[0]
    return out


def spawn(fdmess: int, fdout: int, sender: bytes, recip: bytes, at: int) -> tuple[int, None]:
    args = [_prog, os.fsdecode(recip[at + 1:]), os.fsdecode(sender), os.fsdecode(recip)]
    pid = os.fork()
    if pid:
        return pid, None
    try:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        try:
            os.dup2(fdmess, 0)
            os.dup2(fdout, 1)
            os.dup2(1, 2)
        except OSError:
            os._exit(111)
        if _remote is not None:
            preload.call(_remote, args, None)
        try:
            os.execvp(args[0], args)
        except OSError as e:
            os._exit(111 if error_temp(e.errno) else 100)
    finally:
        os._exit(111)


def main(argv: list[str]) -> int:
    global _remote, _prog
    _prog = os.environ.get("QMAILREMOTE") or "qmail-remote"
    _remote = preload.find(_prog)
    if _prog == "qmail-remote" and _remote is None:
        from mta import qmail_remote  # ours, whatever PATH holds

        _remote = qmail_remote.cli
    try:
        owner = spawner.enter_queue()
    except OSError:
        return 111
    try:  # tcpto_clean
        fd = os.open("../lock/tcpto", os.O_WRONLY)
        try:
            os.write(fd, b"\0" * 1024)
        finally:
            os.close(fd)
    except OSError:
        pass
    return spawner.Spawner(spawn, report, 0, owner).loop()


def cli() -> None:
    run(main)


if __name__ == "__main__":
    cli()
