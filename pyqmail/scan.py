"""djb's scan_ulong: the leading decimal digits of a string."""
from __future__ import annotations

_MASK = (1 << 64) - 1


def scan_ulong(s: str | bytes) -> tuple[int, int]:
    """``(value, n)``: the number made of the first ``n`` characters of ``s``,
    all decimal digits (0 and 0 when there are none), wrapping at 2**64."""
    if isinstance(s, bytes):
        s = s.decode("latin-1")
    n = 0
    while n < len(s) and "0" <= s[n] <= "9":
        n += 1
    return (int(s[:n]) & _MASK if n else 0), n
