"""DNS questions the programs ask, through dnspython (imported only when asked).

The resolver reads /etc/resolv.conf; ``DNSCACHEIP`` (djb's variable) names the
server to ask instead, and ``DNSCACHEPORT`` its port (for tests on loopback).
"""
from __future__ import annotations

import os

_resolver = None


class TempError(Exception):
    """The DNS could not answer now (timeout, server failure)."""


def resolver():
    """The shared dnspython resolver, made on first use."""
    global _resolver
    if _resolver is None:
        import dns.resolver

        ip = os.environ.get("DNSCACHEIP")
        if ip:
            r = dns.resolver.Resolver(configure=False)
            r.nameservers = [ip]
            r.port = int(os.environ.get("DNSCACHEPORT", "53"))
        else:
            try:
                r = dns.resolver.Resolver()
            except dns.resolver.NoResolverConfiguration:
                r = dns.resolver.Resolver(configure=False)
                r.nameservers = ["127.0.0.1"]
        r.lifetime = 30
        _resolver = r
    return _resolver


def _answer(name: str, rdtype: str):
    """The answer's records, [] when the name or the type does not exist."""
    import dns.exception
    import dns.resolver

    try:
        return list(resolver().resolve(name, rdtype, search=False))
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return []
    except (dns.exception.DNSException, OSError, ValueError) as e:
        # ValueError: a DNSCACHEIP that is not an address
        raise TempError(str(e)) from None


def name4(ip: str) -> str | None:
    """The PTR name of IPv4 ``ip`` without the final dot, None if there is none."""
    rev = ".".join(reversed(ip.split("."))) + ".in-addr.arpa."
    for rr in _answer(rev, "PTR"):
        return rr.target.to_text(omit_final_dot=True)
    return None


def name6(ip: str) -> str | None:
    """The PTR name of IPv6 ``ip`` (under ip6.arpa) without the final dot, None if there is none."""
    import socket

    nibbles = socket.inet_pton(socket.AF_INET6, ip).hex()
    for rr in _answer(".".join(reversed(nibbles)) + ".ip6.arpa.", "PTR"):
        return rr.target.to_text(omit_final_dot=True)
    return None


def ip6(name: str) -> list[str]:
    """The IPv6 addresses of ``name`` (its AAAA records; ``localhost`` is ::1)."""
    if name.rstrip(".").lower() == "localhost":
        return ["::1"]
    return [rr.address for rr in _answer(name if name.endswith(".") else name + ".", "AAAA")]


def ip4(name: str) -> list[str]:
    """The IPv4 addresses of ``name`` (``localhost`` is 127.0.0.1, as djb's dns_ip4)."""
    if name.rstrip(".").lower() == "localhost":
        return ["127.0.0.1"]
    return [rr.address for rr in _answer(name if name.endswith(".") else name + ".", "A")]


def txt(name: str) -> list[bytes]:
    """The TXT strings of ``name``, each record's strings joined."""
    return [b"".join(rr.strings) for rr in _answer(name, "TXT")]


def _hard_answer(name: str, rdtype: str):
    """As :func:`_answer`, but a name that cannot be asked (an empty or overlong
    label, bad IDNA) has no records, as the C resolver fails it for good."""
    import dns.name

    try:
        return _answer(name if name.endswith(".") else name + ".", rdtype)
    except TempError:
        try:
            dns.name.from_text(name)
        except Exception:
            return []
        raise


def mx(name: str) -> list[tuple[int, str]]:
    """The MX records of ``name`` as (preference, host) in the order answered;
    [] when there are none or the name does not exist.  A host that is the
    root (a "null MX") comes back as ""."""
    return [(rr.preference, rr.exchange.to_text(omit_final_dot=True).rstrip("."))
            for rr in _hard_answer(name, "MX")]


def cname(name: str) -> str | None:
    """The target of the CNAME record of ``name`` (no final dot), None if it has none."""
    for rr in _hard_answer(name, "CNAME"):
        return rr.target.to_text(omit_final_dot=True)
    return None


def ip4_hard(name: str) -> list[str]:
    """As :func:`ip4`, but a name that cannot be asked has no addresses."""
    if name.rstrip(".").lower() == "localhost":
        return ["127.0.0.1"]
    return [rr.address for rr in _hard_answer(name, "A")]
