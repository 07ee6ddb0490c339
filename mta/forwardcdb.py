"""fastforward's formats: the forwarding database, setforward's text, binary mailing lists.

The forwarding database is a CDB.  Key ``":" + target`` (target lowercased,
ASCII only) holds the target's instructions, each ended by a NUL:

- ``&address``: forward to address (at most 900 bytes with the ``&``);
- ``|command``: feed the message to ``sh -c command``;
- ``!command``: the same through preline (UFLINE, RPLINE, DTLINE first);
- ``./file`` or ``/file``: obey the binary mailing list in file.

Key ``"?" + target`` holds an owner address, without a NUL: the envelope
sender for mail forwarded for that target.  Several records may share a key;
fastforward obeys the first.

setforward's text is ``target: command, command;`` with ``#`` comments to the
end of the line, blanks and newlines ignored, and backslash quoting the next
byte.  A binary mailing list (setmaillist) is the same instructions without
the ``|`` and ``!`` kinds, one after the other, each ended by a NUL.
"""
from __future__ import annotations

import os

from pyqmail.cdb import Writer
from pyqmail.fsutil import fsync_dir, write_all
from pyqmail.strerr import die

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Iterable, NoReturn

_UPPER = bytes.maketrans(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ", b"abcdefghijklmnopqrstuvwxyz")


def lower(s: bytes) -> bytes:
    """``s`` with ASCII capitals made small (case_lowerb)."""
    return s.translate(_UPPER)


def target_key(target: bytes) -> bytes:
    return b":" + lower(target)


def owner_key(target: bytes) -> bytes:
    return b"?" + lower(target)


def encode(instructions: list[bytes]) -> bytes:
    """The data of a ``:`` record: each instruction followed by a NUL."""
    return b"".join(i + b"\0" for i in instructions)


def entries(data: bytes) -> list[bytes]:
    """The NUL-ended entries of ``data``; bytes after the last NUL are not one."""
    return data.split(b"\0")[:-1]


class FormatError(Exception):
    """Input a program refuses: ``code`` is the exit code, ``text`` the message."""

    def __init__(self, code: int, text: str) -> None:
        super().__init__(text)
        self.code = code
        self.text = text


def parse_setforward(text: bytes) -> list[tuple[bytes, bytes]]:
    """The records setforward makes from ``text``, in its order.

    Raises :class:`FormatError` with setforward's messages (all exit 100).
    """
    records: list[tuple[bytes, bytes]] = []
    target = bytearray()
    command = bytearray()
    instr = bytearray()
    flagtarget = False
    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        i += 1
        if ch == 0x23:  # '#': comment to the end of the line
            nl = text.find(b"\n", i)
            i = n if nl < 0 else nl + 1
            continue
        if ch in b" \n\t":
            continue
        if ch == 0x3A:  # ':'
            if flagtarget:
                raise FormatError(100, "double colons are not permitted")
            flagtarget = True
            continue
        if ch in b",;":
            if not flagtarget:
                raise FormatError(100, "commas are not permitted before colons")
            if command:
                first = command[:1]
                if first == b"?":
                    records.append((owner_key(bytes(target)), bytes(command[1:])))
                elif first in (b"|", b"!", b".", b"/"):
                    instr += command + b"\0"
                else:
                    if len(command) > 800:
                        raise FormatError(100, "addresses over 800 bytes are not permitted")
                    if first != b"&":
                        instr += b"&"
                    instr += command + b"\0"
            command.clear()
            if ch == 0x3B:  # ';'
                if instr:
                    records.append((target_key(bytes(target)), bytes(instr)))
                target.clear()
                instr.clear()
                flagtarget = False
            continue
        if ch == 0x5C:  # backslash: the next byte as it is
            if i >= n:
                break
            ch = text[i]
            i += 1
        if ch == 0:
            raise FormatError(100, "NUL bytes are not permitted")
        (command if flagtarget else target).append(ch)
    if flagtarget or target:
        raise FormatError(100, "final instruction must end with semicolon")
    return records


_ESCAPE = frozenset(b",:;\\#")


def escape(s: bytes) -> bytes:
    """printforward's printsafe: a backslash before blanks, controls, bytes
    above 127 (a signed char is at most 32 there) and ``, : ; \\ #``."""
    out = bytearray()
    for c in s:
        if c <= 32 or c >= 128 or c in _ESCAPE:
            out.append(0x5C)
        out.append(c)
    return bytes(out)


def format_record(key: bytes, data: bytes) -> bytes:
    """One record in setforward's text, as printforward prints it."""
    bad = FormatError(100, "bad database format")
    if key[:1] == b"?":
        return escape(key[1:]) + b": ?" + escape(data) + b";\n"
    if key[:1] != b":":
        raise bad
    out = [escape(key[1:]), b":\n"]
    parts = data.split(b"\0")
    if parts[-1]:  # bytes after the last NUL
        raise bad
    for e in parts[:-1]:
        if e[:1] in (b".", b"/", b"|", b"!") or (e[:1] == b"&" and len(e) < 900):
            out += [b", ", escape(e), b"\n"]
        else:
            raise bad
    out.append(b";\n")
    return b"".join(out)


def maillist_entry(line: bytes) -> bytes | None:
    """setmaillist: the entry for one input line (newline included), or None
    for a blank or comment line.  Raises :class:`FormatError` (exit 111)."""
    end = len(line)
    while end and line[end - 1] in b"\n \t":
        end -= 1
    line = line[:end]
    if b"\0" in line:
        raise FormatError(111, "NUL in input")
    if not line or line[:1] == b"#":
        return None
    if line[:1] in (b".", b"/"):
        return line + b"\0"
    if len(line) > 800:
        raise FormatError(111, "addresses must be under 800 bytes")
    return (line if line[:1] == b"&" else b"&" + line) + b"\0"


def format_maillist(data: bytes) -> bytes:
    """printmaillist: a binary mailing list as setmaillist's lines.

    Raises :class:`FormatError` (exit 100) for a list it cannot print."""
    bad = FormatError(100, "bad mailing list format")
    parts = data.split(b"\0")
    if parts[-1]:
        raise bad
    out = []
    for e in parts[:-1]:
        if b"\n" in e:
            raise bad
        if e[:1] in (b".", b"/") or (e[:1] == b"&" and len(e) < 900):
            out.append(e + b"\n")
        else:
            raise bad
    return b"".join(out)


class TmpFile:
    """A new file written as ``tmp``, fsynced, closed and renamed to ``final``;
    failures die with the originals' messages (``unable to create tmp``, or
    ``create`` in its place, ``unable to write to tmp``, ``unable to move tmp
    to final``)."""

    def __init__(self, fatal: str, tmp: str, final: str, *, create: str = "unable to create ") -> None:
        self.fatal, self.tmp, self.final = fatal, tmp, final
        try:
            self.fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        except OSError as e:
            die(111, fatal, create, tmp, ": ", exc=e)

    def writeerr(self, e: OSError) -> NoReturn:
        die(111, self.fatal, "unable to write to ", self.tmp, ": ", exc=e)

    def write(self, data: bytes) -> None:
        try:
            write_all(self.fd, data)
        except OSError as e:
            self.writeerr(e)

    def commit(self) -> None:
        """fsync, close and rename into place."""
        try:
            os.fsync(self.fd)
        except OSError as e:
            self.writeerr(e)
        try:
            os.close(self.fd)
        except OSError as e:
            self.writeerr(e)
        try:
            os.rename(self.tmp, self.final)
        except OSError as e:
            die(111, self.fatal, "unable to move ", self.tmp, " to ", self.final, ": ", exc=e)
        try:  # make the rename itself durable; the originals stop at the rename
            fsync_dir(os.path.dirname(self.final) or ".")
        except OSError:
            pass


def write_cdb(out: TmpFile, records: Iterable[tuple[bytes, bytes]]) -> None:
    """Write ``records`` (key, data) as a CDB into ``out`` and commit it."""
    try:
        w = Writer(out.fd)
        for key, data in records:
            w.add(key, data)
        w.finish()
    except OSError as e:
        out.writeerr(e)
    out.commit()
