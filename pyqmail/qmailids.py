"""The accounts qmail runs as (conf-users, conf-groups), looked up at run time.

qmail compiles the uids of ``alias qmaild qmaill qmailp qmailq qmailr qmails``
and the gids of ``qmail nofiles`` into its programs.  We look them up by name
when a program starts.  When a program runs as root, a missing account is a
fatal error (qmail's inituid exits 111).  When it runs as anyone else (the
quick start, the tests), nobody can switch ids: :func:`run_uid` and
:func:`run_gid` give the caller's own ids, and :func:`uid` gives None for an
account that does not exist, so nothing matches it.
"""
from __future__ import annotations

import grp
import os
import pwd

ALIAS = "alias"
QMAILD = "qmaild"
QMAILL = "qmaill"
QMAILP = "qmailp"
QMAILQ = "qmailq"
QMAILR = "qmailr"
QMAILS = "qmails"
GROUP_QMAIL = "qmail"
GROUP_NOFILES = "nofiles"


class MissingId(LookupError):
    """A qmail account or group that must exist does not."""


def uid(name: str) -> int | None:
    """The uid of account ``name``, or None if there is none."""
    try:
        return pwd.getpwnam(name).pw_uid
    except KeyError:
        return None


def gid(name: str) -> int | None:
    """The gid of group ``name``, or None if there is none."""
    try:
        return grp.getgrnam(name).gr_gid
    except KeyError:
        return None


def privileged() -> bool:
    """True when this process can switch to qmail's accounts (it runs as root)."""
    return os.geteuid() == 0


def run_uid(name: str) -> int:
    """The uid a qmail process of account ``name`` runs as: the account's when we
    are root (MissingId if it does not exist), else our own."""
    if not privileged():
        return os.getuid()
    u = uid(name)
    if u is None:
        raise MissingId(f"unable to find user {name}")
    return u


def run_gid(name: str) -> int:
    """The gid of group ``name`` as :func:`run_uid` treats accounts."""
    if not privileged():
        return os.getgid()
    g = gid(name)
    if g is None:
        raise MissingId(f"unable to find group {name}")
    return g


def become(uid_: int, gid_: int) -> None:
    """prot_gid + prot_uid: the group (and, as root, no other groups), then the user."""
    if privileged():
        os.setgroups([gid_])
    os.setgid(gid_)
    os.setuid(uid_)
