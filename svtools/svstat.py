"""svstat: print the status of services supervised by supervise.

One line a directory: ``dir: up (pid N) S seconds``, ``dir: down S seconds,
normally up``, with ``, paused``, ``, want up`` or ``, want down`` where they
apply, or the reason the status could not be read.
"""
from __future__ import annotations

import errno
import os
import time

from pyqmail import fsutil, tai64
from pyqmail.errstr import exc_str
from pyqmail.strerr import die, run
from svtools.status import SIZE, Status

FATAL = "svstat: fatal: "

#: svstat.c reads every status file into one static buffer, kept between directories
_status = bytearray(SIZE)


def status_text(d: str) -> str:
    """The text after ``dir: `` for the service in the current directory's ``d``."""
    try:
        os.chdir(d)
    except OSError as e:
        return "unable to chdir: " + exc_str(e)
    try:
        os.stat("down")
        normallyup = False
    except FileNotFoundError:
        normallyup = True
    except OSError as e:
        return "unable to stat down: " + exc_str(e)
    try:
        fd = fsutil.open_write("supervise/ok")
    except OSError as e:
        if e.errno == errno.ENXIO:
            return "supervise not running"
        return "unable to open supervise/ok: " + exc_str(e)
    os.close(fd)
    try:
        fd = os.open("supervise/status", os.O_RDONLY | os.O_NONBLOCK)
    except OSError as e:
        return "unable to open supervise/status: " + exc_str(e)
    try:
        data = os.read(fd, SIZE)
    except OSError:
        # svstat.c compares read()'s -1 with an unsigned size: the error goes
        # unnoticed and it reports whatever its buffer last held
        data = bytes(_status)
    finally:
        os.close(fd)
    _status[:len(data)] = data
    if len(data) < SIZE:
        return "unable to read supervise/status: bad format"
    st = Status.unpack(bytes(_status))
    when = tai64.unpack_tai(st.stamp)
    now = tai64.EPOCH + int(time.time())
    # svstat.c prints tai_approx(), a double: huge ages lose their low digits
    age = int(float(max(now - when, 0)))
    text = f"up (pid {st.pid}) " if st.pid else "down "
    text += f"{age} seconds"
    if st.pid and not normallyup:
        text += ", normally down"
    if not st.pid and normallyup:
        text += ", normally up"
    if st.pid and st.paused:
        text += ", paused"
    if not st.pid and st.want == b"u":
        text += ", want up"
    if st.pid and st.want == b"d":
        text += ", want down"
    return text


def main(argv: list[str]) -> int:
    """Print one status line for each directory named."""
    try:
        origdir = os.open(".", os.O_RDONLY)
    except OSError as e:
        die(111, FATAL, "unable to open current directory: ", exc=e)
    for d in argv[1:]:
        line = f"{d}: {status_text(d)}\n"
        try:
            os.fchdir(origdir)
        except OSError as e:
            die(111, FATAL, "unable to set directory: ", exc=e)
        fsutil.write_all(1, line.encode("utf-8", "surrogateescape"))
    return 0


def cli() -> None:
    run(main)


if __name__ == "__main__":
    cli()
