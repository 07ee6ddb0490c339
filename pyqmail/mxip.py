"""Where qmail-remote sends mail for a host: smtproutes, MX, A and CNAME, as qmail does.

control/smtproutes may name a relay (and port) for a host, a ``.suffix`` or
every host; otherwise the host's MX records give the exchangers in order of
preference (equal preferences shuffled with qmail's generator), each
exchanger's A records its addresses, and a host without MX records is its own
exchanger.  ``1.2.3.4`` and ``[1.2.3.4]`` are addresses already.  Recipient
domains are made canonical by following CNAMEs, as qmail's dns_cname does
(unless a route applies).  Lookups raise :class:`pyqmail.dnsq.TempError` when
the DNS cannot answer now.
"""
from __future__ import annotations

import os

from pyqmail import dnsq
from pyqmail.quote import quote

PORT_SMTP = 25


def route(host: bytes, routes: list[bytes]) -> tuple[bytes | None, int]:
    """The relay and port control/smtproutes gives for ``host`` (relay None: use MX).

    Keys compare without case; the last line with a key wins; ``host`` is
    tried whole, then each ``.suffix``, then the empty key.
    """
    table: dict[bytes, bytes] = {}
    for line in routes:
        key, colon, relay = line.partition(b":")
        if colon:
            table[key.lower()] = relay
    low = host.lower()
    relay = None
    for i in range(len(low) + 1):
        if i == 0 or i == len(low) or low[i:i + 1] == b".":
            relay = table.get(low[i:])
            if relay is not None:
                break
    if not relay:
        return None, PORT_SMTP
    port = PORT_SMTP
    relay, colon, rest = relay.partition(b":")
    if colon:
        digits = len(rest) - len(rest.lstrip(b"0123456789"))
        port = int(rest[:digits]) if digits else 0
    return relay, port


def canonical(host: bytes) -> tuple[bytes, int]:
    """``host`` after following CNAMEs, and how many steps: qmail's dns_cname.

    The step count is 0 when ``host`` is not an alias.  Raises dnsq.TempError.
    """
    for loop in range(10):
        if not host or host.endswith(b"]"):
            return host, loop
        if host.endswith(b"."):
            host = host[:-1]
            continue
        target = dnsq.cname(os.fsdecode(host))
        if target is None:
            return host, loop
        host = os.fsencode(target)
    return host, -1  # an alias loop: not our problem


def mangle(addr: bytes, follow_cname: bool) -> tuple[bytes, bool]:
    """The address as sent (local part quoted, host canonical) and whether it is an alias."""
    box, at, host = addr.rpartition(b"@")
    if not at:
        return addr, follow_cname
    alias = follow_cname
    if follow_cname:
        host, steps = canonical(host)
        if steps == 0:
            alias = False
    return quote(box) + b"@" + host, alias


def ip_literal(host: str) -> str | None:
    """The address in ``1.2.3.4`` or ``[1.2.3.4]``, None if ``host`` is a name."""
    text = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    parts = text.split(".")
    if len(parts) == 4 and all(p.isdigit() and p.isascii() and int(p) < 256 for p in parts):
        return ".".join(str(int(p)) for p in parts)
    return None


def addresses(host: str) -> list[str] | None:
    """The addresses of ``host`` (an A lookup or a literal); None if it does not exist."""
    lit = ip_literal(host)
    if lit is not None:
        return [lit]
    ips = dnsq.ip4_hard(host)
    return ips or None


def mx_addresses(host: str, random: int) -> tuple[list[tuple[int, str]] | None, bool]:
    """(preference, address) pairs to try for ``host`` and whether a lookup
    failed softly: qmail's dns_mxip.  None: no such host.  Equal preferences
    are shuffled with qmail's generator.
    """
    lit = ip_literal(host)
    if lit is not None:
        return [(0, lit)], False
    mxs = dnsq.mx(host)
    if not mxs:
        ips = addresses(host)
        return (None if ips is None else [(0, ip) for ip in ips]), False
    out: list[tuple[int, str]] = []
    soft = False
    while mxs:
        i, same = 0, 1
        for j in range(1, len(mxs)):
            if mxs[j][0] < mxs[i][0]:
                i, same = j, 1
            elif mxs[j][0] == mxs[i][0]:
                same += 1
                random = (random * 69069 + 1) & 0xFFFFFFFF
                if random // 2 < 2147483647 // same:
                    i = j
        pref, name = mxs.pop(i)
        try:
            ips = addresses(name) if name else None
        except dnsq.TempError:
            soft = True
            continue
        out.extend((pref, ip) for ip in ips or [])
    return out, soft
