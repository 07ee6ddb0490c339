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
import re
import sys

from pyqmail.proctitle import set_title

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable, NoReturn

#: the packages whose console scripts are ours
_PACKAGES = ("svtools", "tcpserver", "mta", "service")


def _bindirs() -> set[str]:
    """Where our console scripts are: beside the running one and the interpreter."""
    dirs = {os.path.dirname(sys.executable)}
    if sys.argv and sys.argv[0]:
        dirs.add(os.path.dirname(os.path.abspath(sys.argv[0])))
    return {os.path.realpath(d) for d in dirs}


def _entry_point(path: str) -> str | None:
    """``module:function`` of our console script at ``path``, None if it is not one.

    pip writes each script as ``from module import function``; reading that
    line costs nothing, where importlib.metadata would cost the long-running
    parent (and every fork of it) a few megabytes of modules.
    """
    try:
        with open(path, "rb") as f:
            head = f.read(1024)
    except OSError:
        return None
    m = _SCRIPT.search(head)
    if m is not None:
        return m.group(1).decode() + ":" + m.group(2).decode()
    if b"import" not in head or b"\0" in head:  # not a Python script
        return None
    from importlib.metadata import entry_points  # written by some other installer

    name = os.path.basename(path)
    for ep in entry_points(group="console_scripts", name=name):
        return ep.value
    return None


_SCRIPT = re.compile(rb"^from ([\w.]+) import (\w+)\s*$", re.M)


def resolve(prog: str) -> str | None:
    """The file exec would run for ``prog``: a path, or the first match in PATH."""
    if "/" in prog:
        return prog if os.path.isfile(prog) else None
    for d in os.environ.get("PATH", "/bin:/usr/bin").split(":"):
        path = os.path.join(d or ".", prog)
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    return None


def entry(prog: str) -> str | None:
    """``module:function`` of our program ``prog`` (searched in PATH as exec would),
    without loading it; None if it is not one of ours."""
    path = resolve(prog)
    if path is None:
        return None
    real = os.path.realpath(path)
    if os.path.dirname(real) not in _bindirs():
        return None
    value = _entry_point(real)
    if value is None or value.split(".")[0] not in _PACKAGES:
        return None
    return value


def find(prog: str) -> Callable[[], None] | None:
    """The loaded ``cli`` of our program ``prog``, or None if it is not one of ours
    (or cannot be loaded: it is then exec'd, and any error shows there)."""
    path = resolve(prog)
    if path is None:
        return None
    real = os.path.realpath(path)
    if os.path.dirname(real) not in _bindirs():
        return None
    try:
        value = _entry_point(real)
        if value is None or value.split(".")[0] not in _PACKAGES:
            return None
        module, _, func = value.partition(":")
        return getattr(importlib.import_module(module), func)
    except Exception:  # a broken install: leave it to exec to say what is wrong
        return None


def _set_environ(env: dict[bytes, bytes]) -> None:
    """Make ``os.environ`` (and the C environment under it) ``env``, in its order."""
    environ = os.environb
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


def _stdio() -> tuple[io.TextIOWrapper, io.TextIOWrapper]:
    """``sys.stdin`` and ``sys.stdout`` for descriptors 0 and 1 as they are now."""
    unbuffered = bool(os.environ.get("PYTHONUNBUFFERED")) and not sys.flags.ignore_environment
    return (_stream(0, "r", sys.__stdin__, unbuffered),
            _stream(1, "w", sys.__stdout__, unbuffered))


#: streams made once by :func:`prepare_stdio`, for children whose 0 and 1 are sockets
_ready: tuple[io.TextIOWrapper, io.TextIOWrapper] | None = None


def prepare_stdio() -> None:
    """Make, once, the ``sys.stdin``/``sys.stdout`` each child will get: streams on
    descriptors 0 and 1 while those are a socket, as they will be in the children.

    Made per child they would cost it a fraction of a millisecond of first
    touches; made here they are the same objects a fresh start would make for
    a TCP connection (not a terminal, not seekable, buffered as the
    environment says).  Call with descriptors 0 and 1 free to be replaced.
    """
    global _ready
    import socket

    a, b = socket.socketpair()
    try:
        os.dup2(a.fileno(), 0)
        os.dup2(a.fileno(), 1)
        _ready = _stdio()  # each asks whether it is a terminal and can seek, now
    finally:
        a.close()
        b.close()


def call(target: Callable[[], None], argv: list[str], env: dict[bytes, bytes] | None,
         close: list[int] | None = None) -> NoReturn:
    """Run ``target`` as the program ``argv`` (in a forked child whose descriptors
    0 and 1 are in place); never returns.

    ``env`` is the environment exec would have given (None: ``os.environ``
    is it already).  ``close`` lists the descriptors exec would have closed
    (None: find them).
    """
    try:
        if env is not None:
            _set_environ(env)
        if close is None:
            _close_cloexec()
        else:
            for fd in close:
                try:
                    os.close(fd)
                except OSError:
                    pass
        sys.stdin, sys.stdout = _ready if _ready is not None else _stdio()
        sys.__stdin__, sys.__stdout__ = sys.stdin, sys.stdout
        set_title(argv)
        sys.argv = list(argv)
        target()
    finally:
        os._exit(111)
