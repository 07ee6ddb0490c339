"""Run a child as qmail's small delivery tools do (fork, execvp, wait).

``except``, ``bouncesaying`` and ``condredirect`` run a program on the same
stdin and judge its exit code; a program that cannot be run counts as having
exited 111 (temporary errno) or 100, as their forked child reports it.
"""
from __future__ import annotations

import os

from pyqmail.errstr import error_temp

#: what a child killed by a signal reports
CRASHED = -1


def start(argv: list, *, env=None, stdin: int | None = None, executable=None,
          stdout: int | None = None, pass_fds: tuple[int, ...] | None = None) -> int:
    """Start ``argv`` (searched in PATH) as a C program's fork and exec would; its pid.

    The child gets SIGPIPE and SIGXFSZ at their defaults, no blocked signal,
    and the descriptors this process inherited (ours are close-on-exec;
    ``pass_fds`` when the caller has listed them already).  It is
    subprocess's vfork and exec, not os.posix_spawn: glibc 2.36's posix_spawn
    leaves signals 32 and 33 ignored in the child.  The caller waits for the
    pid itself.  An exec failure raises OSError here.
    """
    import subprocess

    p = subprocess.Popen(argv, executable=executable, env=env, stdin=stdin, stdout=stdout,
                         close_fds=True,
                         pass_fds=inherited_fds() if pass_fds is None else pass_fds,
                         restore_signals=True)
    p.returncode = 0  # we reap it with waitpid; Popen must not
    return p.pid


def spawnp(argv: list[str], stdin: int | None = None) -> int:
    """Start ``argv`` (searched in PATH); see :func:`start`."""
    return start(argv, stdin=stdin)


def inherited_fds() -> tuple[int, ...]:
    """Descriptors above 2 open without close-on-exec (given to us by our parent)."""
    try:
        names = os.listdir("/proc/self/fd")
    except OSError:
        return ()
    fds = []
    for name in names:
        fd = int(name)
        try:
            if fd > 2 and os.get_inheritable(fd):
                fds.append(fd)
        except OSError:
            pass  # the listing's own descriptor, closed by now
    return tuple(sorted(fds))


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


def run_judged(argv: list[str], fatal: str) -> int:
    """Run ``argv`` for condredirect, bouncesaying and except: its exit code, but
    die 111 (with ``fatal``) if it crashed, exited 111 or could not be waited for."""
    from pyqmail.strerr import die

    try:
        code = run_status(argv)
    except OSError:
        die(111, fatal, "wait failed")
    if code == CRASHED:
        die(111, fatal, "child crashed")
    if code == 111:
        die(111, fatal, "temporary child error")
    return code
