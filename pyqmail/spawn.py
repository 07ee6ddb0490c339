"""Run a child as qmail's small delivery tools do (fork, execvp, wait).

``except``, ``bouncesaying`` and ``condredirect`` run a program on the same
stdin and judge its exit code; a program that cannot be run counts as having
exited 111 (temporary errno) or 100, as their forked child reports it.
"""
from __future__ import annotations

import _signal
import os

from pyqmail.errstr import error_temp

#: what a child killed by a signal reports
CRASHED = -1


def spawnp(argv: list[str], **kw) -> int:
    """Start ``argv`` (searched in PATH) with the default SIGPIPE; its pid."""
    return os.posix_spawnp(argv[0], argv, os.environ,
                           setsigdef=(_signal.SIGPIPE, _signal.SIGXFSZ), **kw)


def wait(pid: int) -> int:
    """The exit code of ``pid``, or :data:`CRASHED`."""
    _, wstat = os.waitpid(pid, 0)
    if os.WIFSIGNALED(wstat):
        return CRASHED
    return os.WEXITSTATUS(wstat)


def run_status(argv: list[str]) -> int:
    """Run ``argv`` to its end: its exit code, :data:`CRASHED`, or 111/100 if it
    could not be run."""
    try:
        pid = spawnp(argv)
    except OSError as e:
        return 111 if error_temp(e.errno) else 100
    return wait(pid)
