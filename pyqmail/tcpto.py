"""qmail's table of SMTP connection timeouts, ``queue/lock/tcpto``.

The file holds up to 64 records of 16 bytes: bytes 0-3 the IPv4 address,
byte 4 the count of recent timeouts (0 = free slot, at most 10), bytes 8-11
the time of the last timeout, little-endian; the rest is unused.  Whoever
reads or changes it holds an exclusive flock on a write descriptor.  After a
timeout qmail-remote records the address; once an address has timed out
twice (two minutes apart, no success between), it is skipped for about an
hour.  This follows qmail's tcpto.c; qmail-tcpto prints the table and
qmail-tcpok clears it.
"""
from __future__ import annotations

import fcntl
import os
import time

from pyqmail import control

SIZE = 1024
RECORD = 16


def path() -> str:
    """Where the table lives: ``$QMAILHOME/queue/lock/tcpto``."""
    return control.path("queue", "lock", "tcpto")


def read_locked(name: str | None = None) -> tuple[int, bytearray]:
    """Open the table for writing, lock it and read it; return (write fd, data).

    The caller closes the descriptor, which drops the lock.  Raises OSError.
    """
    name = name or path()
    fdlock = os.open(name, os.O_WRONLY)
    try:
        fd = os.open(name, os.O_RDONLY)
        try:
            fcntl.flock(fdlock, fcntl.LOCK_EX)
            data = bytearray(os.read(fd, SIZE))
        finally:
            os.close(fd)
    except BaseException:
        os.close(fdlock)
        raise
    return fdlock, data


def when(record: bytes | bytearray) -> int:
    """The time of a record's last timeout."""
    return int.from_bytes(record[8:12], "little")


def entries(data: bytes | bytearray) -> list[tuple[str, int, int]]:
    """The records in use as (ip, recent timeouts, time of the last)."""
    out = []
    for i in range(len(data) // RECORD):
        rec = data[i * RECORD:(i + 1) * RECORD]
        if rec[4] >= 1:
            out.append((".".join(str(b) for b in rec[:4]), rec[4], when(rec)))
    return out


def _pack_ip(ip: str) -> bytes:
    return bytes(int(x) for x in ip.split("."))


class TcpTo:
    """The table as one qmail-remote uses it: :meth:`skip` before connecting
    to an address, :meth:`record` after.  Any error reading or writing the
    table makes it as if it were empty, as in qmail."""

    def __init__(self, name: str | None = None) -> None:
        self.name = name or path()
        self.wasthere = False

    def _get(self) -> tuple[int, bytearray, int] | None:
        try:
            fdlock, data = read_locked(self.name)
        except OSError:
            return None
        n = len(data) // RECORD
        if not n:
            os.close(fdlock)
            return None
        return fdlock, data, n

    def skip(self, ip: str) -> bool:
        """True if ``ip`` has timed out repeatedly and recently: do not try it."""
        self.wasthere = False
        got = self._get()
        if got is None:
            return False
        fdlock, data, n = got
        os.close(fdlock)
        key = _pack_ip(ip)
        for i in range(n):
            rec = data[i * RECORD:(i + 1) * RECORD]
            if rec[:4] == key:
                self.wasthere = True
                if rec[4] >= 2:
                    age = int(time.time()) - when(rec)
                    return 0 <= age < ((60 + (os.getpid() & 31)) << 6)
                return False
        return False

    def record(self, ip: str, timedout: bool) -> None:
        """Note the result of a connection attempt to ``ip``: a success (or a
        refusal) clears its count, a timeout adds to it."""
        if not timedout and not self.wasthere:
            return
        got = self._get()
        if got is None:
            return
        fdlock, data, n = got
        try:
            self._update(fdlock, data, n, _pack_ip(ip), timedout)
        except OSError:
            pass
        finally:
            os.close(fdlock)

    @staticmethod
    def _update(fdlock: int, data: bytearray, n: int, key: bytes, timedout: bool) -> None:
        now = int(time.time())
        for i in range(n):
            off = i * RECORD
            if data[off:off + 4] == key:
                if not timedout:
                    data[off + 4] = 0
                else:
                    if data[off + 4] and now < 120 + when(data[off:off + RECORD]):
                        return
                    data[off + 4] = min(data[off + 4] + 1, 10)
                    data[off + 8:off + 12] = (now & 0xFFFFFFFF).to_bytes(4, "little")
                os.pwrite(fdlock, bytes(data[off:off + RECORD]), off)
                return
        if not timedout:
            return
        free = next((i for i in range(n) if not data[i * RECORD + 4]), None)
        if free is None:  # full: reuse the slot whose entry matters least
            free = min(range(n), key=lambda i: when(data[i * RECORD:(i + 1) * RECORD])
                       + (data[i * RECORD + 4] << 10))
        off = free * RECORD
        data[off:off + 4] = key
        data[off + 8:off + 12] = (now & 0xFFFFFFFF).to_bytes(4, "little")
        data[off + 4] = 1
        os.pwrite(fdlock, bytes(data[off:off + RECORD]), off)
