"""What fastforward's and dot-forward's programs share besides the formats:
reading a descriptor to its end, leaving without a message, judging a
command's exit code, splitting lines as getln does."""
from __future__ import annotations

import os
import sys

from pyqmail.strerr import die

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Iterator

#: exit codes of a command that make a delivery fail for good (sendmail's and qmail's)
PERMANENT = frozenset((64, 65, 70, 76, 77, 78, 100, 112))


class Exit(Exception):
    """Leave with ``code`` and no message, as the originals' ``_exit``."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


def judge(code: int) -> None:
    """Raise :class:`Exit` 100 or 111 unless a command's exit ``code`` is 0."""
    if code in PERMANENT:
        raise Exit(100)
    if code:
        raise Exit(111)


def chunks(fd: int, *error: str) -> Iterator[bytes]:
    """What is left on ``fd``, piece by piece; a read error dies 111 with ``error``."""
    while True:
        try:
            data = os.read(fd, 65536)
        except OSError as e:
            die(111, *error, exc=e)
        if not data:
            return
        yield data


def read_all(fd: int, *error: str) -> bytes:
    """All that is left on ``fd``; a read error dies 111 with ``error``."""
    return b"".join(chunks(fd, *error))


def write_out(fatal: str, data: bytes) -> None:
    """Write ``data`` to stdout, or die ``unable to write output``."""
    try:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    except OSError as e:
        die(111, fatal, "unable to write output: ", exc=e)


def lines(data: bytes) -> Iterator[bytes]:
    """The lines of ``data``, each with its newline (the last may have none)."""
    pos = 0
    end = len(data)
    while pos < end:
        nl = data.find(b"\n", pos)
        stop = end if nl < 0 else nl + 1
        yield data[pos:stop]
        pos = stop
