"""tcpserver's rules: which CDB key a connection matches, and what the rule says.

Shared by tcpserver (``-x rules.cdb``) and tcprulescheck, so both follow the
same order, that of ucspi-tcp 0.88's rules.c:

1. ``$TCPREMOTEINFO@$TCPREMOTEIP`` and ``$TCPREMOTEINFO@=$TCPREMOTEHOST``;
2. ``$TCPREMOTEIP``, then ``=$TCPREMOTEHOST``;
3. shorter and shorter prefixes of the address ending in ``.`` (and, for an
   IPv6 address, as the IPv6 patch of ucspi-tcp does, in ``:``);
4. ``=`` + shorter and shorter suffixes of the host starting with ``.``,
   then ``=`` alone (only when the host is known);
5. the empty key.

A rule's data, as tcprules writes it, is a list of NUL-terminated entries:
``D`` for deny, ``+NAME=value`` for each variable to set.
"""
from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Iterator

    from pyqmail.cdb import Reader


class Rule:
    """What a rule says: ``deny``, and the (name, value) variables to set, in order."""

    __slots__ = ("deny", "env")

    def __init__(self, deny: bool, env: list[tuple[bytes, bytes]]) -> None:
        self.deny = deny
        self.env = env

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Rule) and (self.deny, self.env) == (other.deny, other.env)

    def __repr__(self) -> str:
        return f"Rule(deny={self.deny!r}, env={self.env!r})"


#: the characters that end an address prefix
_PREFIX_ENDS = (ord("."), ord(":"))


def _b(s: str | bytes | None) -> bytes | None:
    return s if s is None or isinstance(s, bytes) else os.fsencode(s)


def candidates(ip: str | bytes, info: str | bytes | None = None,
               host: str | bytes | None = None) -> Iterator[bytes]:
    """The keys tcpserver tries for a connection, in the order it tries them."""
    ip, info, host = _b(ip), _b(info), _b(host)
    if info is not None:
        yield info + b"@" + ip
        if host is not None:
            yield info + b"@=" + host
    yield ip
    if host is not None:
        yield b"=" + host
    for n in range(len(ip), 0, -1):
        if ip[n - 1] in _PREFIX_ENDS:
            yield ip[:n]
    if host is not None:
        for i, c in enumerate(host):
            if c == 0x2E:  # '.'
                yield b"=" + host[i:]
        yield b"="
    yield b""


def match(reader: Reader, ip: str | bytes, info: str | bytes | None = None,
          host: str | bytes | None = None) -> tuple[bytes, bytes] | None:
    """The first rule (key, data) for the connection, or None if no rule applies.

    Raises what the reader raises (``OSError``, ``cdb.FormatError``).
    """
    for key in candidates(ip, info, host):
        data = reader.find(key)
        if data is not None:
            return key, data
    return None


def lookup(reader: Reader, ip: str | bytes, info: str | bytes | None = None,
           host: str | bytes | None = None) -> bytes | None:
    """The data of the first rule for the connection, or None if no rule applies."""
    found = match(reader, ip, info, host)
    return None if found is None else found[1]


def parse(data: bytes) -> Rule:
    """What tcpserver does with a rule's data: deny or not, and the variables to set.

    Only NUL-terminated entries count; an entry ``+NAME=value`` sets NAME
    (the name ends at the first ``=``), and one without ``=`` is ignored.
    """
    deny = False
    env = []
    for entry in data.split(b"\0")[:-1]:
        if entry[:1] == b"D":
            deny = True
        elif entry[:1] == b"+":
            name, eq, value = entry[1:].partition(b"=")
            if eq:
                env.append((name, value))
    return Rule(deny, env)
