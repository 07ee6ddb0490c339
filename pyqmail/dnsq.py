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


def ip4(name: str) -> list[str]:
    """The IPv4 addresses of ``name`` (``localhost`` is 127.0.0.1, as djb's dns_ip4)."""
    if name.rstrip(".").lower() == "localhost":
        return ["127.0.0.1"]
    return [rr.address for rr in _answer(name if name.endswith(".") else name + ".", "A")]


def txt(name: str) -> list[bytes]:
    """The TXT strings of ``name``, each record's strings joined."""
    return [b"".join(rr.strings) for rr in _answer(name, "TXT")]
