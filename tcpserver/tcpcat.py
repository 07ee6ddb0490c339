"""tcpcat: print what a TCP server sends.

Usage: ``tcpcat [ host [ port ] ]`` (default host 0, the local host, and port
17).  As the original script: ``tcpclient -RHl0 -- host port sh -c 'exec cat <&6'``,
with pyqmail's tcpclient from the directory this script is installed in.  The
data is copied unchanged, binary or not.  Exits as tcpclient does; 111 if
tcpclient cannot be run.
"""
from __future__ import annotations

from pyqmail import pathexec
from pyqmail.strerr import run
from tcpserver.ucspi import client_argv

FATAL = "tcpcat: fatal: "


def main(argv: list[str]) -> int:
    """Exec tcpclient with ``sh -c 'exec cat <&6'``."""
    pathexec.chain(FATAL, client_argv(argv, "17", ["sh", "-c", "exec cat <&6"]))


def cli() -> None:
    run(main)


if __name__ == "__main__":
    cli()
