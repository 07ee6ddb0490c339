"""STARTTLS for qmail-smtpd (RFC 3207), as Frederik Vermeulen's qmail-tls patch
does it, with the stdlib ``ssl`` module (imported only when a client asks).

STARTTLS is offered when ``control/servercert.pem`` (certificate chain and
private key in one PEM file) exists and descriptors 0 and 1 are one socket,
as under tcpserver; on pipes it is not.  ``STARTTLS`` gets ``220 ready for
tls`` and the handshake on a socket made from descriptor 0; input the client
sent in the clear after the command is thrown away.  Then the session starts
over: HELO, MAIL, RCPT and AUTH are forgotten, STARTTLS is no longer offered,
and the ``Received:`` line says ``with ESMTPS (CIPHER encrypted)``.  A
handshake that fails or times out ends the session (exit 1), as with the patch.
"""
from __future__ import annotations

import os
import stat

from mta import smtpd_replies as R
from pyqmail import control
from pyqmail.timeoutio import READSIZE, Closed, Conn, Timeout

TYPE_CHECKING = False
if TYPE_CHECKING:
    import ssl

CERT = ("control", "servercert.pem")


def possible(rfd: int = 0, wfd: int = 1) -> bool:
    """Whether STARTTLS can be offered: a certificate, and ``rfd``/``wfd`` one socket."""
    try:
        r, w = os.fstat(rfd), os.fstat(wfd)
    except OSError:
        return False
    if not stat.S_ISSOCK(r.st_mode) or (r.st_dev, r.st_ino) != (w.st_dev, w.st_ino):
        return False
    return os.path.exists(control.path(*CERT))


class TLSConn(Conn):
    """:class:`~pyqmail.timeoutio.Conn` over a TLS socket: same buffering and timeouts."""

    def __init__(self, sock: ssl.SSLSocket, timeout: float) -> None:
        super().__init__(timeout, -1, -1)
        self.sock = sock

    def flush(self) -> None:
        if not self._out:
            return
        data = b"".join(self._out)
        self._out.clear()
        self._outlen = 0  # what the base class counts, if it does
        try:
            self.sock.settimeout(self.timeout)
            self.sock.sendall(data)
        except OSError:  # ssl.SSLError and TimeoutError are OSErrors too
            raise Closed from None

    def read(self) -> bytes:
        self.flush()
        try:
            self.sock.settimeout(self.timeout)
            data = self.sock.recv(READSIZE)
        except TimeoutError:
            raise Timeout from None
        except OSError:
            raise Closed from None
        if not data:
            raise Closed
        return data


def starttls(s, arg: bytes) -> None:
    """The STARTTLS command of the session ``s`` (a :class:`mta.qmail_smtpd.Session`)."""
    if s.tls is not None:
        s.out(R.TLS_ACTIVE)
        return
    if arg:
        s.out(R.TLS_PARAMS)
        return
    if s.seenmail:
        s.out(R.TLS_IN_MAIL)
        return
    import socket
    import ssl

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        ctx.load_cert_chain(control.path(*CERT))
    except OSError as e:  # ssl.SSLError included
        why = getattr(e, "reason", None) or e.strerror or str(e)
        s.out(R.TLS_FAILED % (b"missing certificate", os.fsencode(str(why))))
        return
    s.out(R.TLS_READY)
    conn = s.conn
    conn.flush()
    conn.take()  # nothing sent in the clear after STARTTLS may count (CVE-2011-0411)
    raw = socket.socket(fileno=os.dup(0))
    raw.settimeout(conn.timeout)
    try:
        sock = ctx.wrap_socket(raw, server_side=True)
    except OSError:
        raw.close()
        raise Closed from None  # qmail-tls: die_read(), exit 1
    s.conn = TLSConn(sock, conn.timeout)
    cipher = sock.cipher()
    s.tls = b"ESMTPS (" + os.fsencode(cipher[0] if cipher else "unknown") + b" encrypted)"
    # start over: forget HELO, MAIL, RCPT and AUTH (RFC 3207 section 4.2)
    if s.authd:
        s.authd = False
        s.relayclient, s.remoteinfo = s.c.relayclient, s.c.remoteinfo
        if s.remoteinfo is None:
            os.environb.pop(b"TCPREMOTEINFO", None)
        else:
            os.environb[b"TCPREMOTEINFO"] = s.remoteinfo
    s.seenmail = False
    s.rcptto = []
    s.dohelo(s.c.remotehost)
