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

    def __init__(self, c: Config, fd: int, addr: tuple) -> None:
        self.c = c
        self.fd = fd
        self.addr = addr
        self.remoteip, self.remoteport = addr[0], addr[1]
        #: an IPv6 connection, as ucspi-tcp6 sees one (an IPv4 one on an IPv6
        #: socket is IPv4 unless -6): PROTO=TCP6 and the TCP6 variables
        self.v6 = False
        self.scope = 0
        if len(addr) > 2:
            ip4 = None if c.flag6 else tcpenv.mapped4(addr[0])
            if ip4 is not None:
                self.remoteip = ip4
            else:
                self.v6 = True
                self.remoteip = tcpenv.ip6_fmt(addr[0])
                self.scope = addr[3]
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
        sock = _socket.socket(c.family, _socket.SOCK_STREAM, 0, self.fd)
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
                name = sock.getsockname()
                self.localip, self.localport = name[0], name[1]
                if len(name) > 2:
                    ip = self.localip
                    self.localip = tcpenv.ip6_fmt(ip) if self.v6 else tcpenv.mapped4(ip) or ip
            except OSError as e:
                self.error = Die(111, DROP + "unable to get local address: " + exc_str(e))
        finally:
            sock.detach()

    def learn(self) -> None:
        """The names of both ends and the remote info, as the options ask."""
        c = self.c
        name, ips = (tcpenv.name6, tcpenv.ip6s) if self.v6 else (tcpenv.name4, tcpenv.ip4s)
        if self.localhost is None:
            self.localhost = name(self.localip) or None
        if c.flagremotehost:
            self.remotehost = name(self.remoteip) or None
            if self.remotehost and c.flagparanoid:
                if self.remoteip not in (ips(self.remotehost) or ()):
                    self.remotehost = None
        if c.flagremoteinfo:
            self.info = remoteinfo(self.remoteip, self.remoteport, self.localip,
                                   self.localport, c.timeout)

    def edits(self) -> list[tuple[str, str | bytes | None]]:
        """The environment edits, in the original's order (ucspi-tcp6's for IPv6)."""
        if self.v6:
            return self.edits6()
        return [("PROTO", "TCP"), ("TCPLOCALIP", self.localip),
                ("TCPLOCALPORT", str(self.localport)), ("TCPLOCALHOST", self.localhost),
                ("TCPREMOTEIP", self.remoteip), ("TCPREMOTEPORT", str(self.remoteport)),
                ("TCPREMOTEHOST", self.remotehost), ("TCPREMOTEINFO", self.info),
                *self.ruled]

    def edits6(self) -> list[tuple[str, str | bytes | None]]:
        """ucspi-tcp6's: PROTO=TCP6, each variable followed by its TCP6 twin,
        TCP6INTERFACE (only) for a scoped (link-local) address."""
        out: list[tuple[str, str | bytes | None]] = [("PROTO", "TCP6")]
        for name, value in (("LOCALIP", self.localip), ("LOCALPORT", str(self.localport)),
                            ("LOCALHOST", self.localhost)):
            out += [("TCP" + name, value), ("TCP6" + name, value)]
        if self.scope:
            try:
                out.append(("TCP6INTERFACE", _socket.if_indextoname(self.scope)))
            except OSError:
                pass
        for name, value in (("REMOTEIP", self.remoteip), ("REMOTEPORT", str(self.remoteport)),
                            ("REMOTEHOST", self.remotehost), ("REMOTEINFO", self.info)):
            out += [("TCP" + name, value), ("TCP6" + name, value)]
        return out + self.ruled

    def line(self, pid: int, deny: bool) -> str:
        """The ok (or deny) line of -v (ucspi-tcp6 prints IPv6 addresses as they are)."""
        if self.v6:
            return (f"tcpserver: {'deny' if deny else 'ok'} {pid} {safe(self.localhost)}:"
                    f"{self.localip}:{self.localport} {safe(self.remotehost)}:"
                    f"{self.remoteip}:{safe(self.info)}:{self.remoteport}\n")
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
