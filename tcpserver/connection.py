"""What tcpserver learns and decides about one connection, as the original's child.

:meth:`Connection.doit` is that child's ``doit()``: the ``pid`` line, socket
options, the banner, the local address, the names of both ends (``-h``,
``-p``, ``-l``), the remote info (``-r``), the rules (``-x``), the ``ok`` or
``deny`` line, and the environment edits in the original's order.  Its steps
are separate so that the parent can take those that cannot block when it
starts a program itself.
"""
from __future__ import annotations

import _socket
import os

from pyqmail import cdb
from pyqmail.errstr import exc_str
from pyqmail.strerr import Die, die, write2
from tcpserver import rules, tcpenv
from tcpserver.remoteinfo import remoteinfo

TYPE_CHECKING = False
if TYPE_CHECKING:
    from tcpserver.tcpserver import Config

DROP = "tcpserver: warning: dropping connection, "


def safe(s: str | bytes | None) -> str:
    """A field of the ok/deny line as the original prints it: at most 100 bytes,
    blanks, controls, non-ASCII, ``%`` and ``:`` as ``?``, ``...`` if cut."""
    if s is None:
        return ""
    b = s if isinstance(s, bytes) else s.encode("utf-8", "surrogateescape")
    out = "".join("?" if ch < 33 or ch > 126 or ch in (37, 58) else chr(ch) for ch in b[:100])
    return out + "..." if len(b) >= 100 else out


class Connection:
    """What tcpserver learns and decides about one connection, as the
    original's child does it (:meth:`doit`), in steps the parent can take too."""

    def __init__(self, c: Config, fd: int, addr: tuple[str, int]) -> None:
        self.c = c
        self.fd = fd
        self.remoteip, self.remoteport = addr
        self.localip = ""
        self.localport = 0
        self.localhost = c.localhost
        self.remotehost: str | None = None
        self.info: bytes | None = None
        self.ruled: list[tuple[bytes, bytes]] = []
        self.prepared = False
        self.error: Die | None = None  # from prepare(), for the child to report

    def doit(self) -> list[tuple[str, str | bytes | None]]:
        """In the child: all of it, logged; exits 100 if a rule denies; the
        environment edits."""
        c = self.c
        pid = os.getpid()
        if c.verbosity >= 2:
            write2(f"tcpserver: pid {pid} from {self.remoteip}\n")
        if not self.prepared:
            self.prepare()
        if self.error is not None:
            raise self.error
        self.learn()
        deny = self.rules()
        if c.verbosity >= 2:
            write2(self.line(pid, deny))
        if deny:
            os._exit(100)
        return self.edits()

    def prepare(self) -> None:
        """Socket options, the banner, the local address: what the original's
        child does first (the parent does it before spawning: a short banner
        cannot block on a new socket).  A failure is kept in :attr:`error`."""
        c = self.c
        self.prepared = True
        sock = _socket.socket(_socket.AF_INET, _socket.SOCK_STREAM, 0, self.fd)
        try:
            if c.flagkillopts:
                try:
                    sock.setsockopt(_socket.IPPROTO_IP, _socket.IP_OPTIONS, b"")
                except OSError:
                    pass
            if not c.flagdelay:
                try:
                    sock.setsockopt(_socket.IPPROTO_TCP, _socket.TCP_NODELAY, 1)
                except OSError:
                    pass
            if c.banner:
                try:
                    sock.sendall(c.banner.encode("utf-8", "surrogateescape"))
                except OSError as e:
                    self.error = Die(111, DROP + "unable to print banner: " + exc_str(e))
                    return
            try:
                self.localip, self.localport = sock.getsockname()
            except OSError as e:
                self.error = Die(111, DROP + "unable to get local address: " + exc_str(e))
        finally:
            sock.detach()

    def learn(self) -> None:
        """The names of both ends and the remote info, as the options ask."""
        c = self.c
        if self.localhost is None:
            self.localhost = tcpenv.name4(self.localip) or None
        if c.flagremotehost:
            self.remotehost = tcpenv.name4(self.remoteip) or None
            if self.remotehost and c.flagparanoid:
                if self.remoteip not in (tcpenv.ip4s(self.remotehost) or ()):
                    self.remotehost = None
        if c.flagremoteinfo:
            self.info = remoteinfo(self.remoteip, self.remoteport, self.localip,
                                   self.localport, c.timeout)

    def edits(self) -> list[tuple[str, str | bytes | None]]:
        """The environment edits, in the original's order."""
        return [("PROTO", "TCP"), ("TCPLOCALIP", self.localip),
                ("TCPLOCALPORT", str(self.localport)), ("TCPLOCALHOST", self.localhost),
                ("TCPREMOTEIP", self.remoteip), ("TCPREMOTEPORT", str(self.remoteport)),
                ("TCPREMOTEHOST", self.remotehost), ("TCPREMOTEINFO", self.info),
                *self.ruled]

    def line(self, pid: int, deny: bool) -> str:
        """The ok (or deny) line of -v."""
        return (f"tcpserver: {'deny' if deny else 'ok'} {pid} {safe(self.localhost)}:"
                f"{safe(self.localip)}:{self.localport} {safe(self.remotehost)}:"
                f"{safe(self.remoteip)}:{safe(self.info)}:{self.remoteport}\n")

    def rules(self) -> bool:
        """Look the connection up in the rules CDB, keep its variables; True to deny."""
        fn = self.c.fnrules
        if not fn:
            return False
        try:
            reader = cdb.Reader(fn)
        except OSError as e:
            if isinstance(e, FileNotFoundError) and self.c.flagallownorules:
                return False
            die(111, DROP, "unable to read ", fn, ": ", exc=e)
        try:
            with reader:
                data = rules.lookup(reader, self.remoteip, self.info, self.remotehost)
        except OSError as e:  # cdb.FormatError too, with the C programs' errno
            die(111, DROP, "unable to read ", fn, ": ", exc=e)
        if data is None:
            return False
        rule = rules.parse(data)
        self.ruled = rule.env
        return rule.deny
