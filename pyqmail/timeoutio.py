"""A connection on descriptors 0 and 1 with djb's timeoutread/timeoutwrite under
substdio, for the per-connection programs (qmail-smtpd, qmail-popup, qmail-pop3d).

Replies are buffered and written when the program flushes, is about to wait
for input, or (with ``outsize``) has gathered enough, so a pipelined batch of
commands gets its answers in one write.  Each read and each write waits at
most ``timeout`` seconds (``select``, no signals): a read that times out raises
:class:`Timeout`, for the program's own "timeout" reply; the end of input, a
read error, or a write that fails or times out raises :class:`Closed`, after
which the original simply exits.  Both are :class:`Hangup`, for programs that
treat them alike (qmail-popup, qmail-pop3d).

The options differ per program as in qmail, where each has its own substdio
buffers: ``readsize`` (qmail-popup reads 128 bytes at a time, so whatever the
client sent after PASS in the same read is lost to the next program),
``writesize`` (at most that many bytes written after each wait, so a client
that stops reading cannot block a write past the timeout: no more than a
socket that select() calls writable surely has room for), and ``outsize``
(flush once that much output is waiting).  :meth:`Conn.getline` refuses an
overlong line (:class:`TooLong`) or, with ``cut``, keeps its first bytes and
drops the rest.

:meth:`Conn.starttls` turns the connection into a TLS server (the stdlib
``ssl`` module, imported then, over memory BIOs so that every wait is still
this module's ``select``); :meth:`Conn.relay` then carries a child program's
plain descriptor through it, as sslserver or stunnel do.
"""
from __future__ import annotations

import os
import select

TYPE_CHECKING = False
if TYPE_CHECKING:
    import socket
    import ssl

#: bytes read at a time unless told otherwise
READSIZE = 65536
#: raw bytes read at a time under TLS (a record is at most 16 KiB and a bit)
RAWSIZE = 65536
#: bytes the relay holds for one direction before it stops reading that side
RELAYSIZE = 65536


class Hangup(Exception):
    """The session is over: no input in time, or the connection is gone."""


class Timeout(Hangup):
    """No input within the timeout."""


class Closed(Hangup):
    """The connection is gone: end of input, or a read or write failed or timed out."""


class TooLong(Exception):
    """A line grew past the limit without its newline."""


class Conn:
    """Buffered input and output on ``rfd``/``wfd`` with a timeout on each wait.

    ``readsize``: bytes asked for per read; ``writesize``: most bytes written
    per wait (0: all); ``outsize``: flush when that much is queued (0: only
    when told or before reading).
    """

    def __init__(self, timeout: float, rfd: int = 0, wfd: int = 1, *,
                 readsize: int = READSIZE, writesize: int = 0, outsize: int = 0) -> None:
        self.timeout = timeout
        self.rfd, self.wfd = rfd, wfd
        self.readsize = readsize
        self.writesize = writesize
        self.outsize = outsize
        self.buf = b""  # input read; what is before pos is consumed
        self.pos = 0
        self._out: list[bytes] = []
        self._outlen = 0
        self.tls: ssl.SSLObject | None = None
        self._tlsin: ssl.MemoryBIO | None = None
        self._tlsout: ssl.MemoryBIO | None = None

    # -- output -------------------------------------------------------------

    def put(self, data: bytes) -> None:
        """Queue ``data`` for the next flush (which comes now past ``outsize``)."""
        self._out.append(data)
        self._outlen += len(data)
        if self.outsize and self._outlen >= self.outsize:
            self.flush()

    def reply(self, data: bytes) -> None:
        """Queue ``data`` and flush."""
        self.put(data)
        self.flush()

    def flush(self) -> None:
        """Write what is queued; :class:`Closed` if the peer does not take it in time."""
        if not self._out:
            return
        data = b"".join(self._out)
        self._out.clear()
        self._outlen = 0
        if self.tls is not None:
            try:
                self.tls.write(data)
            except (OSError, ValueError):  # ssl.SSLError is an OSError
                raise Closed from None
            data = self._tlsout.read()
        self._write(data)

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        size = self.writesize or len(view)
        while view:
            try:
                if not select.select([], [self.wfd], [], self.timeout)[1]:
                    raise Closed
                n = os.write(self.wfd, view[:size])
            except (OSError, ValueError):
                raise Closed from None
            view = view[n:]

    # -- input --------------------------------------------------------------

    def _wait_read(self, size: int) -> bytes:
        """One read of the descriptor after waiting for it; never empty."""
        try:
            if not select.select([self.rfd], [], [], self.timeout)[0]:
                raise Timeout
            data = os.read(self.rfd, size)
        except (OSError, ValueError):
            raise Closed from None
        if not data:
            raise Closed
        return data

    def read(self) -> bytes:
        """Flush, then the next bytes of input (not the buffered ones)."""
        self.flush()
        if self.tls is None:
            return self._wait_read(self.readsize)
        import ssl

        while True:
            try:
                data = self.tls.read(self.readsize)
            except ssl.SSLWantReadError:
                self._tlsin.write(self._wait_read(RAWSIZE))
                continue
            except (OSError, ValueError):  # a bad record, or the peer's close_notify
                raise Closed from None
            finally:
                self._push()  # alerts, tickets
            if not data:
                raise Closed
            return data

    def getline(self, limit: int, cut: bool = False) -> bytes:
        """The next line without its newline.  Past ``limit`` bytes without a
        newline: :class:`TooLong`, or with ``cut`` the first ``limit`` bytes
        (the rest of the line is read and dropped)."""
        start = self.pos
        kept: bytes | None = None
        while True:
            nl = self.buf.find(b"\n", start)
            if nl >= 0:
                line = self.buf[self.pos:nl] if kept is None else kept
                self.pos = nl + 1
                return line
            start = len(self.buf) - self.pos  # searched already
            if start > limit:
                if not cut:
                    raise TooLong
                if kept is None:
                    kept = self.buf[self.pos:self.pos + limit]
                self.buf, self.pos, start = b"", 0, 0
            self.buf = self.buf[self.pos:] + self.read()
            self.pos = 0

    def command(self, limit: int) -> tuple[bytes, bytes]:
        """The next command as qmail's commands() sees it: the line (cut at
        ``limit``) without a CR at its end, up to a NUL; its first word in
        lower case, and the rest after the spaces that follow."""
        line = self.getline(limit, cut=True)
        if line.endswith(b"\r"):
            line = line[:-1]
        verb, _, arg = line.split(b"\0", 1)[0].partition(b" ")
        return verb.lower(), arg.lstrip(b" ")

    def take(self) -> bytes:
        """The buffered input not consumed yet, now the caller's."""
        rest = self.buf[self.pos:]
        self.buf, self.pos = b"", 0
        return rest

    def give(self, rest: bytes) -> None:
        """Hand back input the caller did not consume (read before anything else)."""
        self.buf, self.pos = rest, 0

    # -- TLS ----------------------------------------------------------------

    def starttls(self, context: ssl.SSLContext) -> None:
        """Flush, drop buffered plain input (a client may not send any after its
        STARTTLS: taking it would let an attacker inject commands), and do a
        server handshake.  :class:`Timeout` or :class:`Closed` if it fails."""
        import ssl

        self.flush()
        self.take()
        self._tlsin, self._tlsout = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.tls = context.wrap_bio(self._tlsin, self._tlsout, server_side=True)
        while True:
            try:
                self.tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                self._push()
                self._tlsin.write(self._wait_read(RAWSIZE))
            except (OSError, ValueError):
                self._push()  # the alert, if any
                raise Closed from None
        self._push()

    def _push(self) -> None:
        """Write the TLS bytes waiting in the outgoing BIO."""
        if self._tlsout is not None and self._tlsout.pending:
            self._write(self._tlsout.read())

    def close_tls(self) -> None:
        """Send TLS's close_notify, if TLS is on; errors are ignored."""
        if self.tls is None:
            return
        try:
            self.flush()
            self.tls.unwrap()
        except (OSError, ValueError):  # SSLWantReadError: the peer's notify is not awaited
            pass
        try:
            self._push()
        except Hangup:
            pass

    # -- relay ----------------------------------------------------------------

    def relay(self, local: socket.socket) -> None:
        """Carry bytes both ways between the connection and ``local`` (a stream
        socket whose other end a child program reads and writes in the clear)
        until the child's side is closed and what it sent is delivered, the
        client is gone, or nothing moves for ``timeout`` seconds.  The end of
        the client's input is passed on as a half-close of ``local``."""
        import ssl

        self.flush()
        fd = local.fileno()
        os.set_blocking(fd, False)
        tolocal = bytearray()
        toclient = bytearray()  # as it goes on the wire
        clientopen = localopen = True
        halfclosed = False

        def drain() -> None:
            """Decrypted input the TLS layer holds, into ``tolocal``."""
            nonlocal clientopen
            while self.tls is not None and clientopen and len(tolocal) < RELAYSIZE:
                try:
                    data = self.tls.read(RAWSIZE)
                except ssl.SSLWantReadError:
                    return
                except (OSError, ValueError):
                    data = b""
                if not data:
                    clientopen = False
                tolocal.extend(data)

        drain()
        while localopen or toclient:
            if not clientopen and not tolocal and not halfclosed:
                try:
                    local.shutdown(1)  # SHUT_WR
                except OSError:
                    pass
                halfclosed = True
            rlist, wlist = [], []
            if clientopen and len(tolocal) < RELAYSIZE:
                rlist.append(self.rfd)
            if localopen and len(toclient) < RELAYSIZE:
                rlist.append(fd)
            if tolocal:
                wlist.append(fd)
            if toclient:
                wlist.append(self.wfd)
            try:
                r, w, _ = select.select(rlist, wlist, [], self.timeout)
            except (OSError, ValueError):
                return
            if not r and not w:
                return  # idle past the timeout
            if self.rfd in r:
                try:
                    data = os.read(self.rfd, RAWSIZE)
                except OSError:
                    return
                if not data:
                    clientopen = False
                elif self.tls is None:
                    tolocal.extend(data)
                else:
                    self._tlsin.write(data)
                    drain()
                    toclient.extend(self._tlsout.read())
            if fd in r:
                try:
                    data = os.read(fd, RAWSIZE)
                except BlockingIOError:
                    data = None
                except OSError:
                    data = b""
                if data == b"":
                    localopen = False
                elif data and self.tls is None:
                    toclient.extend(data)
                elif data:
                    try:
                        self.tls.write(data)
                    except (OSError, ValueError):
                        return
                    toclient.extend(self._tlsout.read())
            if fd in w:
                try:
                    del tolocal[:os.write(fd, tolocal)]
                except BlockingIOError:
                    pass
                except OSError:  # the child closed its side: what it was sent is lost
                    tolocal.clear()
                    clientopen = False
            if self.wfd in w:
                try:
                    del toclient[:os.write(self.wfd, toclient[:self.writesize or len(toclient)])]
                except OSError:
                    return
