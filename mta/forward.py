"""forward: forward new mail to one or more addresses (forward(1)).

Usage, in .qmail: ``|forward address ...``.  Hands the message, after
``$DTLINE``, to qmail-queue with envelope sender ``$NEWSENDER`` and the
addresses as recipients.  Prints ``forward: qp N`` and exits 0; 100 if
NEWSENDER or DTLINE is not set or the queue refuses for good; 111 for a
temporary failure.
"""
from __future__ import annotations

import _signal
import os

from pyqmail.qmailqueue import queue_stdin
from pyqmail.strerr import die, run

FATAL = "forward: fatal: "


def main(argv: list[str]) -> int:
    _signal.signal(_signal.SIGPIPE, _signal.SIG_IGN)
    sender = os.environb.get(b"NEWSENDER")
    if sender is None:
        die(100, FATAL, "NEWSENDER not set")
    dtline = os.environb.get(b"DTLINE")
    if dtline is None:
        die(100, FATAL, "DTLINE not set")
    qp = queue_stdin(FATAL, sender, dtline, [os.fsencode(a) for a in argv[1:]])
    die(0, f"forward: qp {qp}")


def cli() -> None:
    run(main)


if __name__ == "__main__":
    cli()
