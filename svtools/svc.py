"""svc: send control letters to supervise processes.

Usage: ``svc -udopchaitkx services...``.  Each letter is written once, in the
order first given, to ``service/supervise/control``.
"""
from __future__ import annotations

import _signal  # signal without its enum wrappers: 4 ms less at start-up
import errno
import os

from pyqmail import fsutil
from pyqmail.sgetopt import OptError, sgetopt
from pyqmail.strerr import Die, die, run, warn

FATAL = "svc: fatal: "
WARNING = "svc: warning: "
USAGE = ("svc options: u up, d down, o once, x exit, p pause, c continue, "
         "h hup, a alarm, i interrupt, t term, k kill")


def main(argv: list[str]) -> int:
    """Send the options' letters to each directory named."""
    _signal.signal(_signal.SIGPIPE, _signal.SIG_IGN)
    try:
        opts, dirs = sgetopt(argv, "udopchaitkx")
    except OptError:
        raise Die(100, USAGE) from None
    data = b""
    for opt, _ in opts:
        if len(data) < 20 and opt.encode() not in data:
            data += opt.encode()
    try:
        origdir = os.open(".", os.O_RDONLY)
    except OSError as e:
        die(111, FATAL, "unable to open current directory: ", exc=e)
    for d in dirs:
        send(d, data)
        try:
            os.fchdir(origdir)
        except OSError as e:
            die(111, FATAL, "unable to set directory: ", exc=e)
    return 0


def send(d: str, data: bytes) -> None:
    """Write ``data`` to ``d/supervise/control``, warning on failure."""
    try:
        os.chdir(d)
    except OSError as e:
        warn(WARNING, "unable to chdir to ", d, ": ", exc=e)
        return
    try:
        fd = fsutil.open_write("supervise/control")
    except OSError as e:
        if e.errno == errno.ENXIO:
            warn(WARNING, "unable to control ", d, ": supervise not running")
        else:
            warn(WARNING, "unable to control ", d, ": ", exc=e)
        return
    try:
        fsutil.ndelay_off(fd)
        fsutil.write_all(fd, data)
    except OSError as e:
        warn(WARNING, "error writing commands to ", d, ": ", exc=e)
    finally:
        os.close(fd)


def cli() -> None:
    run(main)


if __name__ == "__main__":
    cli()
