"""newinclude: a binary mailing list from an :include: file (newinclude(1) of fastforward 0.51).

Usage: ``newinclude list``.  Reads the controls me, defaultdomain, defaulthost
and plusdomain under QMAILHOME (``$QMAILDEFAULTDOMAIN``,
``$QMAILDEFAULTHOST`` and ``$QMAILPLUSDOMAIN`` win over the files), then
list, a sendmail-style :include: file: each line that does not start with
``#`` is a list of addresses and ``:include:`` names, read as newaliases
reads the instructions of an alias (:mod:`mta.addrparse`), from right to
left.  Writes the binary mailing list fastforward reads (the format of
setmaillist, :mod:`mta.forwardcdb`) to list.tmp (world-readable), fsyncs it
and renames it to list.bin; on any error list.bin is left alone.

An address is completed as by dot-forward: ``@defaulthost`` if it has no
``@``, ``+`` at the end becomes ``.plusdomain``, ``.defaultdomain`` if there
is no dot after the ``@``; it becomes ``&address``.  ``:include:name``
becomes ``./name`` (or ``name`` if it starts with ``.`` or ``/``): the name
as it is, without the ``.bin`` newaliases adds.  An empty address (``<>``)
is skipped; unlike newaliases, a last line without its newline is read.

Exit 0; 100 for usage; 111 for ``unable to parse this line: LINE``, ``file
delivery /x not supported``, ``program delivery |x not supported``, ``empty
:include: filenames not permitted``, newlines or NUL in a name or address,
``addresses must be under 800 bytes``, ``spaces and tabs not permitted at
ends of addresses`` and system errors (``unable to read list``, ``unable to
write to list.tmp``, ``unable to move list.tmp to list.bin``, the controls).
"""
from __future__ import annotations

import os

from mta.addrparse import Controls, ParseError, cstr, has_at, qualify, read_controls, tokenize, walk
from mta.ffio import lines, read_all
from mta.forwardcdb import TmpFile
from mta.token822 import Token, unquote
from pyqmail import control
from pyqmail.strerr import die, run

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import NoReturn

FATAL = "newinclude: fatal: "
USAGE = "newinclude: usage: newinclude list"


def _refuse(text: str, name: bytes = b"") -> NoReturn:
    die(111, FATAL, text, os.fsdecode(name))


class _List:
    """The entries of the binary list, line by line."""

    def __init__(self, controls: Controls) -> None:
        self.c = controls
        self.entries: list[bytes] = []

    def gotincl(self, toks: list[Token]) -> None:
        name = unquote(toks)
        if not name:
            _refuse("empty :include: filenames not permitted")
        if b"\n" in name:
            _refuse("newlines not permitted in :include: filenames")
        if b"\0" in name:
            _refuse("NUL not permitted in :include: filenames")
        prefix = b"" if name[:1] in (b".", b"/") else b"./"
        self.entries.append(prefix + name + b"\0")

    def gotaddr(self, toks: list[Token]) -> None:
        address = unquote(toks)
        if not address:
            return
        hasat = has_at(toks)
        if not hasat and address[:1] in (b"/", b"|"):
            kind = "file" if address[:1] == b"/" else "program"
            die(111, FATAL, kind, " delivery ", os.fsdecode(cstr(address)), " not supported")
        if not hasat:
            address += b"@" + self.c.defaulthost
        address = qualify(address, self.c, fill_host=False)
        if b"\n" in address:
            _refuse("newlines not permitted in recipient addresses")
        if b"\0" in address:
            _refuse("NUL not permitted in recipient addresses")
        if len(address) > 800:
            _refuse("addresses must be under 800 bytes")
        if address[-1:] in (b" ", b"\t"):
            _refuse("spaces and tabs not permitted at ends of addresses")
        self.entries.append(b"&" + address + b"\0")

    def parse(self, line: bytes) -> None:
        try:
            walk(tokenize(line), self.gotaddr, self.gotincl)
        except ParseError:
            _refuse("unable to parse this line: ", cstr(line))


def main(argv: list[str]) -> int:
    os.umask(0o033)
    controls = read_controls(FATAL, control.qmail_home(), environ=True)
    if len(argv) < 2:
        die(100, USAGE)
    fnlist = argv[1]
    fnbin, fntmp = fnlist + ".bin", fnlist + ".tmp"
    try:
        fd = os.open(fnlist, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as e:
        die(111, FATAL, "unable to read ", fnlist, ": ", exc=e)
    out = TmpFile(FATAL, fntmp, fnbin, create="unable to write to ")
    try:
        data = read_all(fd, FATAL, "unable to read ", fnlist, ": ")
    finally:
        os.close(fd)
    cut = _List(controls)
    for line in lines(data):
        if line[:1] != b"#":
            cut.parse(line)
    out.write(b"".join(cut.entries))
    out.commit()
    return 0


def cli() -> None:
    run(main)


if __name__ == "__main__":
    cli()
