"""qmail-tcpto: print qmail-remote's table of connection timeouts.

Usage: ``qmail-tcpto``.  One line per address that has timed out:
``IP timed out N seconds ago; # recent timeouts: M``.  As the original, its
errors go to stdout (``fatal: unable to open tcpto: reason``), exit 111.
"""
from __future__ import annotations

import os
import time

from pyqmail import control, tcpto
from pyqmail.errstr import exc_str
from pyqmail.fsutil import lock_ex
from pyqmail.strerr import run


def main(argv: list[str]) -> int:
    """Print the table; 0, or 111 if it cannot be read."""
    out: list[str] = []
    code = 0
    try:
        for step in (control.qmail_home(), "queue/lock"):
            try:
                os.chdir(step)
            except OSError as e:
                raise _Fatal("fatal: unable to chdir", e) from None
        try:
            fdlock = os.open("tcpto", os.O_WRONLY)
            fd = os.open("tcpto", os.O_RDONLY)
        except OSError as e:
            raise _Fatal("fatal: unable to open tcpto", e) from None
        try:
            lock_ex(fdlock)
        except OSError as e:
            raise _Fatal("fatal: unable to lock tcpto", e) from None
        try:
            data = os.read(fd, tcpto.SIZE)
        except OSError as e:
            raise _Fatal("fatal: unable to read tcpto", e) from None
        finally:
            os.close(fd)
            os.close(fdlock)
        start = int(time.time())
        for ip, count, when in tcpto.entries(data):
            out.append(f"{ip} timed out {(start - when) % (1 << 64)} seconds ago;"
                       f" # recent timeouts: {count}\n")
    except _Fatal as f:
        out.append(f"{f.args[0]}: {exc_str(f.args[1])}\n")
        code = 111
    data = "".join(out).encode()
    try:
        while data:
            data = data[os.write(1, data):]
    except OSError:
        pass
    return code


class _Fatal(Exception):
    """(text, OSError): the line to print before exiting 111."""


def cli() -> None:
    run(main)


if __name__ == "__main__":
    cli()
