"""qmail-send's log (qsutil.c): lines on fd 0, each written as soon as it is made."""
from __future__ import annotations

import os
import time

_TABLE = bytes(c if 33 <= c <= 126 and c != 37 else 95 for c in range(256))


def safe(text: bytes) -> bytes:
    """logsafe: newlines become ``/``; ``%``, spaces, controls and 8-bit become ``_``."""
    return text.replace(b"\n", b"/").translate(_TABLE)


def log(*parts: bytes | str) -> None:
    data = b"".join(p.encode() if isinstance(p, str) else p for p in parts)
    while True:
        try:
            while data:
                n = os.write(0, data)
                data = data[n:]
            return
        except InterruptedError:
            continue
        except BlockingIOError:
            time.sleep(0.01)
        except OSError:
            return


def nomem() -> None:
    log("alert: out of memory, sleeping...\n")
    time.sleep(10)


def pausedir(name: str) -> None:
    log(f"alert: unable to opendir {name}, sleeping...\n")
    time.sleep(10)
