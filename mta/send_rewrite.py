"""qmail-send's controls and its recipient rewriting (locals, virtualdomains,
percenthack), and the sender it gives each delivery."""
from __future__ import annotations

from pyqmail import control


class ConstMap:
    """constmap: a case-insensitive set of keys, or of ``key:value`` pairs."""

    def __init__(self, lines: list[str], colon: bool) -> None:
        self.map: dict[bytes, bytes] = {}
        for line in lines:
            raw = line.encode("utf-8", "surrogateescape")
            if colon:
                key, sep, value = raw.partition(b":")
                if not sep:
                    continue
            else:
                key, value = raw, b""
            self.map[key.lower()] = value  # a later line wins, as in constmap

    def get(self, key: bytes) -> bytes | None:
        return self.map.get(key.lower())


class Controls:
    """What qmail-send reads from control/ at start (getcontrols)."""

    def __init__(self) -> None:
        def rldef(name: str, flagme: bool, default: str) -> bytes:
            value = control.readline(name, default, flagme=flagme)
            return (value if value is not None else default).encode("utf-8", "surrogateescape")

        self.lifetime = control.readint("queuelifetime", 604800)
        self.concurrency = [control.readint("concurrencylocal", 10),
                            control.readint("concurrencyremote", 20)]
        self.envnoathost = rldef("envnoathost", True, "envnoathost")
        self.bouncefrom = rldef("bouncefrom", False, "MAILER-DAEMON")
        self.bouncehost = rldef("bouncehost", True, "bouncehost")
        self.doublebouncehost = rldef("doublebouncehost", True, "doublebouncehost")
        self.doublebounceto = (rldef("doublebounceto", False, "postmaster") + b"@"
                               + self.doublebouncehost)
        self.percenthack = ConstMap(control.readlines("percenthack"), False)
        self.reread()

    def reread(self) -> None:
        """locals and virtualdomains (read again on SIGHUP); OSError leaves the old ones."""
        locals_ = ConstMap(control.readlines("locals", flagme=True), False)
        vdoms = ConstMap(control.readlines("virtualdomains"), True)
        self.locals, self.vdoms = locals_, vdoms

    def rewrite(self, recip: bytes) -> tuple[int, bytes]:
        """(channel, address): 0 local, 1 remote; the address as queued in local/remote."""
        addr = recip
        i = addr.rfind(b"@")
        if i < 0:
            addr = addr + b"@" + self.envnoathost
            i = len(recip)
        while self.percenthack.get(addr[i + 1:]) is not None:
            j = addr.rfind(b"%", 0, i)
            if j < 0:
                break
            addr = addr[:j] + b"@" + addr[j + 1:i]
            i = j
        at = addr.rfind(b"@")
        if self.locals.get(addr[at + 1:]) is not None:
            return 0, addr
        n = len(addr)
        for i in range(n + 1):
            if i == 0 or i == at + 1 or i == n or (i > at and addr[i:i + 1] == b"."):
                x = self.vdoms.get(addr[i:])
                if x is not None:
                    if not x:
                        break
                    return 0, x + b"-" + addr
        return 1, addr

    def stripvdomprepend(self, recip: bytes) -> bytes:
        """The recipient as the sender knew it, without a virtual domain's prefix."""
        i = recip.rfind(b"@")
        if i < 0:
            return recip
        domain = recip[i + 1:]
        n = len(domain)
        for i in range(n + 1):
            if i == 0 or i == n or domain[i:i + 1] == b".":
                prepend = self.vdoms.get(domain[i:])
                if prepend is not None:
                    if not prepend:
                        break
                    if not recip.startswith(prepend) or recip[len(prepend):len(prepend) + 1] != b"-":
                        break
                    return recip[len(prepend) + 1:]
        return recip


def senderadd(sender: bytes, recip: bytes) -> bytes:
    """The envelope sender for one delivery: ``owner-@host-@[]`` (VERP) becomes
    ``owner-recipbox=reciphost@host``."""
    i = len(sender)
    if i >= 4 and sender.endswith(b"-@[]"):
        j = sender.rfind(b"@", 0, i - 4)
        if j < 0:
            j = i - 4  # byte_rchr's "not found"
        k = recip.rfind(b"@")
        if k >= 0 and j + 5 <= i:
            return sender[:j] + recip[:k] + b"=" + recip[k + 1:] + b"@" + sender[j + 1:i - 4]
    return sender
