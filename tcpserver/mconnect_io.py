"""mconnect-io: the two copies behind mconnect, run by tcpclient.

Usage: ``mconnect-io`` (arguments are ignored), with the connection on
descriptors 6 (from the server) and 7 (to the server), as tcpclient leaves it.
A forked child copies stdin to descriptor 7 with a CR put in front of every
LF; the parent copies descriptor 6 to stdout.  When the server's side ends
(or cannot be read) the parent kills the child with SIGTERM, waits for it
and exits 0.  Write errors are ignored; 111 only if the fork fails.
"""
from __future__ import annotations

import os

import _signal

from pyqmail.strerr import die, run

#: bytes asked of each read(); the original reads 512 and the bytes are the same
BUFSIZE = 8192


def copy(fdin: int, fdout: int, addcr: bool) -> None:
    """Copy ``fdin`` to ``fdout`` until the end or a read error, ignoring write errors."""
    while True:
        try:
            data = os.read(fdin, BUFSIZE)
        except OSError:
            return
        if not data:
            return
        if addcr:
            data = data.replace(b"\n", b"\r\n")
        while data:
            try:
                n = os.write(fdout, data)
            except OSError:
                break
            data = data[n:]


def main(argv: list[str]) -> int:
    """Copy stdin to the server adding CRs and the server to stdout."""
    _signal.signal(_signal.SIGPIPE, _signal.SIG_IGN)
    try:
        pid = os.fork()
    except OSError as e:
        die(111, "mconnect-io: fatal: ", "unable to fork: ", exc=e)
    if pid == 0:
        try:
            copy(0, 7, True)
        finally:
            os._exit(0)
    copy(6, 1, False)
    try:
        os.kill(pid, _signal.SIGTERM)
        os.waitpid(pid, 0)
    except OSError:
        pass
    return 0


def cli() -> None:
    run(main)


if __name__ == "__main__":
    cli()
