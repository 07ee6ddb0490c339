"""qmail's queue tree as hier.c makes it: directories, owners, modes.

``make_queue`` lays out ``QMAILHOME/queue`` (and our ``run/`` for the queue
service's socket) as qmail's installer does.  As root the owners are
qmail's accounts; otherwise everything belongs to the caller, who then
runs the whole system as himself (tests, the quick start).
"""
from __future__ import annotations

import os

from pyqmail import qmailids as ids
from pyqmail.fsutil import fifo_make
from pyqmail.queue import SPLIT

Q, S, R = ids.QMAILQ, ids.QMAILS, ids.QMAILR

#: (path under QMAILHOME, owner, mode, split?) in hier.c's order
DIRS = (
    ("queue", Q, 0o750, False),
    ("queue/pid", Q, 0o700, False),
    ("queue/intd", Q, 0o700, False),
    ("queue/todo", Q, 0o750, False),
    ("queue/bounce", S, 0o700, False),
    ("queue/mess", Q, 0o750, True),
    ("queue/info", S, 0o700, True),
    ("queue/local", S, 0o700, True),
    ("queue/remote", S, 0o700, True),
    ("queue/lock", Q, 0o750, False),
    ("run", Q, 0o755, False),
)


#: (uid, gid) to own everything instead of qmail's accounts (see make_queue)
_as: tuple[int, int] | None = None


def _own(path: str, owner: str) -> None:
    if _as is not None:
        os.chown(path, *_as)
    elif ids.privileged():
        os.chown(path, ids.run_uid(owner), ids.run_gid(ids.GROUP_QMAIL))


def _dir(path: str, owner: str, mode: int) -> None:
    os.makedirs(path, exist_ok=True)
    _own(path, owner)
    os.chmod(path, mode)


def make_queue(home: str, as_user: tuple[int, int] | None = None) -> None:
    """Create (or repair) the queue under ``home``; existing contents are kept.

    ``as_user`` (uid, gid): one account owns it all, for a system run entirely
    as that account (the quick start run by root runs it as nobody)."""
    global _as
    _as = as_user
    try:
        _make_queue(home)
    finally:
        _as = None


def _make_queue(home: str) -> None:
    for name, owner, mode, split in DIRS:
        path = os.path.join(home, name)
        _dir(path, owner, mode)
        if split:
            for i in range(SPLIT):
                _dir(os.path.join(path, str(i)), owner, mode)
    lock = os.path.join(home, "queue", "lock")
    tcpto = os.path.join(lock, "tcpto")
    if not os.path.exists(tcpto):
        with open(tcpto, "wb") as f:
            f.write(b"\0" * 1024)
    _own(tcpto, R)
    os.chmod(tcpto, 0o644)
    mutex = os.path.join(lock, "sendmutex")
    open(mutex, "ab").close()
    _own(mutex, S)
    os.chmod(mutex, 0o600)
    trigger = os.path.join(lock, "trigger")
    fifo_make(trigger, 0o622)
    _own(trigger, S)
    os.chmod(trigger, 0o622)


#: the programs qmail runs by path from QMAILHOME/bin, and those a guide's run
#: scripts name there
BIN = ("qmail-queue", "qmail-local", "qmail-remote", "qmail-getpw", "qmail-inject",
       "sendmail", "qmail-send", "qmail-start", "qmail-clean", "qmail-lspawn",
       "qmail-rspawn", "qmail-queued", "qmail-smtpd", "qmail-popup", "qmail-pop3d",
       "qmail-qread", "qmail-qstat", "qmail-showctl", "qmail-newu", "qmail-pw2u",
       "qmail-tcpto", "qmail-tcpok", "forward", "preline", "condredirect", "bouncesaying",
       "except", "maildirmake", "maildir2mbox", "splogger", "dot-forward", "fastforward")


def make_home(home: str, me: str, bindir: str, as_user: tuple[int, int] | None = None) -> None:
    """A whole qmail tree under ``home`` for host ``me``: ``bin/`` linking to our
    programs in ``bindir``, ``control/me`` and ``control/locals`` (kept if
    present), and the queue (see :func:`make_queue` for ``as_user``)."""
    os.makedirs(os.path.join(home, "control"), exist_ok=True)
    os.makedirs(os.path.join(home, "bin"), exist_ok=True)
    os.chmod(home, 0o755)
    for prog in BIN:
        src = os.path.join(bindir, prog)
        dst = os.path.join(home, "bin", prog)
        if os.path.exists(src) and not os.path.lexists(dst):
            os.symlink(src, dst)
    for name in ("me", "locals"):
        path = os.path.join(home, "control", name)
        if not os.path.exists(path):
            with open(path, "w") as f:
                f.write(me + "\n")
            os.chmod(path, 0o644)
    make_queue(home, as_user)
