"""tcpclient: connect to a TCP server and run a program with the connection.

Usage: ``tcpclient [ -hHrRdDqQv ] [ -i localip ] [ -p localport ] [ -T timeoutconn ]
[ -l localname ] [ -t timeoutinfo ] host port program``.

As ucspi-tcp 0.88's: it tries each address of ``host`` in turn, waiting x
seconds for each (``-T x+y``, default 2+58), then once more, y seconds each,
those that timed out (one address gets x+y at once); it runs the program with
descriptor 6 reading from the network and 7 writing to it, and PROTO,
TCPLOCALPORT/IP/HOST, TCPREMOTEPORT/IP/HOST/INFO in its environment (a name
the DNS has not is set empty; one it could not be asked about is removed).
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
        opts, rest = sgetopt(argv, "dDvqQhHrRi:p:t:T:l:")
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
        elif o == "i":
            ip = ip4_scan(v)
            if ip is None:
                raise Die(100, USAGE)
            c.iplocal = ip
        elif o == "p": c.portlocal = scan_ulong(v)[0] & 0xFFFF
    return c, rest


def timeoutconn(s: socket.socket, ip: str, port: int, timeout: float) -> int:
    """Connect the non-blocking ``s`` within ``timeout`` seconds, then make it
    blocking; 0, or the errno of the failure (ETIMEDOUT for the deadline)."""
    err = s.connect_ex((ip, port))
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
            try:
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                s.setblocking(False)
            except OSError as e:
                die(111, FATAL, "unable to create socket: ", exc=e)
            try:
                s.bind((c.iplocal, c.portlocal))
            except OSError as e:
                s.close()
                die(111, FATAL, "unable to bind socket: ", exc=e)
            err = timeoutconn(s, ip, port, timeout)
            if not err:
                return s
            s.close()
            if timeout == first and second and err == errno.ETIMEDOUT:
                retry.append(ip)
            elif c.verbosity:
                write2(f"{CONNECT}{ip} port {port}: {error_str(err)}\n")
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
    s = connect(c, tcpenv.host_ip4s(host, FATAL), port)
    if s is None:
        return 111
    if not c.flagdelay:
        try:
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
    try:
        localip, localport = s.getsockname()
    except OSError as e:
        die(111, FATAL, "unable to get local address: ", exc=e)
    localhost = c.forcelocal if c.forcelocal is not None else tcpenv.name4(localip)
    try:
        remoteip, remoteport = s.getpeername()
    except OSError as e:
        die(111, FATAL, "unable to get remote address: ", exc=e)
    if c.verbosity >= 2:
        write2(f"tcpclient: connected to {remoteip} port {remoteport}\n")
    remotehost = tcpenv.name4(remoteip) if c.flagremotehost else None
    info = None
    if c.flagremoteinfo:
        from tcpserver.remoteinfo import remoteinfo

        info = remoteinfo(remoteip, remoteport, localip, localport, c.itimeout)
    env = tcpenv.environment([
        ("PROTO", "TCP"), ("TCPLOCALPORT", str(localport)), ("TCPLOCALIP", localip),
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
