"""/etc/aliases as newaliases reads it: sendmail-style lines to forwarding records.

A logical line is a line and the lines after it that start with a space or a
tab; empty lines are skipped even inside one, and a logical line starting
with ``#`` is a comment.  As in the original, a last line without its newline
is not read.  Each logical line is tokenized as an RFC 822 header and cut into
addresses from right to left (:mod:`mta.addrparse`); the leftmost address is
the alias, the others its instructions, in right-to-left order:

- ``|program`` (no unquoted ``@``) becomes ``!program`` (run through preline);
- ``:include:file`` becomes ``./file.bin`` (or ``file.bin`` if it starts with
  ``.`` or ``/``), the binary list fastforward reads;
- any other address becomes ``&address``, qualified by the controls.

The alias name gets an ``@`` if it has none; records are
``":" + lowercased alias`` and, for ``owner-x``, ``"?" + lowercased x``
holding ``owner-x`` qualified (:mod:`mta.forwardcdb`).  Errors raise
:class:`mta.forwardcdb.FormatError` with the original's text and exit code.
"""
from __future__ import annotations

import os

from mta import forwardcdb
from mta.addrparse import Controls, ParseError, cstr, has_at, qualify, tokenize, walk
from mta.forwardcdb import FormatError
from mta.token822 import Token, unquote

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Iterator


def logical_lines(data: bytes) -> Iterator[bytes]:
    """The logical lines of ``data`` that are not comments, each with its newlines."""
    line = b""
    pos = 0
    end = len(data)
    while True:
        nl = data.find(b"\n", pos)
        match = nl >= 0
        newline = data[pos:nl + 1] if match else data[pos:]
        pos = nl + 1 if match else end
        if match and newline[:1] == b"\n":
            continue
        if match and newline[:1] in (b" ", b"\t"):
            line += newline
            continue
        if line and line[:1] != b"#":
            yield line
        if not match:
            return
        line = newline


class _Line:
    """One logical line being cut into its alias and instructions."""

    def __init__(self, controls: Controls) -> None:
        self.c = controls
        self.target = b""
        self.fulltarget = b""
        self.instr: list[bytes] = []

    def gotincl(self, toks: list[Token]) -> None:
        name = unquote(toks)
        if not name:
            raise FormatError(111, "empty :include: filenames not permitted")
        if b"\0" in name:
            raise FormatError(111, "NUL not permitted in :include: filenames")
        prefix = b"" if name[:1] in (b".", b"/") else b"./"
        self.instr.append(prefix + name + b".bin")

    def gotaddr(self, toks: list[Token]) -> None:
        address = unquote(toks)
        if not address:
            raise FormatError(111, "empty recipient addresses not permitted")
        hasat = has_at(toks)
        if not hasat and address[:1] == b"/":
            raise FormatError(111, "file delivery " + os.fsdecode(cstr(address)) + " not supported")
        if not hasat and address[:1] == b"|":
            if b"\0" in address:
                raise FormatError(111, "NUL not permitted in program names")
            self.instr.append(b"!" + address[1:])
            return
        if self.target:
            self.instr.append(b"&" + self.fulltarget)
        if not hasat:
            address += b"@"
        self.target = address
        self.fulltarget = qualify(address, self.c)
        if len(self.fulltarget) > 800:
            raise FormatError(100, "addresses over 800 bytes are not permitted")
        if b"\0" in self.fulltarget:
            raise FormatError(111, "NUL not permitted in recipient addresses")


def parse_line(line: bytes, controls: Controls) -> list[tuple[bytes, bytes]]:
    """The records (key, data) for one logical line; [] for a line of nothing."""
    parseerr = FormatError(111, "unable to parse this line: " + os.fsdecode(cstr(line)))
    try:
        toks = tokenize(line)
    except ParseError:
        raise parseerr from None
    cut = _Line(controls)
    try:
        walk(toks, cut.gotaddr, cut.gotincl)
    except ParseError:
        raise parseerr from None
    if not cut.instr:
        if cut.target:
            raise parseerr
        return []
    if not cut.target:
        raise parseerr
    records = []
    if cut.target.startswith(b"owner-"):
        records.append((forwardcdb.owner_key(cut.target[6:]), cut.fulltarget))
    records.append((forwardcdb.target_key(cut.target), forwardcdb.encode(cut.instr)))
    return records


def compile_aliases(data: bytes, controls: Controls) -> Iterator[tuple[bytes, bytes]]:
    """Every record for the aliases file ``data``, in the order newaliases adds them."""
    for line in logical_lines(data):
        yield from parse_line(line, controls)
