"""tcpclient: connect to a TCP server and run a program with the connection.

Usage: ``tcpclient [ -hHrRdDqQv ] [ -i localip ] [ -p localport ] [ -T timeoutconn ]
[ -l localname ] [ -t timeoutinfo ] host port program``.

As ucspi-tcp 0.88's: it tries each address of ``host`` in turn, waiting x
seconds for each (``-T x+y``, default 2+58), then once more, y seconds each,
those that timed out (one address gets x+y at once); it runs the program with
descriptor 6 reading from the network and 7 writing to it, and PROTO,
TCPLOCALPORT/IP/HOST, TCPREMOTEPORT/IP/HOST/INFO in its environment (a name
the DNS has not is set empty; one it could not be asked about is removed).

IPv6 as Debian's ucspi-tcp-ipv6: an IPv6 address as host or ``-i`` connects
over IPv6 and sets PROTO=TCP6 (the other variables as for IPv4; an IPv4
host's addresses mapped when ``-i`` is IPv6 or under ``-6``); ``-4`` keeps to
IPv4 sockets (an IPv6 address's last four bytes, as ucspi-tcp6), ``-I
interface`` scopes a link-local address.  A host
name is still looked up for IPv4 only, ``0`` still means 127.0.0.1 (ucspi-tcp6:
``::1``), and the usage message stays 0.88's.
"""
from __future__ import annotations

import _signal
import errno
import os
import select
import socket
import time

from pyqmail import pathexec
from pyqmail.errstr import error_str
from pyqmail.scan import scan_ulong
from pyqmail.sgetopt import OptError, sgetopt
from pyqmail.strerr import Die, die, run, write2
from tcpserver import tcpenv

FATAL = "tcpclient: fatal: "
CONNECT = "tcpclient: unable to connect to "
USAGE = ("tcpclient: usage: tcpclient [ -hHrRdDqQv ] [ -i localip ] [ -p localport ] "
         "[ -T timeoutconn ] [ -l localname ] [ -t timeoutinfo ] host port program")


class Config:
    """The options, with the original's defaults."""

    verbosity = 1
    flagdelay = True
    flagremoteinfo = True
    flagremotehost = True
    itimeout = 26
    ctimeout = (2, 58)
    iplocal = "0.0.0.0"
    portlocal = 0
    forcelocal: str | None = None
    flag4 = False  # -4: IPv4 only (ucspi-tcp6)
    flag6 = False  # -6: IPv6 even to an IPv4 address, as a mapped one (ucspi-tcp6)
    interface: str | None = None  # -I: the interface of a link-local address


def ip4_scan(s: str) -> str | None:
    """djb's ip4_scan: four dotted numbers at the start of ``s`` (bytes wrap), else None."""
    parts = []
    for i in range(4):
        value, n = scan_ulong(s)
        if not n:
            return None
        parts.append(str(value & 255))
        s = s[n:]
        if i < 3:
            if s[:1] != ".":
                return None
            s = s[1:]
    return ".".join(parts)


def parse(argv: list[str]) -> tuple[Config, list[str]]:
    """The options as tcpclient 0.88 reads them, and the arguments after them."""
    c = Config()
    try:
        opts, rest = sgetopt(argv, "46dDvqQhHrRi:p:t:T:l:I:")
    except OptError:
        raise Die(100, USAGE) from None
    for o, v in opts:
        if o == "d": c.flagdelay = True
        elif o == "D": c.flagdelay = False
        elif o == "v": c.verbosity = 2
        elif o == "q": c.verbosity = 0
        elif o == "Q": c.verbosity = 1
        elif o == "l": c.forcelocal = v
        elif o == "H": c.flagremotehost = False
        elif o == "h": c.flagremotehost = True
        elif o == "R": c.flagremoteinfo = False
        elif o == "r": c.flagremoteinfo = True
        elif o == "t": c.itimeout = scan_ulong(v)[0]
        elif o == "T":
            first, n = scan_ulong(v)
            if v[n:n + 1] == "+":
                n += 1
            c.ctimeout = (first, scan_ulong(v[n:])[0])
        elif o == "4": c.flag4, c.flag6 = True, False
        elif o == "6": c.flag6, c.flag4 = True, False
        elif o == "I": c.interface = v
        elif o == "i" and tcpenv.is_ip6(v):
            try:
                c.iplocal = tcpenv.ip6_fmt(v)
            except (OSError, ValueError):
                raise Die(100, USAGE) from None
        elif o == "i":
            ip = ip4_scan(v)
            if ip is None:
                raise Die(100, USAGE)
            c.iplocal = ip
        elif o == "p": c.portlocal = scan_ulong(v)[0] & 0xFFFF
    return c, rest


def scope_of(c: Config) -> int:
    """The interface index of -I (0 when none or unknown, as ucspi-tcp6)."""
    if c.interface is None:
        return 0
    try:
        return socket.if_nametoindex(c.interface)
    except OSError:
        return 0


def timeoutconn(s: socket.socket, addr: tuple, timeout: float) -> int:
    """Connect the non-blocking ``s`` to ``addr`` within ``timeout`` seconds, then
    make it blocking; 0, or the errno of the failure (ETIMEDOUT for the deadline)."""
    err = s.connect_ex(addr)
    if err not in (0, errno.EINPROGRESS, errno.EAGAIN):
        return err
    if err:
        deadline = time.monotonic() + timeout
        while True:
            try:
                ready = select.select([], [s], [], max(0.0, deadline - time.monotonic()))[1]
            except InterruptedError:
                continue
            if ready:
                break
            if time.monotonic() >= deadline:  # the attempt goes on, as the original's
                return errno.ETIMEDOUT
        err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            return err
    try:
        s.setblocking(True)
    except OSError as e:
        return e.errno or errno.EINVAL
    return 0


def connect(c: Config, addresses: list[str], port: int) -> socket.socket | None:
    """The first address that answers, in the original's two rounds; None if none."""
    first, second = c.ctimeout
    if len(addresses) == 1:
        first, second = first + second, 0
    for timeout in (first, second):
        retry = []
        for ip in addresses:
            v6 = tcpenv.is_ip6(ip) and not c.flag4
            try:
                s = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET, socket.SOCK_STREAM)
                s.setblocking(False)
            except OSError as e:
                die(111, FATAL, "unable to create socket: ", exc=e)
            try:
                if v6:
                    local = c.iplocal
                    if local == "0.0.0.0":
                        local = "::"
                    elif not tcpenv.is_ip6(local):
                        local = "::ffff:" + local
                    s.bind((local, c.portlocal, 0, scope_of(c)))
                elif tcpenv.is_ip6(c.iplocal):
                    raise OSError(errno.EAFNOSUPPORT, "")
                else:
                    s.bind((c.iplocal, c.portlocal))
            except OSError as e:
                s.close()
                die(111, FATAL, "unable to bind socket: ", exc=e)
            if v6:
                target: tuple = (ip, port, 0, scope_of(c))
            elif tcpenv.is_ip6(ip):  # -4: as ucspi-tcp6, an IPv6 address's last four bytes
                target = (socket.inet_ntoa(socket.inet_pton(socket.AF_INET6, ip)[12:]), port)
            else:
                target = (ip, port)
            err = timeoutconn(s, target, timeout)
            if not err:
                return s
            s.close()
            if timeout == first and second and err == errno.ETIMEDOUT:
                retry.append(ip)
            elif c.verbosity:
                write2(f"{CONNECT}{tcpenv.mapped4(ip) or ip} port {port}: {error_str(err)}\n")
        addresses = retry
    return None


def main(argv: list[str]) -> int:
    for fd in (6, 7):
        try:
            os.close(fd)
        except OSError:
            pass
    _signal.signal(_signal.SIGPIPE, _signal.SIG_IGN)
    c, args = parse(argv)
    try:
        return client(c, args)
    except Die as d:
        if c.verbosity:  # -q: not even a usage or a fatal message
            raise
        return d.code


def client(c: Config, args: list[str]) -> int:
    """Everything after the options, in the original's order."""
    if not args:
        raise Die(100, USAGE)
    host = args[0]
    if host in ("", "0"):
        host = "127.0.0.1"
    if len(args) < 2:
        raise Die(100, USAGE)
    port = tcpenv.port_number(args[1], FATAL)
    if len(args) < 3:
        raise Die(100, USAGE)
    if tcpenv.is_ip6(host):
        addresses = tcpenv.host_ip6s(host, FATAL)
    else:
        addresses = tcpenv.host_ip4s(host, FATAL)
        if c.flag6 or (tcpenv.is_ip6(c.iplocal) and not c.flag4):
            addresses = ["::ffff:" + ip for ip in addresses]
    s = connect(c, addresses, port)
    if s is None:
        return 111
    if not c.flagdelay:
        try:
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
    v6 = s.family == socket.AF_INET6
    name = tcpenv.name6 if v6 else tcpenv.name4
    try:
        localip, localport = s.getsockname()[:2]
    except OSError as e:
        die(111, FATAL, "unable to get local address: ", exc=e)
    if v6:
        localip = tcpenv.ip6_fmt(localip)
    localhost = c.forcelocal if c.forcelocal is not None else name(localip)
    try:
        remoteip, remoteport = s.getpeername()[:2]
    except OSError as e:
        die(111, FATAL, "unable to get remote address: ", exc=e)
    if v6:
        remoteip = tcpenv.ip6_fmt(remoteip)
    if c.verbosity >= 2:
        write2(f"tcpclient: connected to {remoteip} port {remoteport}\n")
    remotehost = name(remoteip) if c.flagremotehost else None
    info = None
    if c.flagremoteinfo:
        from tcpserver.remoteinfo import remoteinfo

        info = remoteinfo(remoteip, remoteport, localip, localport, c.itimeout)
    env = tcpenv.environment([
        ("PROTO", "TCP6" if v6 else "TCP"), ("TCPLOCALPORT", str(localport)), ("TCPLOCALIP", localip),
        ("TCPLOCALHOST", localhost), ("TCPREMOTEPORT", str(remoteport)),
        ("TCPREMOTEIP", remoteip), ("TCPREMOTEHOST", remotehost), ("TCPREMOTEINFO", info)])
    fd = s.detach()
    try:
        if fd != 6:
            os.dup2(fd, 6)
            os.close(fd)
        else:
            os.set_inheritable(6, True)
    except OSError as e:
        die(111, FATAL, "unable to set up descriptor 6: ", exc=e)
    try:
        os.dup2(6, 7)
    except OSError as e:
        die(111, FATAL, "unable to set up descriptor 7: ", exc=e)
    _signal.signal(_signal.SIGPIPE, _signal.SIG_DFL)
    pathexec.chain(FATAL, args[2:], env)


def cli() -> None:
    run(main)


if __name__ == "__main__":
    cli()
