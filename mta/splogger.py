"""splogger: copy lines from stdin to syslog (splogger(8)).

Usage: ``splogger [tag [fac]]``.  Each line read is sent to syslog as
``stamp line``, ``stamp`` being the time in seconds and microseconds
(``1700000000.123456``); the tag defaults to ``splogger`` and the facility
to LOG_MAIL, ``fac`` being a facility number (its leading digits, shifted
as qmail does).  Lines starting ``alert:`` are logged at LOG_ALERT,
``warning:`` at LOG_WARNING, others at LOG_INFO.  Bytes outside 32..126 become
``?``; a line longer than 799 bytes goes in pieces, the later ones as
``stamp+more`` with the same stamp and priority.  As qmail's, a last line
without a newline is dropped.  Prints nothing; exits 0 at the end of input.
"""
from __future__ import annotations

import os
import syslog
import time
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable, Iterable, Iterator

from pyqmail.strerr import run

BUFSIZE = 800  # qmail's buf: a piece holds at most BUFSIZE - 1 bytes
_SAFE = bytes(c if 32 <= c <= 126 else ord("?") for c in range(256))


def stamp_now() -> str:
    """The time as qmail's stamp_make: seconds, a dot, six digits of microseconds."""
    ns = time.time_ns()
    return f"{ns // 1_000_000_000}.{ns // 1000 % 1_000_000:06d}"


def _priority(text: bytes) -> int:
    if text.startswith(b"alert:"):
        return syslog.LOG_ALERT
    if text.startswith(b"warning:"):
        return syslog.LOG_WARNING
    return syslog.LOG_INFO


def records(chunks: Iterable[bytes], stamp: Callable[[], str] = stamp_now) -> Iterator[tuple[int, str]]:
    """The (priority, message) pairs splogger logs for the input ``chunks``."""
    buf = bytearray()
    cont: tuple[int, str] | None = None  # priority and stamp of the line being continued

    def flush() -> Iterator[tuple[int, str]]:
        nonlocal cont
        if buf:
            text = bytes(buf)
            if cont is not None:
                yield cont[0], f"{cont[1]}+{text.decode('ascii')}"
            else:
                cont = (_priority(text), stamp())
                yield cont[0], f"{cont[1]} {text.decode('ascii')}"
        buf.clear()

    for chunk in chunks:
        for line in _split_keep(chunk):
            if line == b"\n":
                yield from flush()
                cont = None
                continue
            view = line.translate(_SAFE)
            while view:
                room = BUFSIZE - 1 - len(buf)
                if room == 0:
                    yield from flush()
                    continue
                buf += view[:room]
                view = view[room:]


def _split_keep(chunk: bytes) -> Iterator[bytes]:
    """``chunk`` as runs of non-newline bytes and single newlines, in order."""
    start = 0
    while True:
        i = chunk.find(b"\n", start)
        if i < 0:
            if start < len(chunk):
                yield chunk[start:]
            return
        if i > start:
            yield chunk[start:i]
        yield b"\n"
        start = i + 1


def facility_of(arg: str) -> int:
    """openlog's facility for ``arg``: its leading digits (scan_ulong) shifted by 3, as a C int."""
    n = 0
    for ch in arg:
        if not "0" <= ch <= "9":
            break
        n = (n * 10 + ord(ch) - 48) & 0xFFFFFFFFFFFFFFFF
    v = (n << 3) & 0xFFFFFFFF
    return v - (1 << 32) if v >= 1 << 31 else v


def _stdin() -> Iterator[bytes]:
    while True:
        try:
            data = os.read(0, 8192)
        except OSError:
            return
        if not data:
            return
        yield data


def main(argv: list[str]) -> int:
    tag = argv[1] if len(argv) > 1 else "splogger"
    facility = facility_of(argv[2]) if len(argv) > 2 else syslog.LOG_MAIL
    syslog.openlog(tag, 0, facility)
    for priority, message in records(_stdin()):
        syslog.syslog(priority, message)
    return 0


def cli() -> None:
    run(main)


if __name__ == "__main__":
    cli()
