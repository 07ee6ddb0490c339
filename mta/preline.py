"""preline: prepend lines to a message (preline(1)).

Usage, in .qmail: ``|preline [ -dfrDFR ] command [ arg ... ]``.  Feeds the
message to ``command`` after the ``From_`` line, the ``Return-Path`` line and
the ``Delivered-To`` line that qmail-local gives in ``$UFLINE``, ``$RPLINE``
and ``$DTLINE``.  ``-f``, ``-r``, ``-d`` leave one out (``-F``, ``-R``, ``-D``
put it back).  Exits with the command's exit code; 100 for usage (also when
those variables are not set); 111 if the command crashed or the copy failed.
"""
from __future__ import annotations

import _signal
import os

from pyqmail.errstr import error_temp
from pyqmail.fsutil import write_all
from pyqmail.sgetopt import OptError, sgetopt
from pyqmail.spawn import CRASHED, spawnp, wait
from pyqmail.strerr import die, run

FATAL = "preline: fatal: "
USAGE = "preline: usage: preline cmd [ arg ... ]"


def main(argv: list[str]) -> int:
    _signal.signal(_signal.SIGPIPE, _signal.SIG_IGN)
    env = os.environb
    lines = [env.get(b"UFLINE"), env.get(b"RPLINE"), env.get(b"DTLINE")]
    if None in lines:
        die(100, USAGE)
    try:
        opts, args = sgetopt(argv, "frdFRD")
    except OptError:
        die(100, USAGE)
    want = [True, True, True]
    for opt, _ in opts:
        want["frd".index(opt.lower())] = opt.isupper()
    if not args:
        die(100, USAGE)
    try:
        r, w = os.pipe()
    except OSError as e:
        die(111, FATAL, "unable to create pipe: ", exc=e)
    try:
        pid = spawnp(args, stdin=r)
    except OSError as e:
        die(111 if error_temp(e.errno) else 100, FATAL, "unable to run ", args[0], ": ", exc=e)
    os.close(r)
    head = b"".join(line for line, on in zip(lines, want) if on)
    try:
        write_all(w, head)
    except OSError:
        pass  # as substdio_bputs: the copy that follows reports it
    try:
        while True:
            data = os.read(0, 65536)
            if not data:
                break
            write_all(w, data)
    except OSError as e:
        die(111, FATAL, "unable to copy input: ", exc=e)
    os.close(w)
    try:
        code = wait(pid)
    except OSError as e:
        die(111, FATAL, "wait failed: ", exc=e)
    if code == CRASHED:
        die(111, FATAL, "child crashed")
    return code


def cli() -> None:
    run(main)


if __name__ == "__main__":
    cli()
