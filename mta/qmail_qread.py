"""qmail-qread: list the messages in the queue and their recipients.

Usage: ``qmail-qread`` (arguments are ignored).  For every message that
qmail-send has preprocessed (``queue/info/<split>/N``) it prints one line::

    24 Nov 2026 10:00:00 GMT  #123  456  <sender> 

(the birth time, the mtime of ``info/N``, in GMT; the message number; the size
of ``mess/N``; the sender, and `` bouncing`` when ``bounce/N`` exists), then a
line ``\\tlocal\\trecip`` or ``\\tremote\\trecip`` for each recipient still to do
and ``  done\\tlocal\\trecip`` for each one done.  Bytes outside 32..126 are
printed as ``_``.  Messages still in ``todo/`` are not listed.

As the original, every message goes to stdout: a message it cannot read gives
``warning: trouble with #N: reason`` and the next one is read; ``fatal:
unable to chdir: reason``, ``fatal: unable to opendir info/S: reason`` and, for
a file that opens but cannot be read, ``fatal: out of memory`` (the
original's wording) end it with exit 111.  Otherwise exit 0.
"""
from __future__ import annotations

import os

from pyqmail import control
from pyqmail.date822 import date822
from pyqmail.errstr import exc_str
from pyqmail.scan import scan_ulong
from pyqmail.strerr import run

#: conf-split: the number of subdirectories of mess/, info/, local/, remote/
SPLIT = 23
#: printable bytes pass, every other byte becomes "_" (qmail-qread's out())
_SAFE = bytes(b if 32 <= b <= 126 else ord("_") for b in range(256))


class Fatal(Exception):
    """The line to print before exiting 111."""


class Output:
    """stdout through a buffer, as substdio's subfdout."""

    def __init__(self) -> None:
        self.buf = bytearray()

    def ok(self, data: bytes) -> None:
        self.buf += data
        if len(self.buf) >= 8192:
            self.flush()

    def safe(self, data: bytes) -> None:
        self.ok(data.translate(_SAFE))

    def warn(self, text: str, exc: OSError) -> None:
        self.ok(f"{text}: {exc_str(exc)}\n".encode())

    def flush(self) -> None:
        data = bytes(self.buf)
        self.buf.clear()
        while data:
            data = data[os.write(1, data):]


def qfn(dirname: str, n: int, split: bool = True) -> str:
    """A queue file name, as fmtqfn: ``info/5/28`` (split) or ``bounce/28``."""
    return f"{dirname}/{n % SPLIT}/{n}" if split else f"{dirname}/{n}"


def message_ids():
    """The message numbers under info/, subdirectory by subdirectory, as readsubdir.

    Names that are not all digits are skipped; a missing or unreadable
    subdirectory is fatal.
    """
    for i in range(SPLIT):
        sub = f"info/{i}"
        try:
            names = os.listdir(sub)
        except OSError as e:
            raise Fatal(f"fatal: unable to opendir {sub}: {exc_str(e)}") from None
        for name in names:
            n, length = scan_ulong(name)
            if length and length == len(name):
                yield n


def read_field(fd: int) -> bytes:
    """The first NUL-terminated field read from ``fd``, without the NUL."""
    data = b""
    while b"\0" not in data:
        chunk = _read(fd, 1024)
        if not chunk:
            break
        data += chunk
    return data.split(b"\0", 1)[0]


def read_all(fd: int) -> bytes:
    chunks = []
    while chunk := _read(fd, 65536):
        chunks.append(chunk)
    return b"".join(chunks)


def _read(fd: int, size: int) -> bytes:
    try:
        return os.read(fd, size)
    except OSError:
        # qmail-qread's getln failing is reported as out of memory, whatever the cause
        raise Fatal("fatal: out of memory") from None


def show(out: Output, n: int) -> None:
    """Print message ``n``; raise OSError (a warning) if it cannot be read."""
    size = os.stat(qfn("mess", n)).st_size
    bouncing = os.path.exists(qfn("bounce", n, split=False))
    fd = os.open(qfn("info", n), os.O_RDONLY)
    try:
        sender = read_field(fd)
        birth = int(os.fstat(fd).st_mtime)
    finally:
        os.close(fd)
    # date822fmt without its " -0000\n", as the original prints it
    line = date822(birth)[:-7] + f" GMT  #{n}  {size}  <".encode() + sender[1:] + b"> "
    if bouncing:
        line += b" bouncing"
    out.safe(line)
    out.ok(b"\n")
    for channel in ("local", "remote"):
        try:
            fd = os.open(qfn(channel, n), os.O_RDONLY)
        except FileNotFoundError:
            continue
        except OSError as e:
            out.warn(f"warning: trouble with #{n}", e)
            continue
        try:
            data = read_all(fd)
        finally:
            os.close(fd)
        # only whole (NUL-terminated) records; records other than T and D are skipped
        for rec in data.split(b"\0")[:-1]:
            if rec[:1] in (b"T", b"D"):
                if rec[:1] == b"D":
                    out.ok(b"  done")
                out.ok(f"\t{channel}\t".encode())
                out.safe(rec[1:])
                out.ok(b"\n")


def main(argv: list[str]) -> int:
    """List the queue; 0, or 111 if it cannot be scanned."""
    out = Output()
    code = 0
    try:
        for step in (control.qmail_home(), "queue"):
            try:
                os.chdir(step)
            except OSError as e:
                raise Fatal(f"fatal: unable to chdir: {exc_str(e)}") from None
        for n in message_ids():
            try:
                show(out, n)
            except OSError as e:
                out.warn(f"warning: trouble with #{n}", e)
    except Fatal as f:
        out.ok(f"{f.args[0]}\n".encode())
        code = 111
    try:
        out.flush()
    except OSError:
        return 111
    return code


def cli() -> None:
    run(main)


if __name__ == "__main__":
    cli()
