"""qmail's dates (date822fmt.c): ``25 Nov 2026 16:01:31 -0000``, always UTC."""
from __future__ import annotations

import time

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def date822(when: float | None = None) -> bytes:
    """The date as qmail writes it in Received:, Date: and bounces, with a newline."""
    t = time.gmtime(time.time() if when is None else when)
    return (f"{t.tm_mday} {MONTHS[t.tm_mon - 1]} {t.tm_year} "
            f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} -0000\n").encode()
