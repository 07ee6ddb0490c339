"""A connection on descriptors 0 and 1 with djb's timeoutread/timeoutwrite under
substdio, for the per-connection programs (qmail-smtpd; qmail-popup and
qmail-pop3d read the same way).

Replies are buffered and written when the program flushes or is about to
wait for input, so a pipelined batch of commands gets its answers in one
write.  Each read and each write waits at most ``timeout`` seconds
(``select``, no signals): a read that times out raises :class:`Timeout`, for
the program's own "timeout" reply; the end of input, a read error, or a write
that fails or times out raises :class:`Closed`, after which the original
simply exits.
"""
from __future__ import annotations

import os
import select

READSIZE = 65536


class Timeout(Exception):
    """No input within the timeout."""


class Closed(Exception):
    """The connection is gone: end of input, or a read or write failed or timed out."""


class TooLong(Exception):
    """A line grew past the limit without its newline."""


class Conn:
    """Buffered input and output on ``rfd``/``wfd`` with a timeout on each wait."""

    def __init__(self, timeout: float, rfd: int = 0, wfd: int = 1) -> None:
        self.timeout = timeout
        self.rfd, self.wfd = rfd, wfd
        self.buf = b""  # input read; what is before pos is consumed
        self.pos = 0
        self._out: list[bytes] = []

    def put(self, data: bytes) -> None:
        """Queue ``data`` for the next flush."""
        self._out.append(data)

    def flush(self) -> None:
        """Write what is queued; :class:`Closed` if the peer does not take it in time."""
        if not self._out:
            return
        view = memoryview(b"".join(self._out))
        self._out.clear()
        while view:
            try:
                if not select.select([], [self.wfd], [], self.timeout)[1]:
                    raise Closed
                n = os.write(self.wfd, view)
            except OSError:
                raise Closed from None
            view = view[n:]

    def read(self) -> bytes:
        """Flush, then the next bytes of input (not the buffered ones)."""
        self.flush()
        try:
            if not select.select([self.rfd], [], [], self.timeout)[0]:
                raise Timeout
            data = os.read(self.rfd, READSIZE)
        except OSError:
            raise Closed from None
        if not data:
            raise Closed
        return data

    def getline(self, limit: int) -> bytes:
        """The next line without its newline; :class:`TooLong` past ``limit`` bytes."""
        start = self.pos
        while True:
            nl = self.buf.find(b"\n", start)
            if nl >= 0:
                line = self.buf[self.pos:nl]
                self.pos = nl + 1
                return line
            start = len(self.buf) - self.pos  # searched already
            if start > limit:
                raise TooLong
            self.buf = self.buf[self.pos:] + self.read()
            self.pos = 0

    def take(self) -> bytes:
        """The buffered input not consumed yet, now the caller's."""
        rest = self.buf[self.pos:]
        self.buf, self.pos = b"", 0
        return rest

    def give(self, rest: bytes) -> None:
        """Hand back input the caller did not consume (read before anything else)."""
        self.buf, self.pos = rest, 0
