"""qmail-start: turn on mail delivery (qmail-start(8)).

Usage: ``qmail-start [ defaultdelivery [ logger arg ... ] ]``.  Starts
qmail-send (as qmails), qmail-lspawn (root, given ``defaultdelivery``,
default ``./Mailbox``), qmail-rspawn (qmailr) and qmail-clean (qmailq),
joined by pipes as qmail's: qmail-send talks to lspawn on fds 1/2, to rspawn
on 3/4, to qmail-clean on 5/6, and logs on fd 0, which is our stdout or,
with a logger, a pipe to ``logger arg ...`` run as qmaill.  This process
becomes qmail-send.

Beyond qmail, it also starts the queue service, qmail-queued (as qmailq).
The two watch each other through pipes: qmail-queued ends when qmail-send
does, and qmail-send (given the other pipe's read end as fd 7) finishes its
deliveries and exits when qmail-queued is gone, so that supervise starts
the whole again.

qmail's programs are started as forks of this already-loaded process that
call their ``main``, with the argv, descriptors, ids, directory and umask
their exec would have had; the logger is exec'd unless it is one of ours.
Run as root it switches ids as qmail does; run as anyone else everything
runs as the caller (a scratch system).  Exits 111 if anything fails.
"""
from __future__ import annotations

import os

from pyqmail import preload, qmailids as ids
from pyqmail.strerr import die, run

FATAL = "qmail-start: fatal: "


def _fd_copy(to: int, frm: int) -> None:
    if to != frm:
        os.dup2(frm, to)


def _close23456() -> None:
    for fd in (2, 3, 4, 5, 6):
        try:
            os.close(fd)
        except OSError:
            pass


def _child(uid: int | None, gid: int | None, stdin: int, stdout: int, module: str,
           argv: list[str], pipes: list[int], also: int | None = None) -> None:
    """Fork a child that runs our program ``mta.module`` as ``argv``.  The module
    is loaded in the child: each program carries only what it needs."""
    if os.fork():
        return
    try:
        if gid is not None and ids.privileged():
            os.setgroups([gid])
            os.setgid(gid)
        if uid is not None and ids.privileged():
            os.setuid(uid)
        os.dup2(stdin, 0)
        os.dup2(stdout, 1)
        _close23456()
        for fd in pipes:
            if fd != also:
                try:
                    os.close(fd)
                except OSError:
                    pass
        if also is not None:
            os.set_inheritable(also, True)  # kept open through the exec-like call
        import importlib

        target = importlib.import_module("mta." + module).cli
        preload.call(target, argv, None)
    finally:
        os._exit(111)


def main(argv: list[str]) -> int:
    try:
        os.chdir("/")
    except OSError:
        return 111
    os.umask(0o077)
    try:
        uidl = ids.run_uid(ids.QMAILL)
        uidq = ids.run_uid(ids.QMAILQ)
        uidr = ids.run_uid(ids.QMAILR)
        uids = ids.run_uid(ids.QMAILS)
        gidn = ids.run_gid(ids.GROUP_NOFILES)
        gidq = ids.run_gid(ids.GROUP_QMAIL)
    except ids.MissingId as e:
        die(111, FATAL, str(e))
    try:
        if ids.privileged():
            os.setgroups([gidq])
            os.setgid(gidq)
        for fd in (2, 3, 4, 5, 6):
            _fd_copy(fd, 0)
    except OSError:
        return 111
    args = argv[1:]
    defaultdelivery = "./Mailbox"
    if args:
        defaultdelivery = args.pop(0)
    try:
        if args:
            r, w = os.pipe()
            if os.fork() == 0:
                try:
                    if ids.privileged():
                        os.setgroups([gidn])
                        os.setgid(gidn)
                        os.setuid(uidl)
                    os.close(w)
                    os.dup2(r, 0)
                    _close23456()
                    target = preload.find(args[0])
                    if target is not None:
                        preload.call(target, args, None)
                    os.execvp(args[0], args)
                finally:
                    os._exit(111)
            os.close(r)
            os.dup2(w, 1)
            os.close(w)
        p = [os.pipe() for _ in range(8)]
    except OSError:
        return 111
    flat = [fd for pair in p for fd in pair]
    try:
        _child(None, None, p[1][0], p[2][1], "qmail_lspawn",
               ["qmail-lspawn", defaultdelivery], flat)
        _child(uidr, None, p[3][0], p[4][1], "qmail_rspawn", ["qmail-rspawn"], flat)
        _child(uidq, None, p[5][0], p[6][1], "qmail_clean", ["qmail-clean"], flat)
        # the queue service: stdin the pipe qmail-send holds, output to the log
        _child(uidq, None, p[0][0], 1, "qmail_queued", ["qmail-queued"], flat, also=p[7][1])
        if ids.privileged():
            os.setuid(uids)
        _fd_copy(0, 1)
        _fd_copy(1, p[1][1])
        _fd_copy(2, p[2][0])
        _fd_copy(3, p[3][1])
        _fd_copy(4, p[4][0])
        _fd_copy(5, p[5][1])
        _fd_copy(6, p[6][0])
        _fd_copy(7, p[7][0])
        _fd_copy(8, p[0][1])
    except OSError:
        return 111
    for fd in flat:
        if fd > 8:
            os.close(fd)
    for fd in (7, 8):  # held by qmail-send alone, never passed on
        os.set_inheritable(fd, False)
    from mta import qmail_send

    preload.call(qmail_send.cli, ["qmail-send"], None, close=[])
    return 111


def cli() -> None:
    run(main)


if __name__ == "__main__":
    cli()
