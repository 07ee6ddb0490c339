"""What tcpserver and tcpclient share: the host and port arguments, the DNS
names of the two ends, and the TCP environment handed to the program.

As ucspi-tcp 0.88, which gets these from djb's library: ``dns_ip4_qualify``
for the host argument (a dotted quad is taken as it is, without asking the
DNS), ``getservbyname`` for a port that is not a number, ``dns_name4`` for
names, and ``pathexec_env`` for the environment, whose order a program can
see: a replaced or removed variable's slot goes to the last one, and new
variables go at the end.
"""
from __future__ import annotations

import os
import socket

from pyqmail import dnsq, pathexec
from pyqmail.scan import scan_ulong
from pyqmail.strerr import die


def port_number(arg: str, fatal: str) -> int:
    """The port ``arg`` names: all digits (even none: port 0) or a tcp service."""
    value, n = scan_ulong(arg)
    if n == len(arg):
        return value & 0xFFFF
    try:
        return socket.getservbyname(arg, "tcp")
    except OSError:
        die(111, fatal, "unable to figure out port number for ", arg)


def _dotted(host: str) -> list[str] | None:
    """djb's dns_ip4 on a name of digits, dots and brackets: the address bytes
    it spells (a number wraps at 256; only whole groups of four count), else None."""
    if not all(c in "0123456789.[]" for c in host):
        return None
    out = []
    code = 0
    for ch in host + ".":
        if ch in "[]":
            continue
        if ch == ".":
            out.append(code)
            code = 0
        else:
            code = (code * 10 + ord(ch) - 48) & 255
    out = out[:len(out) & ~3]
    return [".".join(map(str, out[i:i + 4])) for i in range(0, len(out), 4)]


def host_ip4s(host: str, fatal: str) -> list[str]:
    """The IPv4 addresses of the host argument, or die as the originals do."""
    addrs = _dotted(host)
    if addrs is None:
        try:
            addrs = dnsq.ip4(host)
        except dnsq.TempError:
            die(111, fatal, "temporarily unable to figure out IP address for ", host,
                ": temporary failure")
    if not addrs:
        die(111, fatal, "no IP address for ", host)
    return addrs


def is_ip6(host: str) -> bool:
    """True for an IPv6 address argument (as ucspi-tcp6, anything with a colon)."""
    return ":" in host


def ip6_fmt(ip: str) -> str:
    """An IPv6 address as ucspi-tcp6 prints it: compressed, a mapped IPv4
    address as ``::ffff:a.b.c.d``, no ``%scope``."""
    ip = ip.split("%", 1)[0]
    return socket.inet_ntop(socket.AF_INET6, socket.inet_pton(socket.AF_INET6, ip))


def host_ip6s(host: str, fatal: str) -> list[str]:
    """The IPv6 address of an IPv6 address argument, or die as ucspi-tcp6 does."""
    try:
        return [ip6_fmt(host)]
    except (OSError, ValueError):
        die(111, fatal, "no IP address for ", host)


def mapped4(ip: str) -> str | None:
    """The IPv4 address of an IPv4-mapped IPv6 address, else None."""
    if ip.startswith("::ffff:") and "." in ip:
        return ip[7:]
    return None


def name6(ip: str) -> str | None:
    """dns_name6: the PTR name of ``ip`` ("" when it has none), None on a DNS failure."""
    try:
        return dnsq.name6(ip) or ""
    except dnsq.TempError:
        return None


def ip6s(name: str) -> list[str] | None:
    """The IPv6 addresses of a name found by :func:`name6`; None on a DNS failure."""
    try:
        return [ip6_fmt(a) for a in dnsq.ip6(name)]
    except dnsq.TempError:
        return None


def name4(ip: str) -> str | None:
    """dns_name4: the PTR name of ``ip`` ("" when it has none), None on a DNS failure."""
    try:
        return dnsq.name4(ip) or ""
    except dnsq.TempError:
        return None


def ip4s(name: str) -> list[str] | None:
    """dns_ip4 of a name found by :func:`name4`; None on a DNS failure."""
    try:
        return dnsq.ip4(name)
    except dnsq.TempError:
        return None


def prepare_dns() -> None:
    """Load and configure everything a lookup needs, once, before forking and
    before giving up root: a child must not import (its uid may not be able
    to read the interpreter's library) nor pay for imports per connection."""
    import dns.message
    import dns.rdataclass
    import dns.rdatatype
    import dns.rdata
    import dns.resolver  # noqa: F401

    dnsq.resolver()
    for rdtype in ("A", "AAAA", "PTR", "CNAME", "SOA", "NS", "OPT"):
        dns.rdata.get_rdata_class(dns.rdataclass.IN, dns.rdatatype.from_text(rdtype))
    dns.message.make_query("example.", "A").to_wire()


#: the environment tcpserver was given, as it was before forking (see :func:`remember`)
_given: dict[bytes, bytes] = {}


def remember() -> None:
    """Note the environment as it is now: it stays so in a long-running parent."""
    global _given
    _given = dict(os.environb)


def _name(name: str | bytes) -> bytes:
    return name if isinstance(name, bytes) else name.encode("utf-8", "surrogateescape")


def _new_names(names: list[bytes]) -> bool:
    """True if no name is in the remembered environment and none comes twice:
    then pathexec only appends the settings, in their order."""
    return bool(_given) and _given.keys().isdisjoint(names) and len(set(names)) == len(names)


def environment(edits: list) -> dict[bytes, bytes]:
    """The environment after ``edits``, (name, value) pairs of str or bytes
    where a value of None removes the name, in the order pathexec gives it."""
    names = [_name(name) for name, _ in edits]
    if _new_names(names):
        env = _given.copy()
        for name, (_, value) in zip(names, edits):
            if value is not None:
                env[name] = _name(value)
        return env
    return pathexec.environ_with(
        [name if value is None else name + b"=" + _name(value)
         for name, (_, value) in zip(names, edits)])


def put(edits: list) -> dict[bytes, bytes] | None:
    """Give this process the environment ``edits`` make of the remembered one.

    When every name is new (the usual case: no TCP variables in tcpserver's
    own environment, rules setting names of their own), setting them in
    ``os.environ`` appends them as pathexec would: that is done, and None
    returned.  Otherwise ``os.environ`` is left alone and the whole
    environment is returned, in pathexec's order.  (Cheap on purpose: it runs
    in each forked child, where every object touched costs a page copy.)
    """
    names = [_name(name) for name, _ in edits]
    if _new_names(names):
        environ = os.environb
        for name, (_, value) in zip(names, edits):
            if value is not None:
                environ[name] = _name(value)
        return None
    return environment(edits)
