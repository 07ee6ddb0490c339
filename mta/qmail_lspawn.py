"""qmail-lspawn: run local deliveries for qmail-send (qmail-lspawn(8)).

Usage: ``qmail-lspawn defaultdelivery`` (qmail-start runs it as root, with
qmail-send's commands on fd 0 and its reports on fd 1; see
:mod:`pyqmail.spawner` for the protocol).  For each recipient it finds the
account in ``users/cdb`` or, failing that, as qmail-getpw would, and runs
qmail-local as that account's uid and gid with the message on stdin.

Ours runs qmail-local in delivery workers, one per account, forked from
this already-loaded process (see :mod:`mta.lspawn_workers`): no interpreter
start and no fork per delivery.  Each delivery has the argv, descriptors,
ids and environment an exec of ``bin/qmail-local`` would have had.  The
users/cdb and qmail-getpw lookups are made here, as root.
"""
from __future__ import annotations

import itertools
import os

from mta import lspawn_workers
from pyqmail import qmailids, spawner, users
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
_tokens = itertools.count(1)
_workers: lspawn_workers.Workers | None = None


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


def assignment(local: bytes) -> users.Assignment | int:
    """nughde_get: users/cdb, else qmail-getpw's answer; or the exit code qmail's
    child would have had (QLX_CDB, QLX_NOALIAS, QLX_NFS, QLX_USAGE)."""
    from mta import qmail_getpw

    try:
        nughde = users.lookup(local)
    except users.UsersCdbError:
        return QLX_CDB
    if nughde is None:
        got = qmail_getpw.answer(local)
        if isinstance(got, int):
            return got
        nughde = got
    a = users.parse(nughde)
    return QLX_USAGE if a is None else a


def spawn(fdmess: int, fdout: int, sender: bytes, recip: bytes, at: int) -> tuple[int, int | None]:
    """Start one delivery: a token, and its exit status if it ended before starting."""
    token = -next(_tokens)
    local = recip[:at]
    if not local:
        return token, 0  # <>
    a = assignment(local)
    if isinstance(a, int):
        return token, a << 8
    if a.uid == 0:
        return token, QLX_ROOT << 8
    if not qmailids.privileged() and (a.uid, a.gid) != (os.getuid(), os.getgid()):
        return token, QLX_USAGE << 8  # the ids cannot be switched to
    argv = [b"bin/qmail-local", b"--", a.user, a.home, local, a.dash, a.ext,
            recip[at + 1:], sender, aliasempty]
    _workers.deliver((a.uid, a.gid), token, argv, fdmess, fdout)
    return token, None


def main(argv: list[str]) -> int:
    global aliasempty, _workers
    if len(argv) < 2:
        return 100
    aliasempty = os.fsencode(argv[1])
    # everything a delivery uses, loaded once here rather than in every child
    from mta import qmail_getpw, qmail_local  # noqa: F401
    from pyqmail import fsutil, maildir, mbox, qmailqueue, sgetopt  # noqa: F401

    try:
        owner = spawner.enter_queue()
    except OSError:
        return 111
    sp = spawner.Spawner(spawn, report, 3000, owner)
    _workers = lspawn_workers.Workers(qmail_local.main, sp.finish, sp.watch)
    sp.tick = _workers.retire
    try:
        return sp.loop()
    finally:
        _workers.stop()


def cli() -> None:
    run(main)


if __name__ == "__main__":
    cli()
