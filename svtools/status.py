"""The 18-byte ``supervise/status`` file shared by supervise, svstat and svc users.

Bytes 0-11: TAI64N of the last change; 12-15: pid, little-endian (0 when
down); 16: 1 when paused; 17: ``u`` want up, ``d`` want down, NUL neither.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass

SIZE = 18
_PIDFLAGS = struct.Struct("<LBc")


@dataclass
class Status:
    """One decoded status file."""

    stamp: bytes  # 12 bytes of TAI64N
    pid: int
    paused: bool
    want: bytes  # b"u", b"d" or b"\0"

    def pack(self) -> bytes:
        """The 18 bytes supervise writes."""
        return self.stamp[:12] + _PIDFLAGS.pack(self.pid, 1 if self.paused else 0, self.want)

    @classmethod
    def unpack(cls, data: bytes) -> "Status":
        """Decode 18 bytes (raise ValueError on a short file)."""
        if len(data) < SIZE:
            raise ValueError("bad format")
        pid, paused, want = _PIDFLAGS.unpack(data[12:18])
        return cls(data[:12], pid, bool(paused), want)
