"""Running one of pyqmail's own programs in a forked child instead of exec'ing it.

A program qualifies when its path (searched in PATH like exec would) is, or
links to, one of the console scripts pyqmail installed.  Its module is then
imported once in the long-running parent; each child sets argv and the
process title and calls the module's ``cli``, so it sees what an exec would
have given it, without paying for a new interpreter.
"""
from __future__ import annotations

import importlib
import os
import sys
from typing import Callable


def _our_scripts() -> dict[str, str]:
    """Real path of each installed console script of ours -> ``module:function``."""
    from importlib.metadata import entry_points

    bindir = os.path.dirname(os.path.abspath(sys.argv[0])) if sys.argv and sys.argv[0] else ""
    out = {}
    for ep in entry_points(group="console_scripts"):
        if ep.value.split(".")[0] in ("svtools", "tcpserver", "mta", "service"):
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
    """The loaded ``cli`` of our program ``prog``, or None if it is not one of ours."""
    path = resolve(prog)
    if path is None:
        return None
    value = _our_scripts().get(os.path.realpath(path))
    if value is None:
        return None
    module, _, func = value.partition(":")
    return getattr(importlib.import_module(module), func)


def call(target: Callable[[], None], argv: list[str]) -> None:
    """Run ``target`` as the program ``argv`` (in a forked child); never returns."""
    sys.argv = list(argv)
    try:
        target()
    finally:
        os._exit(111)
