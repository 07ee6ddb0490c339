"""Error reporting in the style of djb's strerr: ``prog: fatal: text: reason``.

Programs raise :class:`Die` (or call :func:`die`) and let :func:`run` at the
``main`` boundary print the message and exit, so no traceback ever reaches a
user.  Warnings are printed and the program goes on.
"""
from __future__ import annotations

import _signal  # signal without its enum wrappers: 4 ms less at start-up
import os
import sys
TYPE_CHECKING = False  # not typing's: importing typing costs 3 ms at every start
if TYPE_CHECKING:
    from typing import Callable, NoReturn

from pyqmail.errstr import exc_str
from pyqmail.pathexec import restore_environ


class Die(Exception):
    """Raised to stop a program with ``message`` on stderr and exit ``code``."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def sys_text(exc: BaseException | None) -> str:
    """The reason text for ``exc``, as djb's ``&strerr_sys``."""
    return exc_str(exc) if exc is not None else ""


def write2(text: str) -> None:
    """Write ``text`` to fd 2 in one write, ignoring errors (like buffer_2)."""
    data = text.encode("utf-8", "surrogateescape")
    try:
        while data:
            n = os.write(2, data)
            data = data[n:]
    except OSError:
        pass


def warn(*parts: str, exc: BaseException | None = None) -> None:
    """Print the concatenation of ``parts`` (and the reason for ``exc``) on stderr."""
    write2("".join(parts) + sys_text(exc) + "\n")


def die(code: int, *parts: str, exc: BaseException | None = None) -> NoReturn:
    """Stop with exit ``code`` and the message made of ``parts`` and ``exc``."""
    raise Die(code, "".join(parts) + sys_text(exc))


def usage(text: str) -> NoReturn:
    """Stop with exit 100 and ``text`` (already in ``prog: usage: ...`` form)."""
    raise Die(100, text)


def default_signals() -> None:
    """Give SIGPIPE, SIGXFSZ and SIGINT their default actions, as a C program has.

    Python ignores SIGPIPE and SIGXFSZ and turns SIGINT into an exception; the
    originals die of them, and the programs they exec inherit the defaults.
    """
    for sig in (_signal.SIGPIPE, _signal.SIGXFSZ):
        _signal.signal(sig, _signal.SIG_DFL)
    # Python leaves an inherited SIG_IGN for SIGINT alone (a job started with &
    # by sh): keep it, as a C program would pass it on to what it execs
    if _signal.getsignal(_signal.SIGINT) is not _signal.SIG_IGN:
        _signal.signal(_signal.SIGINT, _signal.SIG_DFL)


def run(main: Callable[[list[str]], int], argv: list[str] | None = None) -> NoReturn:
    """Call ``main(argv)`` and exit with its code; turn :class:`Die` into a message.

    ``OSError`` escaping ``main`` is a bug in the program's own reporting, but a
    user still gets one line and exit 111 rather than a traceback.
    """
    if argv is None:
        argv = sys.argv
    prog = os.path.basename(argv[0]) if argv and argv[0] else "pyqmail"
    default_signals()
    restore_environ()
    try:
        code = main(argv)
    except Die as d:
        write2(d.message + "\n")
        code = d.code
    except KeyboardInterrupt:
        code = 111
    except OSError as e:
        write2(f"{prog}: fatal: {exc_str(e)}\n")
        code = 111
    try:
        sys.stdout.flush()
    except (OSError, ValueError, AttributeError):  # AttributeError: fd 1 closed, stdout None
        pass
    os._exit(code if isinstance(code, int) else 0)
