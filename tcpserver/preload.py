"""Running one of pyqmail's own programs in a forked child instead of exec'ing it.

A program qualifies when its path (searched in PATH like exec would) is, or
links to, one of the console scripts pyqmail installed.  Its module is then
imported once in the long-running parent; each child calls the module's
``cli`` after making itself look like what an exec would have started:

- the environment is exactly the one exec would have passed, in its order;
- descriptors marked close-on-exec are closed, so only those an exec'd
  program would inherit (0, 1, 2 and whatever the caller left open) remain;
- ``sys.stdin`` and ``sys.stdout`` are made afresh on the new descriptors 0
  and 1, buffered as Python's start-up would make them for what they are now;
- ``sys.argv`` and the process title are the program's argv (the short name,
  as in ``ps -C`` and /proc/PID/comm, is the program's name).

Ids, limits, the current directory, the umask and the signal dispositions
are whatever the caller set up before calling, as for an exec.
"""
from __future__ import annotations

import importlib
import io
import os
import sys

from pyqmail.proctitle import set_title

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable, NoReturn

#: the packages whose console scripts are ours
_PACKAGES = ("svtools", "tcpserver", "mta", "service")


def _our_scripts() -> dict[str, str]:
    """Real path of each installed console script of ours -> ``module:function``."""
    from importlib.metadata import entry_points

    bindir = os.path.dirname(os.path.abspath(sys.argv[0])) if sys.argv and sys.argv[0] else ""
    out = {}
    for ep in entry_points(group="console_scripts"):
        if ep.value.split(".")[0] in _PACKAGES:
            for d in {bindir, os.path.dirname(sys.executable)}:
                path = os.path.join(d, ep.name)
                if os.path.exists(path):
                    out[os.path.realpath(path)] = ep.value
    return out


def resolve(prog: str) -> str | None:
    """The file exec would run for ``prog``: a path, or the first match in PATH."""
    if "/" in prog:
        return prog if os.path.isfile(prog) else None
    for d in os.environ.get("PATH", "/bin:/usr/bin").split(":"):
        path = os.path.join(d or ".", prog)
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    return None


def find(prog: str) -> Callable[[], None] | None:
    """The loaded ``cli`` of our program ``prog``, or None if it is not one of ours
    (or cannot be loaded: it is then exec'd, and any error shows there)."""
    path = resolve(prog)
    if path is None:
        return None
    try:
        value = _our_scripts().get(os.path.realpath(path))
        if value is None:
            return None
        module, _, func = value.partition(":")
        return getattr(importlib.import_module(module), func)
    except Exception:  # a broken install: leave it to exec to say what is wrong
        return None


def _set_environ(env: dict[bytes, bytes]) -> None:
    """Make ``os.environ`` (and the C environment under it) ``env``, in its order."""
    environ = os.environb
    if list(environ.items()) == list(env.items()):
        return
    environ.clear()
    for name, value in env.items():
        environ[name] = value


def _close_cloexec() -> None:
    """Close every descriptor exec would have closed."""
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        try:
            if not os.get_inheritable(fd):
                os.close(fd)
        except OSError:  # the listing's own descriptor, closed by now
            pass


def _stream(fd: int, mode: str, like, unbuffered: bool) -> io.TextIOWrapper:
    """A text stream on ``fd`` as Python's start-up makes ``sys.stdin``/``stdout``."""
    buffered = mode == "r" or not unbuffered
    buf = io.open(fd, mode + "b", -1 if buffered else 0, closefd=False)
    raw = buf.raw if buffered else buf
    stream = io.TextIOWrapper(
        buf, getattr(like, "encoding", None) or "utf-8",
        getattr(like, "errors", None) or "strict", "\n",
        line_buffering=buffered and raw.isatty(), write_through=not buffered)
    stream.mode = mode
    return stream


def _stdio() -> None:
    """New ``sys.stdin``/``sys.stdout`` for descriptors 0 and 1 as they are now."""
    unbuffered = bool(os.environ.get("PYTHONUNBUFFERED")) and not sys.flags.ignore_environment
    sys.stdin = sys.__stdin__ = _stream(0, "r", sys.__stdin__, unbuffered)
    sys.stdout = sys.__stdout__ = _stream(1, "w", sys.__stdout__, unbuffered)


def call(target: Callable[[], None], argv: list[str], env: dict[bytes, bytes]) -> NoReturn:
    """Run ``target`` as the program ``argv`` with environment ``env`` (in a
    forked child whose descriptors 0 and 1 are in place); never returns."""
    try:
        _set_environ(env)
        _close_cloexec()
        _stdio()
        set_title(argv)
        sys.argv = list(argv)
        target()
    finally:
        os._exit(111)
