"""qmail-smtpd's envelope addresses: addrparse, rcpthosts and badmailfrom.

As qmail 1.03's qmail-smtpd.c and rcpthosts.c:

- :func:`addrparse` takes what follows ``MAIL``/``RCPT``: the text inside
  ``<...>`` if there is a ``<``, else the word after the first colon (for
  partners who never read RFC 821); a source route (``@a,@b:``) is dropped,
  quotes are removed and a backslash takes the next character as it is.
  With ``localiphost``, ``box@[ip]`` for one of this host's addresses
  becomes ``box@localiphost``.  Longer than 899 characters is a syntax error.
- :class:`RcptHosts` allows a recipient whose domain (after its last ``@``),
  or the domain from one of its dots on, is a line of ``control/rcpthosts``
  or a key of ``control/morercpthosts.cdb`` (qmail-newmrh); an address
  without ``@`` is allowed; without ``control/rcpthosts`` everything is.
- :class:`BadMailFrom` matches the whole sender or its ``@domain``.

Comparisons ignore ASCII case, as qmail's constmap.  Trouble reading the
files raises OSError (qmail-smtpd's "unable to read controls").
"""
from __future__ import annotations

import os

from pyqmail import control
from pyqmail.scan import scan_ulong

MAXADDR = 899


def addrparse(arg: bytes, liphost: bytes | None = None) -> bytes | None:
    """The address in a MAIL or RCPT argument, None if it is too long.

    OSError if the local addresses are needed and cannot be found.
    """
    i = arg.find(b"<")
    if i >= 0:
        terminator = 0x3E  # '>'
        arg = arg[i + 1:]
    else:  # partner should go read rfc 821
        terminator = 0x20
        i = arg.find(b":")
        arg = arg[i + 1:] if i >= 0 else b""
        arg = arg.lstrip(b" ")
    if arg[:1] == b"@":  # strip source route
        i = arg.find(b":")
        arg = arg[i + 1:] if i >= 0 else b""
    addr = bytearray()
    flagesc = flagquoted = False
    for ch in arg:
        if flagesc:
            addr.append(ch)
            flagesc = False
        elif not flagquoted and ch == terminator:
            break
        elif ch == 0x5C:  # backslash
            flagesc = True
        elif ch == 0x22:  # double quote
            flagquoted = not flagquoted
        else:
            addr.append(ch)
    if liphost is not None:
        addr = bytearray(localip(bytes(addr), liphost))
    if len(addr) > MAXADDR:
        return None
    return bytes(addr)


def localip(addr: bytes, liphost: bytes) -> bytes:
    """``box@[ip]`` as ``box@liphost`` when ip is one of ours, else ``addr``."""
    i = addr.rfind(b"@")
    if i < 0 or addr[i + 1:i + 2] != b"[":
        return addr
    ip = scanbracket(addr[i + 1:])
    if ip is None:
        return addr
    from pyqmail import ipme

    return addr[:i + 1] + liphost if ipme.is_me(ip) else addr


def scanbracket(s: bytes) -> str | None:
    """The address of ``[a.b.c.d]`` filling all of ``s`` (ip_scanbracket), or None.

    Each number is taken modulo 256, as ip_scan stores it in a byte.
    """
    if s[:1] != b"[" or s[-1:] != b"]":
        return None
    s = s[1:-1]
    parts = []
    pos = 0
    for k in range(4):
        if k:
            if s[pos:pos + 1] != b".":
                return None
            pos += 1
        value, n = scan_ulong(s[pos:])
        if not n:
            return None
        parts.append(str(value & 255))
        pos += n
    return ".".join(parts) if pos == len(s) else None


def suffixes(host: bytes) -> list[bytes]:
    """``host`` and each of its tails starting at a dot, longest first."""
    return [host] + [host[j:] for j in range(1, len(host)) if host[j] == 0x2E]


class RcptHosts:
    """control/rcpthosts and control/morercpthosts.cdb (rcpthosts_init)."""

    def __init__(self) -> None:
        lines = control.filelines(control.path("control", "rcpthosts"))
        self.active = lines is not None
        self.hosts = {line.lower() for line in lines or ()}
        self.fdmrh = -1
        if self.active:
            try:
                self.fdmrh = os.open(control.path("control", "morercpthosts.cdb"),
                                     os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
            except FileNotFoundError:
                pass

    def allowed(self, addr: bytes) -> bool:
        """Whether mail to ``addr`` may be accepted without RELAYCLIENT."""
        if not self.active:
            return True
        j = addr.rfind(b"@")
        if j < 0:  # presumably envnoathost is acceptable
            return True
        tails = suffixes(addr[j + 1:].lower()) if j + 1 < len(addr) else []
        if any(t in self.hosts for t in tails):
            return True
        if self.fdmrh >= 0 and tails:
            from pyqmail import cdb

            with cdb.Reader(self.fdmrh) as more:
                return any(t in more for t in tails)
        return False


class BadMailFrom:
    """control/badmailfrom: senders refused at RCPT time."""

    def __init__(self) -> None:
        lines = control.filelines(control.path("control", "badmailfrom"))
        self.entries = {line.lower() for line in lines or ()}

    def __contains__(self, addr: bytes) -> bool:
        if not self.entries:
            return False
        addr = addr.lower()
        if addr in self.entries:
            return True
        j = addr.rfind(b"@")
        return j >= 0 and addr[j:] in self.entries
