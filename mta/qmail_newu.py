"""qmail-newu: compile users/assign into users/cdb (qmail-newu(8)).

Reads ``QMAILHOME/users/assign`` (qmail-users(5)) up to its ``.`` line and
writes the same records as qmail 1.03's qmail-newu, in the same order, to
``users/cdb.tmp``; fsyncs it and renames it to ``users/cdb``:

- ``=local:user:uid:gid:home:dash:ext:`` gives key ``!`` + local + NUL;
- ``+prefix:user:uid:gid:home:dash:pre:`` gives key ``!`` + prefix;
- keys are lower-cased; the data is the six fields after the first colon,
  each colon turned into a NUL, the sixth colon and what follows dropped;
- a last record with the empty key lists the last characters of the
  wildcard prefixes (qmail-lspawn tries only prefixes ending in one).

A line without six colons after the key, one with a NUL or without a colon,
or a missing ``.`` line is ``bad format in users/assign``.  Every failure
exits 111 with qmail-newu's message (which names no reason).
"""
from __future__ import annotations

import os

from pyqmail import cdb, control
from pyqmail.strerr import die, run

FATAL = "qmail-newu: fatal: "


def parse_line(line: bytes) -> tuple[bytes, bytes, bytes] | None:
    """(key, data, wildchar) of one users/assign line (with its newline), or
    None if the line is badly formatted.  ``wildchar`` is b"" for an exact
    entry or a wildcard with an empty prefix."""
    if b"\0" in line:
        return None
    i = line.find(b":")
    if i <= 0:
        return None
    wild = b""
    if line[:1] == b"+":
        key = b"!" + line[1:i]
        if i >= 2:
            wild = line[i - 1:i]
    else:
        key = b"!" + line[1:i] + b"\0"
    fields = line[i + 1:].split(b":", 6)
    if len(fields) < 7:
        return None
    return key.lower(), b"\0".join(fields[:6]), wild


def _lines(fd: int):
    """The lines of ``fd``, each with its newline (the last maybe without,
    maybe empty), as getln gives them; a read error is qmail-newu's."""
    rest = b""
    while True:
        try:
            data = os.read(fd, 65536)
        except OSError:
            die(111, FATAL, "unable to read users/assign")
        if not data:
            yield rest
            return
        lines = (rest + data).split(b"\n")
        rest = lines.pop()
        for line in lines:
            yield line + b"\n"


def main(argv: list[str]) -> int:
    os.umask(0o033)
    try:
        os.chdir(control.qmail_home())
    except OSError:
        die(111, FATAL, "unable to chdir")
    try:
        fd = os.open("users/assign", os.O_RDONLY | os.O_NONBLOCK)
        os.set_blocking(fd, True)
    except OSError:
        die(111, FATAL, "unable to open users/assign")
    try:
        fdtemp = os.open("users/cdb.tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    except OSError:
        die(111, FATAL, "unable to open users/cdb.tmp")
    try:
        writer = cdb.Writer(fdtemp)
    except OSError:
        die(111, FATAL, "unable to write users/cdb.tmp")
    wildchars = bytearray()
    for line in _lines(fd):
        if line[:1] == b".":
            break
        if not line.endswith(b"\n"):
            die(111, FATAL, "bad format in users/assign")
        parsed = parse_line(line)
        if parsed is None:
            die(111, FATAL, "bad format in users/assign")
        key, data, wild = parsed
        if wild and wild[0] not in wildchars:
            wildchars += wild
        try:
            writer.add(key, data)
        except OSError:
            die(111, FATAL, "unable to write users/cdb.tmp")
    os.close(fd)
    try:
        writer.add(b"", bytes(wildchars))
        writer.finish()
        os.fsync(fdtemp)
        os.close(fdtemp)
    except OSError:
        die(111, FATAL, "unable to write users/cdb.tmp")
    try:
        os.rename("users/cdb.tmp", "users/cdb")
    except OSError:
        die(111, FATAL, "unable to move users/cdb.tmp to users/cdb")
    return 0


def cli() -> None:
    run(main)


if __name__ == "__main__":
    cli()
