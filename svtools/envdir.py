"""envdir: run a child with environment variables set from the files of a directory.

Usage: ``envdir d child``.  For each file ``s`` in ``d`` (names starting with
``.`` skipped) whose first line is ``t``: ``s`` is set to ``t`` with trailing
spaces and tabs removed and NULs turned into newlines; an empty file removes
``s``.  Files are read in directory order, as envdir.c does, including its
quirk of reusing the previous file's value for a file that vanished (a
dangling symbolic link).
"""
from __future__ import annotations

import os

from pyqmail import pathexec
from pyqmail.strerr import die, run

FATAL = "envdir: fatal: "
USAGE = "envdir: usage: envdir dir child"


def first_line(name: str) -> bytes | None:
    """The bytes of ``name`` up to its first newline; None if it does not exist.

    Reading stops at the first newline, as nothing after it is used.
    """
    try:
        fd = os.open(name, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        data = b""
        while True:
            chunk = os.read(fd, 4096)
            if not chunk:
                return data
            data += chunk
            if b"\n" in chunk:
                return data
    finally:
        os.close(fd)


def value_of(raw: bytes) -> bytes:
    """The variable's value from a file's contents: first line, trailing blanks gone."""
    return raw.partition(b"\n")[0].rstrip(b" \t").replace(b"\0", b"\n")


def main(argv: list[str]) -> int:
    """Set the variables from ``argv[1]``'s files and exec ``argv[2:]``."""
    if len(argv) < 3:
        die(111, USAGE)
    fn, child = argv[1], argv[2:]
    try:
        origdir = os.open(".", os.O_RDONLY)
    except OSError as e:
        die(111, FATAL, "unable to switch to current directory: ", exc=e)
    try:
        os.chdir(fn)
    except OSError as e:
        die(111, FATAL, "unable to switch to directory ", fn, ": ", exc=e)
    try:
        it = os.scandir(".")
    except OSError as e:
        die(111, FATAL, "unable to read directory ", fn, ": ", exc=e)
    entries: list[bytes] = []
    sa = b""  # envdir.c's buffer: kept when a file has vanished
    with it:
        while True:
            try:
                d = next(it, None)
            except OSError as e:
                die(111, FATAL, "unable to read directory ", fn, ": ", exc=e)
            if d is None:
                break
            name = d.name
            if name.startswith("."):
                continue
            try:
                raw = first_line(name)
            except OSError as e:
                die(111, FATAL, "unable to read ", fn, "/", name, ": ", exc=e)
            if raw is not None:
                sa = raw
            key = os.fsencode(name)
            if sa:
                sa = value_of(sa)
                entries.append(key + b"=" + sa)
                sa += b"\0"
            else:
                entries.append(key)
    try:
        os.fchdir(origdir)
    except OSError as e:
        die(111, FATAL, "unable to switch to starting directory: ", exc=e)
    os.close(origdir)
    pathexec.chain(FATAL, child, pathexec.environ_with(entries))


def cli() -> None:
    run(main)


if __name__ == "__main__":
    cli()
