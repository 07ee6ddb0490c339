"""qmail-lspawn: run local deliveries for qmail-send (qmail-lspawn(8)).

Usage: ``qmail-lspawn defaultdelivery`` (qmail-start runs it as root, with
qmail-send's commands on fd 0 and its reports on fd 1; see
:mod:`pyqmail.spawner` for the protocol).  For each recipient it finds the
account in ``users/cdb`` or, failing that, as qmail-getpw would, and runs
qmail-local as that account's uid and gid with the message on stdin.

Ours forks a child of this already-loaded process and calls qmail-local in
it, with the argv, descriptors, ids, directory and environment an exec of
``bin/qmail-local`` would have had: no interpreter start per delivery.  The
qmail-getpw lookup is made in the same child, before it gives up root.
"""
from __future__ import annotations

import os
import signal

from pyqmail import control, preload, qmailids, spawner, users
from pyqmail.users import (QLX_CDB, QLX_EXECHARD, QLX_EXECPW, QLX_EXECSOFT, QLX_NFS,
                           QLX_NOALIAS, QLX_NOMEM, QLX_ROOT, QLX_SYS, QLX_USAGE)
from pyqmail.strerr import run

_WORDS = {
    QLX_CDB: "ZTrouble reading users/cdb in qmail-lspawn.\n",
    QLX_NOMEM: "ZOut of memory in qmail-lspawn.\n",
    QLX_SYS: "ZTemporary failure in qmail-lspawn.\n",
    QLX_NOALIAS: "ZUnable to find alias user!\n",
    QLX_ROOT: "ZNot allowed to perform deliveries as root.\n",
    QLX_USAGE: "ZInternal qmail-lspawn bug.\n",
    QLX_NFS: "ZNFS failure in qmail-local.\n",
    QLX_EXECHARD: "DUnable to run qmail-local.\n",
    QLX_EXECSOFT: "ZUnable to run qmail-local.\n",
    QLX_EXECPW: "ZUnable to run qmail-getpw.\n",
}

aliasempty = b""
_local_cli = None


def report(wstat: int, output: bytes) -> bytes:
    """qmail-lspawn's report: K, Z or D by qmail-local's exit code, then its output."""
    if os.WIFSIGNALED(wstat):
        return b"Zqmail-local crashed.\n"
    code = os.WEXITSTATUS(wstat)
    if code in _WORDS:
        return _WORDS[code].encode()
    if code in (111, 71, 74, 75):
        head = b"Z"
    elif code == 0:
        head = b"K"
    else:
        head = b"D"
    return head + output.split(b"\0", 1)[0]


def assignment(local: bytes) -> users.Assignment:
    """nughde_get: users/cdb, else qmail-getpw's answer; exits as the C child would."""
    from mta import qmail_getpw

    try:
        nughde = users.lookup(local)
    except users.UsersCdbError:
        os._exit(QLX_CDB)
    if nughde is None:
        got = qmail_getpw.answer(local)
        if isinstance(got, int):
            os._exit(got)
        nughde = got
    a = users.parse(nughde)
    if a is None:
        os._exit(QLX_USAGE)
    return a


def child(fdmess: int, fdout: int, sender: bytes, recip: bytes, at: int) -> None:
    """The delivery child: never returns."""
    try:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        local = recip[:at]
        if not local:
            os._exit(0)  # <>
        try:
            os.chdir(control.qmail_home())
        except OSError:
            os._exit(QLX_USAGE)
        a = assignment(local)
        args = [b"bin/qmail-local", b"--", a.user, a.home, local, a.dash, a.ext,
                recip[at + 1:], sender, aliasempty]
        try:
            os.dup2(fdmess, 0)
            os.dup2(fdout, 1)
            os.dup2(1, 2)
        except OSError:
            os._exit(QLX_SYS)
        try:
            qmailids.become(a.uid, a.gid)
        except OSError:
            os._exit(QLX_USAGE)
        if os.getuid() == 0:
            os._exit(QLX_ROOT)
        preload.call(_local_cli, [os.fsdecode(x) for x in args], None)
    finally:
        os._exit(QLX_SYS)


def spawn(fdmess: int, fdout: int, sender: bytes, recip: bytes, at: int) -> int:
    pid = os.fork()
    if pid == 0:
        child(fdmess, fdout, sender, recip, at)
    return pid


def main(argv: list[str]) -> int:
    global aliasempty, _local_cli
    if len(argv) < 2:
        return 100
    aliasempty = os.fsencode(argv[1])
    from mta import qmail_local

    _local_cli = qmail_local.cli
    try:
        os.chdir(control.qmail_home())
        owner = os.stat("queue").st_uid  # qmailq, who owns the queue
        os.chdir("queue/mess")
    except OSError:
        return 111
    return spawner.Spawner(spawn, report, 3000, owner).loop()


def cli() -> None:
    run(main)


if __name__ == "__main__":
    cli()
