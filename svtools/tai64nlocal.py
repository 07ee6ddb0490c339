"""tai64nlocal: turn the TAI64N labels at the start of lines into local time.

Usage: ``tai64nlocal`` (arguments are ignored).  A line starting with ``@``
has the run of lowercase hex digits after the ``@`` replaced by
``YYYY-MM-DD HH:MM:SS.NNNNNNNNN`` in the local time zone (TZ); other lines
pass unchanged.  Exits 0 at end of input, 111 silently on read or write errors.

Exactly as tai64nlocal.c reads them: the digits are shifted through 96 bits
(the last 8 digits are the nanoseconds, the 16 before them the seconds), so
short, long and odd labels give what the original gives; a label cut off by
the end of input is dropped; and a label whose time localtime() cannot
represent kills the original with SIGSEGV, so it kills us the same way, after
the output the original would have written (it reads and writes 8 KiB at a time).

Speed: each read is converted as a whole.  One regex split finds the labels;
labels of the usual 24 digits are converted with C-level ``map`` calls, the
date part cached by its seconds; other labels go one by one.
"""
from __future__ import annotations

import _signal
import os
import re
import time
from itertools import repeat

from pyqmail.strerr import run
from pyqmail.tai64 import EPOCH

BUFSIZE = 128 * 1024
#: the size of tai64nlocal.c's input and output buffers (BUFFER_INSIZE, BUFFER_OUTSIZE)
C_BUFSIZE = 8192
_HEX = frozenset(b"0123456789abcdef")
_MASK64 = (1 << 64) - 1
_CACHE_MAX = 4096

# a label after a newline: 16 + 8 digits and no more (groups 1, 2), or any run (group 3)
_SPLIT = re.compile(rb"\n@(?:([0-9a-f]{16})([0-9a-f]{8})(?![0-9a-f])|([0-9a-f]*))").split
_LABELS = re.compile(rb"\n@([0-9a-f]*)").finditer


class Crash(Exception):
    """localtime() failed for a label: the original dereferences NULL here."""


def date_of(secs: int) -> bytes:
    """``\\nYYYY-MM-DD HH:MM:SS.`` for a TAI64 seconds field (taken modulo 2**64)."""
    unix = (secs - EPOCH) & _MASK64
    if unix >> 63:
        unix -= 1 << 64
    try:
        t = time.localtime(unix)
    except (OverflowError, OSError, ValueError):
        raise Crash from None
    year = t.tm_year  # C adds 1900 to tm_year in an int (wrapping) and prints it unsigned
    if year > 0x7FFFFFFF:
        year -= 1 << 32
    return b"\n%d-%02d-%02d %02d:%02d:%02d." % (
        year & _MASK64, t.tm_mon, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec)


def label(digits: bytes) -> bytes:
    """The converted form (with its newline) of a label of any length."""
    v = int(digits[-24:] or b"0", 16)  # earlier digits are shifted out of 96 bits
    return date_of(v >> 32) + b"%09d" % (v & 0xFFFFFFFF)


class Converter:
    """Converts buffers, keeping the dates of the seconds seen lately."""

    def __init__(self) -> None:
        self.dates: dict[bytes, bytes] = {}

    def date(self, secs_hex: bytes) -> bytes:
        d = self.dates.get(secs_hex)
        if d is None:
            if len(self.dates) >= _CACHE_MAX:
                self.dates.clear()
            d = self.dates[secs_hex] = date_of(int(secs_hex, 16))
        return d

    def convert(self, buf: bytes) -> tuple[bytes, bytes]:
        """Convert the labels after each newline of ``buf``.

        Returns the output and the label (``@`` and up to 24 digits) that
        ``buf`` ends in the middle of, if any: it is left for the next buffer.
        Raises :class:`Crash` at a label localtime() cannot take.
        """
        pieces = _SPLIT(buf)
        n = len(pieces) >> 2
        if not n:
            return buf, b""
        pending = b""
        if not pieces[-1]:  # the last label runs to the end of the buffer
            a, b, c = pieces[-4:-1]
            pending = b"@" + (a + b if c is None else c)[-24:]
            del pieces[-4:]
            pieces[-1] += b"\n"
            n -= 1
            if not n:
                return b"".join(pieces), pending
        if pieces[3::4].count(None) == n:
            secs = pieces[1::4]
            dates = self.dates
            for s in set(secs).difference(dates):
                self.date(s)
            try:
                pieces[1::4] = map(dates.__getitem__, secs)
            except KeyError:  # the cache was cleared on the way: fill it one by one
                pieces[1::4] = map(self.date, secs)
            pieces[2::4] = map(b"%09d".__mod__, map(int, pieces[2::4], repeat(16)))
            pieces[3::4] = repeat(b"", n)
        else:
            for i in range(1, 4 * n, 4):
                a, b, c = pieces[i:i + 3]
                pieces[i:i + 3] = (label(a + b if c is None else c), b"", b"")
        return b"".join(pieces), pending


def first_crash(buf: bytes) -> int | None:
    """Where in ``buf`` the original would crash: the end of the first bad label."""
    for m in _LABELS(buf):
        if m.end() == len(buf):
            return None
        try:
            label(m[1])
        except Crash:
            return m.end()
    return None


def write_all(data) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(1, view):]


def flushed_in_chunk(buf: bytes, start: int, end: int) -> bytes:
    """What tai64nlocal.c had written of the output it made reading ``buf[start:end]``.

    Its output buffer is written out before each read and whenever a put does
    not fit; a label's date goes in as separate puts (year, "-", month, ...), so
    the buffer can be written a few bytes short of full.  This follows the
    original byte by byte from the start of ``buf`` (slow, but only on the way
    to a crash).
    """
    puts: list[bytes] = []
    i, line_start = 0, False
    while i < end:
        ch = buf[i]
        if line_start and ch == 0x40:  # '@'
            j = i + 1
            while j < end and buf[j] in _HEX:
                j += 1
            if j >= end:
                break
            if j >= start:
                date = label(buf[i + 1:j])[1:]
                y = date.index(b"-")
                cuts = (0, y, y + 1, y + 3, y + 4, y + 6, y + 7, y + 9, y + 10, y + 12,
                        y + 13, y + 15, y + 16, len(date))
                puts.extend(date[a:b] for a, b in zip(cuts, cuts[1:]))
            i = j
            ch = buf[i]
        if i >= start:
            puts.append(buf[i:i + 1])
        line_start = ch == 10
        i += 1
    written, used = 0, 0
    for p in puts:
        if len(p) > C_BUFSIZE - used:
            written += used
            used = 0
        used += len(p)
    return b"".join(puts)[:written]


def crash(conv: Converter, buf: bytes, base: int, skip: int) -> None:
    """Write what tai64nlocal.c would have written before crashing, then die of SIGSEGV."""
    at = first_crash(buf)
    if at is not None:
        start = base + (at - base) // C_BUFSIZE * C_BUFSIZE  # where its last read began
        out, _ = conv.convert(buf[:start])
        write_all(memoryview(out)[skip:])
        write_all(flushed_in_chunk(buf, start, at))
    _signal.signal(_signal.SIGSEGV, _signal.SIG_DFL)
    os.kill(os.getpid(), _signal.SIGSEGV)
    os._exit(139)  # not reached


def main(argv: list[str]) -> int:
    """Convert stdin to stdout; 0 at end of input, 111 on a read or write error."""
    conv = Converter()
    at_start = True
    pending = b""
    try:
        while True:
            data = os.read(0, BUFSIZE)
            if not data:
                return 0
            if at_start:  # a newline in front makes the first line's label findable
                buf = b"\n" + pending + data
                base = skip = 1
                base += len(pending)
            else:
                buf = data
                base = skip = 0
            try:
                out, pending = conv.convert(buf)
            except Crash:
                crash(conv, buf, base, skip)
            write_all(memoryview(out)[skip:] if skip else out)
            at_start = bool(pending) or buf[-1] == 10
    except OSError:
        return 111


def cli() -> None:
    run(main)


if __name__ == "__main__":
    cli()
