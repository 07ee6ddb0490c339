"""qmail-inject's view of a header: field names (hfield.c), the rewriting of
addresses (qmail-header(5)) and the fields it adds (newfield.c).

:class:`Rewriter` holds the default host, default domain and plus domain and
applies qmail-inject's rules to one address: source routes stripped, a
trailing dot or ``@`` dropped, the default host added to a lone box, a host
ending in ``+`` completed with the plus domain, a host without dots
completed with the default domain.
"""
from __future__ import annotations

import time

from mta import token822 as tk
from pyqmail.date822 import date822

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable

(H_SENDER, H_FROM, H_REPLYTO, H_TO, H_CC, H_BCC, H_DATE, H_MESSAGEID, H_SUBJECT,
 H_R_SENDER, H_R_FROM, H_R_REPLYTO, H_R_TO, H_R_CC, H_R_BCC, H_R_DATE, H_R_MESSAGEID,
 H_RETURNRECEIPTTO, H_ERRORSTO, H_APPARENTLYTO, H_RECEIVED, H_RETURNPATH,
 H_DELIVEREDTO, H_CONTENTLENGTH, H_CONTENTTYPE, H_CONTENTTRANSFERENCODING,
 H_NOTICEREQUESTEDUPONDELIVERYTO, H_MAILFOLLOWUPTO) = range(1, 29)

_NAMES = {
    b"sender": H_SENDER, b"from": H_FROM, b"reply-to": H_REPLYTO, b"to": H_TO,
    b"cc": H_CC, b"bcc": H_BCC, b"date": H_DATE, b"message-id": H_MESSAGEID,
    b"subject": H_SUBJECT, b"resent-sender": H_R_SENDER, b"resent-from": H_R_FROM,
    b"resent-reply-to": H_R_REPLYTO, b"resent-to": H_R_TO, b"resent-cc": H_R_CC,
    b"resent-bcc": H_R_BCC, b"resent-date": H_R_DATE,
    b"resent-message-id": H_R_MESSAGEID, b"return-receipt-to": H_RETURNRECEIPTTO,
    b"errors-to": H_ERRORSTO, b"apparently-to": H_APPARENTLYTO, b"received": H_RECEIVED,
    b"return-path": H_RETURNPATH, b"delivered-to": H_DELIVEREDTO,
    b"content-length": H_CONTENTLENGTH, b"content-type": H_CONTENTTYPE,
    b"content-transfer-encoding": H_CONTENTTRANSFERENCODING,
    b"notice-requested-upon-delivery-to": H_NOTICEREQUESTEDUPONDELIVERYTO,
    b"mail-followup-to": H_MAILFOLLOWUPTO,
}

#: the fields that make a message "resent"
RESENT = (H_R_SENDER, H_R_FROM, H_R_REPLYTO, H_R_TO, H_R_CC, H_R_BCC, H_R_DATE,
          H_R_MESSAGEID)


def known(field: bytes) -> int:
    """The H_ number of the field's name (any case, blanks before the colon), or 0."""
    j = field.find(b":")
    if j < 0:
        return 0
    return _NAMES.get(field[:j].rstrip(b" \t").lower(), 0)


def valid(line: bytes) -> bool:
    """True if ``line`` starts with a field name: printable, no blanks, then a colon."""
    j = line.find(b":")
    if j < 0:
        return False
    name = line[:j].rstrip(b" \t")
    return bool(name) and all(32 < ch < 127 for ch in name)


def headerbody(inp, field: Callable[[bytes], None], done: Callable[[], None],
               body: Callable[[bytes], None]) -> None:
    """Read a message from ``inp`` as headerbody.c: each header field (with its
    continuation lines) to ``field``, then ``done()``, then the rest to ``body``.

    The header ends at a blank line, which goes to the body, or at the first
    line that is not a field, before which a blank line is put.  A line
    starting with ``From `` is taken as the field ``MBOX-Line: From ...``.  A
    last line without a newline gets one; a message that ends inside its
    header has no body, not even the blank line.
    """
    eof = False

    def getline() -> bytes | None:
        nonlocal eof
        if eof:
            return None
        line = inp.readline()
        if not line.endswith(b"\n"):
            eof = True
            if not line:
                return None
            line += b"\n"
        return line

    parts: list[bytes] = []  # the field being read, continuation lines apart
    while True:
        line = getline()
        if line is None:
            if parts:
                field(b"".join(parts))
            done()
            return
        if parts:
            if line[:1] in (b" ", b"\t"):
                parts.append(line)
                continue
            field(b"".join(parts))
            parts = []
        if line == b"\n":
            done()
            body(line)
            break
        if line.startswith(b"From "):
            parts = [b"MBOX-Line: ", line]
        elif valid(line):
            parts = [line]
        else:
            done()
            body(b"\n" + line)
            break
    if eof:
        return
    last = b"\n"
    while True:
        data = inp.read(65536)
        if not data:
            break
        body(data)
        last = data[-1:]
    if last != b"\n":
        body(b"\n")


class Rewriter:
    """qmail-inject's rewriting of one address (rwgeneric), in token form."""

    def __init__(self, defaulthost: list, defaultdomain: list, plusdomain: list) -> None:
        """Take the parsed ``@defaulthost``, ``.defaultdomain`` and ``.plusdomain``."""
        self.defaulthost = defaulthost
        self.defaultdomain = defaultdomain
        self.plusdomain = plusdomain

    def __call__(self, addr: list) -> list:
        """The address ``addr`` (tokens, in order) rewritten; a new list."""
        addr = list(addr)
        if not addr:
            return addr  # <> stays
        if len(addr) >= 2 and addr[-2][0] == tk.AT and addr[-1] == (tk.LITERAL, b""):
            return addr  # foo@[] stays
        if addr[0][0] == tk.AT:  # source route: drop up to the colon
            while addr:
                if addr.pop(0)[0] == tk.COLON:
                    break
            if not addr:
                return addr
        if addr[-1][0] == tk.DOT:
            addr.pop()
            if not addr:
                return addr
        if addr[-1][0] == tk.AT:
            addr.pop()
            if not addr:
                return addr
        if not any(t[0] == tk.AT for t in addr):
            addr += self.defaulthost
        typ, text = addr[-1]
        if typ == tk.ATOM and text.endswith(b"+"):
            addr[-1] = (typ, text[:-1])
            addr += self.plusdomain
        for typ, _ in reversed(addr):
            if typ == tk.DOT or typ == tk.LITERAL:
                return addr
            if typ == tk.AT:
                break
        return addr + self.defaultdomain


def datefield(when: int) -> bytes:
    """``Date: 26 Sep 1995 04:46:53 -0000`` and a newline."""
    return b"Date: " + date822(when)


def msgidfield(idhost: bytes, when: int, pid: int) -> bytes:
    """``Message-ID: <19950926044653.12345.qmail@idhost>`` and a newline."""
    stamp = time.strftime("%Y%m%d%H%M%S", time.gmtime(when)).encode()
    return b"Message-ID: <%s.%d.qmail@%s>\n" % (stamp, pid, idhost)
