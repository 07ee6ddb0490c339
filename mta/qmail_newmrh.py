"""qmail-newmrh: compile control/morercpthosts into control/morercpthosts.cdb.

As qmail 1.03's: in ``QMAILHOME``, each line of ``control/morercpthosts``
is lower-cased (ASCII) and stripped of trailing spaces, tabs and its
newline; a line left empty, or starting with ``#``, is skipped; every other
line becomes a key with empty data.  The CDB is written to
``control/morercpthosts.tmp`` (umask 033), fsynced and renamed over
``control/morercpthosts.cdb``, so qmail-smtpd sees the old file or the new
one.  Every failure exits 111 with qmail-newmrh's message.
"""
from __future__ import annotations

import os

from pyqmail import cdb, control
from pyqmail.strerr import die, run

FATAL = "qmail-newmrh: fatal: "
SOURCE = "control/morercpthosts"
TEMP = "control/morercpthosts.tmp"
TARGET = "control/morercpthosts.cdb"


def keys(data: bytes) -> list[bytes]:
    """The keys of the file's contents ``data``, in order (repeats kept)."""
    out = []
    for line in data.lower().split(b"\n"):
        line = line.rstrip(b" \t")
        if line and line[:1] != b"#":
            out.append(line)
    return out


def _die_read(e: OSError) -> None:
    die(111, FATAL, "unable to read ", SOURCE, ": ", exc=e)


def _die_write(e: OSError) -> None:
    die(111, FATAL, "unable to write to ", TEMP, ": ", exc=e)


def main(argv: list[str]) -> int:
    os.umask(0o033)
    home = control.qmail_home()
    try:
        os.chdir(home)
    except OSError as e:
        die(111, FATAL, "unable to chdir to ", home, ": ", exc=e)
    try:
        fd = os.open(SOURCE, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as e:
        _die_read(e)
    try:
        fdtemp = os.open(TEMP, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    except OSError as e:
        _die_write(e)
    chunks = []
    try:
        os.set_blocking(fd, True)
        while True:
            data = os.read(fd, 65536)
            if not data:
                break
            chunks.append(data)
    except OSError as e:
        _die_read(e)
    os.close(fd)
    try:
        writer = cdb.Writer(fdtemp)
        for key in keys(b"".join(chunks)):
            writer.add(key, b"")
        writer.finish()
        os.fsync(fdtemp)
        os.close(fdtemp)
    except OSError as e:
        _die_write(e)
    try:
        os.rename(TEMP, TARGET)
    except OSError as e:
        # qmail's message has no ": " before the reason
        die(111, FATAL, "unable to move ", TEMP, " to ", TARGET, exc=e)
    return 0


def cli() -> None:
    run(main)


if __name__ == "__main__":
    cli()
