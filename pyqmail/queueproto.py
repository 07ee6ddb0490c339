"""The queue service's socket protocol (Python cannot be setuid qmailq).

qmail-queued listens on ``QMAILHOME/run/qmail-queue.sock`` (mode 0666, as
qmail-queue is executable by all) and queues what each connection sends,
as the uid the kernel reports for the caller (SO_PEERCRED):

- the message, as frames: 4 bytes of big-endian length, then that many
  bytes; a frame of length 0 ends the message;
- the envelope, as qmail-queue reads it from its fd 1;
- the service answers with one byte, qmail-queue's exit code, and closes.

:class:`Client` is the caller's side, used by our qmail-queue and by our
long-running programs that would otherwise start qmail-queue.
"""
from __future__ import annotations

import os
import socket
import struct

from pyqmail import control

SOCKET = ("run", "qmail-queue.sock")
_LEN = struct.Struct(">I")
#: "qq trouble making network connection": the service is not there
NOCONNECT = 56
#: "communication with mail server failed": the service went away mid-message
LOST = 74
FRAME = 65536


def socket_path() -> str:
    return control.path(*SOCKET)


def frame(data: bytes) -> bytes:
    return _LEN.pack(len(data)) + data


END = _LEN.pack(0)


def read_frames(reader):
    """The message chunks from a buffered socket reader, until the empty frame.
    Raises EOFError if the connection ends first."""
    while True:
        head = reader.read(4)
        if len(head) < 4:
            raise EOFError
        (n,) = _LEN.unpack(head)
        if n == 0:
            return
        data = reader.read(n)
        if len(data) < n:
            raise EOFError
        yield data


class Client:
    """One message sent to the queue service; :meth:`finish` gives the exit code."""

    def __init__(self, path: str | None = None) -> None:
        """Connect; OSError if the service cannot be reached."""
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self.sock.connect(path or socket_path())
        except OSError:
            self.sock.close()
            raise
        self.pending: list[bytes] = []
        self.size = 0
        self.broken = False

    def put(self, data: bytes) -> None:
        """Send part of the message (buffered into frames of up to 64 KiB)."""
        if not data or self.broken:
            return
        self.pending.append(data)
        self.size += len(data)
        if self.size >= FRAME:
            self._flush()

    def _flush(self) -> None:
        if self.size:
            data = b"".join(self.pending)
            self.pending, self.size = [], 0
            self._send(frame(data))

    def _send(self, data: bytes) -> None:
        if self.broken:
            return
        try:
            self.sock.sendall(data)
        except OSError:
            self.broken = True

    def end_message(self) -> None:
        self._flush()
        self._send(END)

    def envelope(self, data: bytes) -> None:
        self._send(data)

    def finish(self) -> int:
        """Wait for the service's answer: qmail-queue's exit code."""
        try:
            answer = self.sock.recv(1)
        except OSError:
            answer = b""
        finally:
            self.sock.close()
        return answer[0] if answer else LOST

    def fileno(self) -> int:
        return self.sock.fileno()


def pid_of_peer(sock: socket.socket) -> tuple[int, int, int]:
    """(pid, uid, gid) of the process at the other end of a Unix socket."""
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return struct.unpack("3i", creds)


def queue_owner() -> int:
    """The uid that owns ``QMAILHOME/queue`` (qmailq); OSError if it is missing."""
    return os.stat(control.path("queue")).st_uid
