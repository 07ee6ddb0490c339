"""qmail's queue on disk: file names, split directories, the trigger.

Everything is relative to ``QMAILHOME/queue``, where the queue programs
work.  ``mess``, ``info``, ``local`` and ``remote`` are split into
:data:`SPLIT` subdirectories by message number (``mess/<N % 23>/N``);
``todo``, ``intd`` and ``bounce`` are flat (fmtqfn.c).  A message's number
is the inode number of its ``mess`` file.
"""
from __future__ import annotations

import errno
import os

from pyqmail import control

#: conf-split
SPLIT = 23
SPLIT_DIRS = ("mess", "info", "local", "remote")
FLAT_DIRS = ("todo", "intd", "bounce")
#: pid/ and mess/ files older than this are leftovers (qmail-send's OSSIFIED, 36 hours)
OSSIFIED = 129600


def home() -> str:
    """``QMAILHOME/queue``."""
    return control.path("queue")


def fn(dirname: str, id_: int, split: bool | None = None) -> str:
    """fmtqfn: ``dir/N`` or, for split directories, ``dir/<N % 23>/N``."""
    if split is None:
        split = dirname in SPLIT_DIRS
    if split:
        return f"{dirname}/{id_ % SPLIT}/{id_}"
    return f"{dirname}/{id_}"


def ids(dirname: str) -> list[int]:
    """The message numbers in split directory ``dirname`` (readsubdir); names
    that are not numbers are skipped.  OSError if a subdirectory cannot be read."""
    found = []
    for sub in range(SPLIT):
        for name in os.listdir(f"{dirname}/{sub}"):
            if name.isdigit() and name.isascii():
                found.append(int(name))
    return found


def trigger_pull() -> None:
    """Wake qmail-send: one byte into ``lock/trigger``, if anyone is listening."""
    try:
        fd = os.open("lock/trigger", os.O_WRONLY | os.O_NONBLOCK)
    except OSError:
        return
    try:
        os.write(fd, b"\0")
    except OSError:
        pass
    finally:
        os.close(fd)


def missing(path: str) -> bool:
    """True if ``path`` does not exist; OSError for any other trouble with stat."""
    try:
        os.stat(path)
    except OSError as e:
        if e.errno == errno.ENOENT:
            return True
        raise
    return False
