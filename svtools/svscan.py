"""svscan: start and watch a supervise for every service directory.

Usage: ``svscan [dir]``.  Every five seconds it looks at the subdirectories of
``dir`` (default: the current directory) whose names do not start with a dot,
starts ``supervise sub`` for each one without a running supervise and, when
``sub/log`` is a directory, ``supervise log`` in ``sub`` with a pipe from the
service's stdout to the log's stdin.  The pipe belongs to svscan, so it
survives restarts of either side.

The supervise processes are forks of this already-loaded program that call
supervise's ``main``, not fresh interpreters: that keeps each one small and
quick to start, and it is always pyqmail's supervise that runs.
"""
from __future__ import annotations

import gc
import os
import stat
import sys
import time
from dataclasses import dataclass

from pyqmail.proctitle import set_title
from pyqmail.strerr import die, run, warn, write2
from pyqmail.errstr import exc_str
from svtools import supervise

SERVICES = 1000
FATAL = "svscan: fatal: "
WARNING = "svscan: warning: "


@dataclass
class Service:
    """What svscan knows of one service directory."""

    dev: int
    ino: int
    active: bool = True
    flaglog: bool = False
    pid: int = 0
    pidlog: int = 0
    pipe: tuple[int, int] = (-1, -1)


def spawn_supervise(name: str, fdmove: tuple[int, int] | None, chdir_to: str | None,
                    what: str) -> int:
    """Fork a child that runs ``supervise name``; return its pid (0 on failure).

    ``fdmove`` is ``(target, source)``: the child dups ``source`` onto ``target``
    first.  ``chdir_to`` is a directory to enter before supervising.  In the
    child every other inherited descriptor is closed, as exec would have done.
    """
    gc.freeze()
    try:
        pid = os.fork()
    except OSError as e:
        warn(WARNING, "unable to fork for ", what, ": ", exc=e)
        return 0
    if pid:
        return pid
    try:
        try:
            if fdmove:
                os.dup2(fdmove[1], fdmove[0])
            os.closerange(3, os.sysconf("SC_OPEN_MAX"))
        except OSError as e:
            write2(f"{WARNING}unable to set up descriptors for {what}: {exc_str(e)}\n")
            os._exit(111)
        if chdir_to is not None:
            try:
                os.chdir(chdir_to)
            except OSError as e:
                write2(f"{WARNING}unable to switch to {chdir_to}: {exc_str(e)}\n")
                os._exit(111)
        sys.argv = ["supervise", name]
        run(supervise.main, sys.argv)
    finally:
        os._exit(111)


class Scanner:
    """The table of services and one pass over the directory."""

    def __init__(self) -> None:
        self.services: list[Service] = []

    def start(self, fn: str) -> None:
        if fn.startswith("."):
            return
        try:
            st = os.stat(fn)
        except OSError as e:
            warn(WARNING, "unable to stat ", fn, ": ", exc=e)
            return
        if not stat.S_ISDIR(st.st_mode):
            return
        for sv in self.services:
            if sv.ino == st.st_ino and sv.dev == st.st_dev:
                break
        else:
            if len(self.services) >= SERVICES:
                warn(WARNING, "unable to start ", fn, ": running too many services")
                return
            sv = Service(st.st_dev, st.st_ino)
            if len(fn.encode("utf-8", "surrogateescape")) <= 255:
                try:
                    sv.flaglog = stat.S_ISDIR(os.stat(fn + "/log").st_mode)
                except FileNotFoundError:
                    pass
                except OSError as e:
                    warn(WARNING, "unable to stat ", fn, "/log: ", exc=e)
                    return
            if sv.flaglog:
                try:
                    sv.pipe = os.pipe()
                except OSError as e:
                    warn(WARNING, "unable to create pipe for ", fn, ": ", exc=e)
                    return
            self.services.append(sv)
        sv.active = True
        if not sv.pid:
            sv.pid = spawn_supervise(fn, (1, sv.pipe[1]) if sv.flaglog else None, None, fn)
            if not sv.pid:
                return
        if sv.flaglog and not sv.pidlog:
            sv.pidlog = spawn_supervise("log", (0, sv.pipe[0]), fn, fn + "/log")

    def reap(self) -> None:
        while True:
            try:
                r, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            except InterruptedError:
                continue
            if r == 0:
                return
            for sv in self.services:
                if sv.pid == r:
                    sv.pid = 0
                    break
                if sv.pidlog == r:
                    sv.pidlog = 0
                    break

    def scan(self) -> None:
        """One pass: reap, start what is missing, forget what is gone and dead."""
        self.reap()
        for sv in self.services:
            sv.active = False
        try:
            names = os.listdir(".")
        except OSError as e:
            warn(WARNING, "unable to read directory: ", exc=e)
            return
        for name in names:
            self.start(name)
        kept = []
        for sv in self.services:
            if not sv.active and not sv.pid and not sv.pidlog:
                if sv.flaglog:
                    os.close(sv.pipe[0])
                    os.close(sv.pipe[1])
                continue
            kept.append(sv)
        self.services = kept


def main(argv: list[str]) -> int:
    """Scan ``argv[1]`` (or the current directory) every five seconds, forever."""
    if len(argv) > 1:
        try:
            os.chdir(argv[1])
        except OSError as e:
            die(111, FATAL, "unable to chdir to ", argv[1], ": ", exc=e)
    set_title(argv)
    scanner = Scanner()
    while True:
        scanner.scan()
        time.sleep(5)


def cli() -> None:
    run(main)


if __name__ == "__main__":
    cli()
