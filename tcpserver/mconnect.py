"""mconnect: talk to an SMTP server by hand.

Usage: ``mconnect [ host [ port ] ]`` (default host 0, the local host, and
port 25).  As the original script: ``tcpclient -RHl0 -- host port mconnect-io``,
so lines typed get a CR added and whatever the server says is printed.  It is
pyqmail's tcpclient and mconnect-io that run, from the directory this script
is installed in.  Exits as tcpclient does; 111 if tcpclient cannot be run.
"""
from __future__ import annotations

import os

from pyqmail import pathexec
from pyqmail.strerr import run
from tcpserver.ucspi import bindir, client_argv

FATAL = "mconnect: fatal: "


def main(argv: list[str]) -> int:
    """Exec tcpclient with mconnect-io."""
    io = os.path.join(bindir(argv[0] if argv else ""), "mconnect-io")
    pathexec.chain(FATAL, client_argv(argv, "25", [io]))


def cli() -> None:
    run(main)


if __name__ == "__main__":
    cli()
