"""Where our own ucspi-tcp programs are, for the scripts that run one of them.

mconnect and tcpcat are shell scripts around tcpclient in the original; ours
run pyqmail's tcpclient (and mconnect-io), found in the directory our own
script really lives in, whatever PATH holds.
"""
from __future__ import annotations

import os
import sys


def bindir(argv0: str) -> str:
    """The directory of the running console script ``argv0`` (links followed)."""
    if "/" in argv0:
        return os.path.dirname(os.path.realpath(argv0))
    return os.path.dirname(sys.executable)


def client_argv(argv: list[str], default_port: str, program: list[str]) -> list[str]:
    """``tcpclient -RHl0 -- host port program...`` as the scripts build it.

    The host is ``argv[1]`` and the port ``argv[2]`` when given (even empty),
    else ``0`` and ``default_port``, as ``"${1-0}" "${2-25}"`` in sh.
    """
    host = argv[1] if len(argv) > 1 else "0"
    port = argv[2] if len(argv) > 2 else default_port
    return [os.path.join(bindir(argv[0] if argv else ""), "tcpclient"),
            "-RHl0", "--", host, port, *program]
