"""tcprules: compile tcpserver's rules from stdin into a CDB.

Usage: ``tcprules rules.cdb rules.tmp``.  Each line is ``address:allow`` or
``address:deny``, optionally followed by ``,NAME="value"`` settings in which
any character may stand for the quotes.  Lines starting with ``#``, blank
lines and lines without a colon are skipped; trailing blanks and tabs are
dropped.  An IPv6 address (``2001:db8::1:allow``, prefix ``2001:db8::allow``
for the keys starting ``2001:db8:``) is read as ucspi-tcp's IPv6 patch reads
it, where 0.88 refuses the line.  An address without ``=`` or ``@`` may hold one range, ``1.2.3.4-7``
or ``10.2-3.``, which stands for one rule per number (the top capped at 255).

The CDB is written to ``rules.tmp``, fsynced, and renamed onto
``rules.cdb``: a running tcpserver sees the old rules or the new, and a bad
line (exit 100) or a write error (exit 111) leaves ``rules.cdb`` alone.  The
records and their order are those of ucspi-tcp 0.88, so the file is
byte-for-byte the one the original writes.
"""
from __future__ import annotations

import os

from pyqmail import cdb
from pyqmail.strerr import die, run

FATAL = "tcprules: fatal: "
USAGE = "tcprules: usage: tcprules rules.cdb rules.tmp"
_MASK64 = (1 << 64) - 1


class BadLine(Exception):
    """A rule line tcprules cannot parse; ``line`` is it without trailing blanks."""

    def __init__(self, line: bytes) -> None:
        super().__init__(line)
        self.line = line


def parse_line(raw: bytes) -> tuple[bytes, bytes] | None:
    """``(address, data)`` for one input line (without its newline), None to skip it.

    ``data`` is what the CDB holds: ``D\\0`` for deny, then ``+NAME=value\\0``
    for each setting.  Raises :class:`BadLine`.
    """
    if not raw or raw[0] == 0x23:  # '#'
        return None
    line = raw.rstrip(b" \t")
    colon = line.find(b":")
    if colon < 0:
        return None
    rest = line[colon + 1:]
    if not (rest.startswith(b"deny") or rest.startswith(b"allow")):
        # an IPv6 address holds colons: as ucspi-tcp's IPv6 patch, the rule's own
        # colon is then the one before allow or deny (0.88 refuses such lines)
        later = _ipv6_colon(line, colon + 1)
        if later is not None and _is_ipv6(line[:later]):
            colon = later
            rest = line[colon + 1:]
    address = line[:colon]
    if rest.startswith(b"deny"):
        data = [b"D\0"]
        x = 4
    elif rest.startswith(b"allow"):
        data = []
        x = 5
    else:
        raise BadLine(line)
    n = len(rest)
    while x < n:
        if rest[x] != 0x2C:  # ','
            raise BadLine(line)
        eq = rest.find(b"=", x)
        if eq < 0 or eq + 1 >= n:
            raise BadLine(line)
        quote = rest[eq + 1:eq + 2]
        end = rest.find(quote, eq + 2)
        if end < 0:
            raise BadLine(line)
        data.append(b"+" + rest[x + 1:eq + 1] + rest[eq + 2:end] + b"\0")
        x = end + 1
    return address, b"".join(data)


def _ipv6_colon(line: bytes, start: int) -> int | None:
    """The first colon at or after ``start`` followed by ``deny`` or ``allow``."""
    while True:
        colon = line.find(b":", start)
        if colon < 0:
            return None
        if line.startswith(b"deny", colon + 1) or line.startswith(b"allow", colon + 1):
            return colon
        start = colon + 1


def _is_ipv6(address: bytes) -> bool:
    """True for an IPv6 address or prefix, alone or after ``info@``."""
    ip = address.rpartition(b"@")[2]
    return b":" in ip and not ip.translate(None, b"0123456789abcdefABCDEF:.")


def keys(address: bytes) -> list[bytes]:
    """The CDB keys for ``address``: itself, or one per number of its range.

    Raises ``ValueError`` if the ends of a range are not numbers.
    """
    if b"=" in address or b"@" in address:
        return [address]
    dash = address.find(b"-")
    if dash < 0:
        return [address]
    left = address.rfind(b".", 0, dash) + 1
    right = address.find(b".", dash + 1)
    if right < 0:
        right = len(address)
    bot = _number(address[left:dash])
    top = min(_number(address[dash + 1:right]), 255)
    head, tail = address[:left], address[right:]
    return [b"%s%d%s" % (head, n, tail) for n in range(bot, top + 1)]


def _number(text: bytes) -> int:
    """The value of ``text`` as tcprules' getnum reads it: digits up to the end
    (or to a NUL, where the C string ends), wrapping at 2**64."""
    text = text.split(b"\0", 1)[0]
    if text and not text.isdigit():
        raise ValueError(text)
    return int(text) & _MASK64 if text else 0


def read_input() -> bytes:
    """All of stdin."""
    parts = []
    while True:
        part = os.read(0, 1 << 16)
        if not part:
            return b"".join(parts)
        parts.append(part)


def main(argv: list[str]) -> int:
    """Compile the rules on stdin into ``argv[1]`` by way of ``argv[2]``."""
    if len(argv) < 3:
        die(100, USAGE)
    fn, fntemp = argv[1], argv[2]
    try:
        fd = os.open(fntemp, os.O_WRONLY | os.O_NONBLOCK | os.O_TRUNC | os.O_CREAT, 0o644)
    except OSError as e:
        die(111, FATAL, "unable to create ", fntemp, ": ", exc=e)
    try:
        writer = cdb.Writer(fd)
    except OSError as e:
        die(111, FATAL, "unable to write to ", fntemp, ": ", exc=e)
    try:
        text = read_input()
    except OSError as e:
        die(111, FATAL, "unable to read input: ", exc=e)
    lines = text.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    try:
        for raw in lines:
            try:
                rule = parse_line(raw)
                if rule is None:
                    continue
                address, data = rule
                for key in keys(address):
                    writer.add(key, data)
            except (BadLine, ValueError):
                bad = raw.rstrip(b" \t").split(b"\0", 1)[0]
                die(100, FATAL, "unable to parse this line: ",
                    bad.decode("utf-8", "surrogateescape"))
        writer.finish()
        os.fsync(fd)
        os.close(fd)
    except OSError as e:
        die(111, FATAL, "unable to write to ", fntemp, ": ", exc=e)
    try:
        os.rename(fntemp, fn)
    except OSError as e:
        die(111, FATAL, "unable to move ", fntemp, " to ", fn, ": ", exc=e)
    return 0


def cli() -> None:
    run(main)


if __name__ == "__main__":
    cli()
