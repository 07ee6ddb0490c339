"""rblsmtpd: refuse mail from RBL-listed clients, else run the SMTP server.

Usage: ``rblsmtpd [ -bBcC ] [ -t timeout ] [ -r base ] [ -a base ] smtpd [ arg ... ]``.

The decision, as ucspi-tcp 0.88's (Debian's, which has no default RBL):

- ``$RBLSMTPD`` set and empty: accept; set to ``-text``: refuse with 553
  ``text``; set to ``text``: refuse with 451 ``text``.
- unset: each ``-r base`` and ``-a base``, in the order given, until one
  decides: ``-r`` refuses when ``d.c.b.a.base`` (``$TCPREMOTEIP`` reversed) has
  TXT records, whose text is the reason (451, or 553 after ``-b``); ``-a``
  accepts when the name has an A record.  A lookup that fails is a miss
  (``-C``, the default) or, after ``-c``, refuses with 451 "temporary RBL
  lookup error" (``-r``) or does not accept (``-a``); any failure turns a
  later 553 into 451.  Options act where they stand: ``-b`` and ``-c`` count
  for the lookups after them.

Accepting execs smtpd with the environment unchanged.  Refusing logs
``rblsmtpd: IP pid PID: 451 text`` on descriptor 2 and holds its own SMTP
dialogue: 220 greeting; 250 to HELO, EHLO, MAIL, RSET and NOOP; 221 to QUIT;
the refusal to anything else; cut off after ``-t`` seconds (default 60;
``-t 0``: print the refusal alone and exit).  DNS questions go to
``$DNSCACHEIP`` when it is set (``$DNSCACHEPORT`` for its port), else to the
servers of /etc/resolv.conf, through :mod:`pyqmail.dnsq` (dnspython, imported
only when a lookup is made).
"""
from __future__ import annotations

import os

import _signal

from pyqmail import pathexec
from pyqmail.scan import scan_ulong
from pyqmail.sgetopt import OptError, Options
from pyqmail.strerr import die, run

FATAL = "rblsmtpd: fatal: "
USAGE = ("rblsmtpd: usage: rblsmtpd [ -b ] [ -R ] [ -t timeout ] [ -r base ] [ -a base ] "
         "smtpd [ arg ... ]")

GREETING = b"220 rblsmtpd.local\r\n"
ACCEPTED = b"250 rblsmtpd.local\r\n"
BYE = b"221 rblsmtpd.local\r\n"
#: the reason -c gives when an RBL lookup fails
LOOKUP_ERROR = b"temporary RBL lookup error"
TEMPORARY = b"451 "
PERMANENT = b"553 "
#: commands answered 250 (QUIT 221); any other line gets the refusal
HARMLESS = (b"helo", b"ehlo", b"mail", b"rset", b"noop")
#: longest reason kept from $RBLSMTPD or a TXT record
MAXTEXT = 200
#: what the refusal shows of each byte: printable ASCII as is, the rest as '?'
PRINTABLE = bytes(c if 32 <= c <= 126 else 63 for c in range(256))

#: decisions
UNDECIDED, ACCEPT, REJECT, BOUNCE = 0, 1, 2, 3


def reverse_ip(ip: bytes) -> bytes:
    """``a.b.c.d`` as ``d.c.b.a.`` (ip_init: a leading dot is dropped, as there)."""
    out = []
    i = len(ip)
    while i:
        j = ip.rfind(b".", 0, i) + 1
        out.append(ip[j:i] + b".")
        if not j:
            break
        i = j - 1
    return b"".join(out)


class LookupFailed(Exception):
    """A DNS lookup failed temporarily."""


def labels(name: str) -> str:
    """``name`` without empty labels, which djb's resolver skips and dnspython refuses."""
    return ".".join(label for label in name.split(".") if label)


class Lookups:
    """The decision as the options and lookups make it."""

    def __init__(self, ip: bytes) -> None:
        self.reverse = reverse_ip(ip)
        self.decision = UNDECIDED
        self.text = b""
        self.rblbounce = False
        self.failclosed = False
        self.mustnotbounce = False

    def name(self, base: str) -> str:
        """The client's name under ``base``."""
        return os.fsdecode(self.reverse) + base

    def rbl(self, base: str) -> None:
        """``-r base``: refuse if the client's name under ``base`` has TXT records."""
        if self.decision:
            return
        try:
            text = txt(labels(self.name(base)))
        except LookupFailed:
            self.mustnotbounce = True
            if self.failclosed:
                self.text = LOOKUP_ERROR
                self.decision = REJECT
            return
        if text:
            self.text = text
            self.decision = BOUNCE if self.rblbounce else REJECT

    def antirbl(self, base: str) -> None:
        """``-a base``: accept if the client's name under ``base`` has an A record."""
        if self.decision:
            return
        try:
            listed = has_ip4(self.name(base))
        except LookupFailed:
            self.mustnotbounce = True
            if not self.failclosed:
                self.decision = ACCEPT
            return
        if listed:
            self.decision = ACCEPT


def txt(name: str) -> bytes:
    """All TXT strings of ``name`` run together, as djb's dns_txt gives them."""
    from pyqmail import dnsq

    try:
        return b"".join(dnsq.txt(name))
    except Exception as e:  # a name or server dnspython refuses fails the lookup too
        raise LookupFailed(name) from e


def has_ip4(name: str) -> bool:
    """Whether ``name`` has an A record.  As djb's dns_ip4, a name of digits,
    dots and brackets only is read as addresses itself, with no DNS."""
    if all(c in "0123456789.[]" for c in name):
        return name.replace("[", "").replace("]", "").count(".") >= 3
    from pyqmail import dnsq

    try:
        return bool(dnsq.ip4(labels(name)))
    except Exception as e:
        raise LookupFailed(name) from e


def _write(data: bytes) -> None:
    try:  # the original ignores a failed write (SIGPIPE still ends it)
        while data:
            data = data[os.write(1, data):]
    except OSError:
        pass


def _drop(signum: int, frame: object) -> None:
    os._exit(0)


def dialogue(message: bytes, timeout: int) -> None:
    """Hold the limited SMTP conversation that refuses with ``message``; never returns."""
    if not timeout:
        _write(message)
        os._exit(0)
    seconds = timeout & 0xFFFFFFFF  # alarm() takes an unsigned int
    if 0 < seconds <= 0x7FFFFFFF:
        _signal.signal(_signal.SIGALRM, _drop)
        _signal.alarm(seconds)
    _write(GREETING)
    buf = b""
    while True:
        nl = buf.find(b"\n")
        if nl < 0:
            try:
                data = os.read(0, 4096)
            except OSError:
                data = b""
            if not data:
                os._exit(0)
            buf += data
            continue
        line, buf = buf[:nl], buf[nl + 1:]
        if line.endswith(b"\r"):
            line = line[:-1]
        verb = line.split(b" ", 1)[0].lower()
        if verb == b"quit":
            _write(BYE)
            os._exit(0)
        _write(ACCEPTED if verb in HARMLESS else message)


def refuse(ip: bytes, look: Lookups, timeout: int) -> None:
    """Log the refusal and hold the dialogue; never returns."""
    code = TEMPORARY if look.mustnotbounce or look.decision == REJECT else PERMANENT
    message = (code + look.text[:MAXTEXT]).translate(PRINTABLE)
    log = b"rblsmtpd: %s pid %d: %s\n" % (ip, os.getpid(), message)
    try:
        os.write(2, log)
    except OSError:
        pass
    dialogue(message + b"\r\n", timeout)


def main(argv: list[str]) -> int:
    """Decide, then refuse or exec smtpd."""
    env = os.environb
    ip = env.get(b"TCPREMOTEIP", b"")
    look = Lookups(ip)
    given = env.get(b"RBLSMTPD")
    if given is not None:
        if not given:
            look.decision = ACCEPT
        elif given[:1] == b"-":
            look.text, look.decision = given[1:], BOUNCE
        else:
            look.text, look.decision = given, REJECT

    timeout = 60
    parser = Options(argv, "bBcCt:r:a:")
    try:
        for opt, value in parser:
            if opt in "bB":
                look.rblbounce = opt == "b"
            elif opt in "cC":
                look.failclosed = opt == "c"
            elif opt == "t":
                timeout = scan_ulong(value)[0]
            elif opt == "r":
                look.rbl(value)
            else:
                look.antirbl(value)
    except OptError:
        die(100, USAGE)
    if not parser.rest:
        die(100, USAGE)
    if look.decision >= REJECT:
        refuse(ip, look, timeout)
    pathexec.chain(FATAL, parser.rest)


def cli() -> None:
    run(main)


if __name__ == "__main__":
    cli()
