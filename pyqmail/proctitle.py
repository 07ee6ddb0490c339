"""Process titles, so ``ps`` shows ``supervise qmail-send`` rather than python."""
from __future__ import annotations

import os

from setproctitle import setproctitle, setthreadtitle


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
