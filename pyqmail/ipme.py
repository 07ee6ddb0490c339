"""The IPv4 addresses of this host, as qmail's ipme.c finds them.

0.0.0.0 always counts as ours (RFC 1122 "this host"), then the address of
every interface that is up.  qmail-remote uses the list to avoid sending
mail to itself.
"""
from __future__ import annotations

import socket

_cache: set[str] | None = None


def addresses() -> set[str]:
    """Our addresses as dotted quads (computed once).  Raises OSError."""
    global _cache
    if _cache is None:
        import psutil

        ips = {"0.0.0.0"}
        stats = psutil.net_if_stats()
        for name, addrs in psutil.net_if_addrs().items():
            st = stats.get(name)
            if st is not None and not st.isup:
                continue
            ips.update(a.address for a in addrs if a.family == socket.AF_INET)
        _cache = ips
    return _cache


def is_me(ip: str) -> bool:
    """True if ``ip`` is one of this host's addresses."""
    return ip in addresses()
