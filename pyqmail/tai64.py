"""TAI64 and TAI64N: djb's timestamps, as daemontools writes them.

A TAI64N value is 8 bytes of seconds (2**62 + 10 + Unix seconds, big-endian)
and 4 bytes of nanoseconds; its external label is ``@`` and 24 hex digits.
"""
from __future__ import annotations

import struct
import time

#: TAI64 of the Unix epoch, with the 10 seconds TAI was ahead of UTC in 1970
EPOCH = 4611686018427387914
_PACK = struct.Struct(">QL")


def now_pack() -> bytes:
    """The current time as 12 bytes of TAI64N."""
    ns = time.time_ns()
    return _PACK.pack(EPOCH + ns // 1_000_000_000, ns % 1_000_000_000)


def pack(seconds: int, nanoseconds: int = 0) -> bytes:
    """TAI64N bytes for Unix ``seconds`` and ``nanoseconds``."""
    return _PACK.pack(EPOCH + seconds, nanoseconds)


def unpack(data: bytes) -> tuple[int, int]:
    """Unix seconds and nanoseconds from 12 bytes of TAI64N."""
    sec, nano = _PACK.unpack(data[:12])
    return sec - EPOCH, nano


def unpack_tai(data: bytes) -> int:
    """The TAI64 seconds counter in the first 8 bytes of ``data``."""
    return struct.unpack(">Q", data[:8])[0]


def label(data: bytes) -> str:
    """The external ``@`` + 24-hex-digit form of 12 bytes of TAI64N."""
    return "@" + data[:12].hex()


def now_label() -> str:
    """The current time as a TAI64N label."""
    return label(now_pack())
