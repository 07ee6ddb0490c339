"""maildir2mbox: move mail from a Maildir to an mbox (maildir2mbox(1)).

Environment: ``MAILDIR`` (the Maildir), ``MAIL`` (the mbox) and ``MAILTMP``
(a scratch file on the same file system as MAIL).  Locks MAIL, copies it and
every message in ``new/`` and ``cur/`` (oldest first, each with a ``From_``
line made from its ``Return-Path``, ``>From`` quoting and a blank line) into
MAILTMP, fsyncs it, renames it over MAIL, and only then removes the messages.
Exits 0 (also when there is nothing to move); 111 with
``maildir2mbox: fatal: ...`` on any trouble.
"""
from __future__ import annotations

import fcntl
import os

from pyqmail import maildir
from pyqmail.errstr import exc_str
from pyqmail.fsutil import write_all
from pyqmail.mbox import Quoter, myctime
from pyqmail.strerr import die, run, warn

FATAL = "maildir2mbox: fatal: "
WARNING = "maildir2mbox: warning: "


def from_line(first: bytes, mtime: int) -> bytes:
    """The From_ line for a message whose first line is ``first``."""
    who = b"From XXX "
    if first.endswith(b"\n") and first.startswith(b"Return-Path: <"):
        if first[14:15] == b">":
            who = b"From MAILER-DAEMON "
        else:
            who = b"From " + first[14:-2].replace(b" ", b"-").replace(b"\t", b"-") + b" "
    return who + myctime(mtime).encode()


def copy_message(name: str, mtime: int, out: int, tmpname: str) -> None:
    """Append the message ``name`` to ``out`` in mbox form."""
    chunks = []
    try:
        with open(name, "rb") as f:
            while True:
                piece = f.read(65536)
                if not piece:
                    break
                chunks.append(piece)
    except OSError as e:
        die(111, FATAL, "unable to read $MAILDIR/", name, ": ", exc=e)
    data = b"".join(chunks)
    nl = data.find(b"\n")
    first = data[:nl + 1] if nl >= 0 else data
    quoter = Quoter()
    body = quoter.feed(data) + quoter.end()
    try:
        write_all(out, from_line(first, mtime) + body + b"\n")
    except OSError as e:
        die(111, FATAL, "unable to write to ", tmpname, ": ", exc=e)


def main(argv: list[str]) -> int:
    os.umask(0o077)
    mbox = os.environ.get("MAIL")
    if mbox is None:
        die(111, FATAL, "MAIL not set")
    mboxtmp = os.environ.get("MAILTMP")
    if mboxtmp is None:
        die(111, FATAL, "MAILTMP not set")
    md = os.environ.get("MAILDIR")
    if md is None:
        die(111, FATAL, "MAILDIR not set")
    try:
        os.chdir(md)
    except OSError as e:
        die(111, FATAL, "unable to chdir to ", md, ": ", exc=e)
    maildir.clean(".")
    try:
        messages = maildir.scan(".")
    except maildir.ScanError as e:
        die(111, FATAL, e.what, exc=e.exc)
    if not messages:
        return 0
    try:
        fdlock = os.open(mbox, os.O_WRONLY | os.O_NONBLOCK | os.O_APPEND | os.O_CREAT, 0o600)
        fcntl.flock(fdlock, fcntl.LOCK_EX)
    except OSError as e:
        die(111, FATAL, "unable to lock ", mbox, ": ", exc=e)
    try:
        old = os.open(mbox, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as e:
        die(111, FATAL, "unable to read ", mbox, ": ", exc=e)
    try:
        new = os.open(mboxtmp, os.O_WRONLY | os.O_NONBLOCK | os.O_TRUNC | os.O_CREAT, 0o644)
    except OSError as e:
        die(111, FATAL, "unable to create ", mboxtmp, ": ", exc=e)
    while True:
        try:
            data = os.read(old, 65536)
        except OSError as e:
            die(111, FATAL, "unable to read ", mbox, ": ", exc=e)
        if not data:
            break
        try:
            write_all(new, data)
        except OSError as e:
            die(111, FATAL, "unable to write to ", mboxtmp, ": ", exc=e)
    for mtime, name in messages:
        copy_message(name, mtime, new, mboxtmp)
    try:
        os.fsync(new)
        os.close(new)
    except OSError as e:
        die(111, FATAL, "unable to write to ", mboxtmp, ": ", exc=e)
    try:
        os.rename(mboxtmp, mbox)
    except OSError as e:
        die(111, FATAL, "unable to move ", mboxtmp, " to ", mbox, ": ", exc=e)
    for _, name in messages:
        try:
            os.unlink(name)
        except OSError as e:
            warn(WARNING, "$MAILDIR/", name, " will be delivered twice; unable to unlink: ",
                 exc_str(e))
    return 0


def cli() -> None:
    run(main)


if __name__ == "__main__":
    cli()
