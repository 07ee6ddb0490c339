"""A scripted SMTP server for the tests: a fake remote mail exchanger.

It listens on a loopback address in threads and answers each stage from a
script: ``greeting``, ``helo``, ``mail``, ``rcpt`` (bytes, or a function of
the address), ``data`` and ``end`` (after the message).  A reply of
:data:`HANG` stops answering until the client goes away, :data:`CLOSE` drops
the connection.  Every session's commands and the message bytes as received
(dot-stuffed, CRLF, up to and including the final dot line) are recorded.
"""
from __future__ import annotations

import socketserver
import threading
from dataclasses import dataclass, field

HANG = object()
CLOSE = object()

DEFAULT = {
    "greeting": b"220 sink.test ESMTP\r\n",
    "helo": b"250 sink.test\r\n",
    "mail": b"250 ok\r\n",
    "rcpt": b"250 ok\r\n",
    "data": b"354 go ahead\r\n",
    "end": b"250 ok 1234567890 qp 4242\r\n",
    "quit": b"221 sink.test\r\n",
}


@dataclass
class Session:
    commands: list[bytes] = field(default_factory=list)
    data: bytes = b""
    done: threading.Event = field(default_factory=threading.Event)


class Sink:
    def __init__(self, ip: str = "127.0.0.1", port: int = 0, **script) -> None:
        self.script = {**DEFAULT, **script}
        self.sessions: list[Session] = []
        self.stopping = threading.Event()
        sink = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                sink.serve(self.rfile, self.wfile)

        class Server(socketserver.ThreadingTCPServer):
            allow_reuse_address = True
            daemon_threads = True

        self.server = Server((ip, port), Handler)
        self.ip, self.port = self.server.server_address
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.stopping.set()
        self.server.shutdown()
        self.server.server_close()

    def _say(self, wfile, stage: str, arg: bytes = b"") -> bytes | None:
        """Send the reply for ``stage``; None if the connection is to end."""
        reply = self.script[stage]
        if callable(reply):
            reply = reply(arg)
        if reply is CLOSE:
            return None
        if reply is HANG:
            self.stopping.wait(30)
            return None
        wfile.write(reply)
        wfile.flush()
        return reply

    def serve(self, rfile, wfile) -> None:
        s = Session()
        self.sessions.append(s)
        try:
            self._dialogue(s, rfile, wfile)
        except OSError:
            pass
        finally:
            s.done.set()

    def _dialogue(self, s: Session, rfile, wfile) -> None:
        if self._say(wfile, "greeting") is None:
            return
        while True:
            line = rfile.readline()
            if not line:
                return
            s.commands.append(line)
            verb = line[:4].upper()
            if verb == b"HELO":
                stage, arg = "helo", line[5:].strip()
            elif verb == b"MAIL":
                stage, arg = "mail", line[10:].strip()
            elif verb == b"RCPT":
                stage, arg = "rcpt", line[8:].strip()
            elif verb == b"DATA":
                reply = self._say(wfile, "data")
                if reply is None:
                    return
                if not reply.startswith(b"3"):
                    continue
                chunks = []
                while True:
                    raw = rfile.readline()
                    if not raw:
                        s.data = b"".join(chunks)
                        return
                    chunks.append(raw)
                    if raw == b".\r\n":
                        break
                s.data = b"".join(chunks)
                stage, arg = "end", b""
            elif verb == b"QUIT":
                self._say(wfile, "quit")
                return
            else:
                wfile.write(b"502 unimplemented\r\n")
                wfile.flush()
                continue
            if self._say(wfile, stage, arg) is None:
                return
