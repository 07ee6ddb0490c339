"""Process titles, so ``ps`` shows ``supervise qmail-send`` rather than python."""
from __future__ import annotations

import os
import sys


def _functions():
    """setproctitle's C functions, loaded without the package's ``__init__``.

    That imports logging, and with it threading: 8 to 20 ms at the start of
    every program, and, in a long-running parent that forks (tcpserver,
    svscan), threading's at-fork hook touches about a hundred pages that each
    child must then copy.  Any surprise (another layout, no C module) falls
    back to the plain import.
    """
    try:
        from importlib.machinery import EXTENSION_SUFFIXES, ExtensionFileLoader, ModuleSpec

        for d in sys.path:
            pkg = os.path.join(d or ".", "setproctitle")
            try:
                names = os.listdir(pkg)
            except OSError:
                continue
            for name in names:
                if name.startswith("_setproctitle.") and name.endswith(tuple(EXTENSION_SUFFIXES)):
                    loader = ExtensionFileLoader("setproctitle._setproctitle",
                                                 os.path.join(pkg, name))
                    module = loader.create_module(ModuleSpec(loader.name, loader,
                                                             origin=loader.path))
                    loader.exec_module(module)
                    return module.setproctitle, module.setthreadtitle
            break
    except Exception:  # noqa: BLE001 - any failure: the supported way below
        pass
    from setproctitle import setproctitle, setthreadtitle

    return setproctitle, setthreadtitle


setproctitle, setthreadtitle = _functions()


def set_title(argv: list[str]) -> None:
    """Show ``argv`` in ps as a C program started with it would appear.

    The command line becomes ``argv`` and the short name (``ps -C``, ``pgrep``,
    ``/proc/PID/comm``) the program's name alone, as exec would have set it.
    """
    name = os.path.basename(argv[0]) if argv and argv[0] else ""
    setproctitle(_text(" ".join([name, *argv[1:]])))
    setthreadtitle(_text(name))


def _text(s: str) -> str:
    """``s`` with undecodable argv bytes (surrogate escapes) replaced: setproctitle
    encodes UTF-8 strictly and would raise on a directory name that is not UTF-8."""
    return s.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
