"""condredirect: perhaps redirect mail to another address (condredirect(1)).

Usage, in .qmail: ``|condredirect newaddress program [ arg ... ]``.  Runs the
program on the message.  If it exits 0, forwards the message (after
``$DTLINE``, envelope sender ``$SENDER``) to ``newaddress``, prints
``condredirect: qp N`` and exits 99 so the rest of .qmail is skipped; if it
exits 111, exits 111; otherwise (or if it cannot be run) exits 0.
"""
from __future__ import annotations

import _signal
import os

from pyqmail.qmailqueue import queue_stdin
from pyqmail.spawn import run_judged
from pyqmail.strerr import die, run

FATAL = "condredirect: fatal: "


def main(argv: list[str]) -> int:
    if len(argv) < 3:
        die(100, "condredirect: usage: condredirect newaddress program [ arg ... ]")
    if run_judged(argv[2:], FATAL) != 0:
        return 0
    try:
        os.lseek(0, 0, os.SEEK_SET)
    except OSError as e:
        die(111, FATAL, "unable to rewind: ", exc=e)
    _signal.signal(_signal.SIGPIPE, _signal.SIG_IGN)
    sender = os.environb.get(b"SENDER")
    if sender is None:
        die(100, FATAL, "SENDER not set")
    dtline = os.environb.get(b"DTLINE")
    if dtline is None:
        die(100, FATAL, "DTLINE not set")
    qp = queue_stdin(FATAL, sender, dtline, [os.fsencode(argv[1])])
    die(99, f"condredirect: qp {qp}")


def cli() -> None:
    run(main)


if __name__ == "__main__":
    cli()
