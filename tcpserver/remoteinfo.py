"""The RFC 1413 (ident) query tcpserver and tcpclient make for TCPREMOTEINFO."""
from __future__ import annotations

import socket
import time


def remoteinfo(remoteip: str, remoteport: int, localip: str, localport: int,
               timeout: float) -> bytes | None:
    """Ask the ident server at ``remoteip`` about our connection; None if it cannot say.

    As djb's remoteinfo(): connect from ``localip`` to port 113, send
    ``remoteport , localport``, and take what follows the third colon of the
    first line of the answer, blanks removed (257 bytes at most), all within ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    try:
        family = socket.AF_INET6 if ":" in remoteip else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as s:
            s.bind((localip, 0))
            s.settimeout(timeout)
            s.connect((remoteip, 113))
            s.sendall(b"%d , %d\r\n" % (remoteport, localport))
            out = bytearray()
            colons = 0
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                s.settimeout(left)
                data = s.recv(128)
                if not data:
                    return None
                for ch in data:
                    if ch in (32, 9, 13):  # blanks and CR are dropped anywhere
                        continue
                    if ch == 10:
                        return bytes(out)
                    if colons < 3:
                        if ch == 58:
                            colons += 1
                    else:
                        out.append(ch)
                        if len(out) > 256:
                            return bytes(out)
    except OSError:
        return None
