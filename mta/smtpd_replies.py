"""qmail-smtpd's replies, the exact texts of qmail 1.03's qmail-smtpd.c,
then those of the extensions (SIZE, STARTTLS, AUTH) as the common patches word them.

Replies that carry the greeting (220, HELO's and EHLO's 250, QUIT's 221) or
a figure (DATA's 250) are built in :mod:`mta.qmail_smtpd` from the parts here.
With ENHANCEDSTATUSCODES, :func:`enhance` puts the RFC 3463 code after the
reply code: the one qmail puts in ``(#x.y.z)``, else the one in :data:`CODES`.
"""

# the greeting's frame: "220 " + greeting + " ESMTP"
GREET = b"220 "
ESMTP = b" ESMTP\r\n"
HELO = b"250 "
EHLO = b"250-"
EHLO_KEYWORDS = b"\r\n250-PIPELINING\r\n250 8BITMIME\r\n"
# the EHLO keywords of the extensions, each shown only when configured
KW_BASE = (b"PIPELINING", b"8BITMIME")
KW_STARTTLS = b"STARTTLS"
KW_AUTH = (b"AUTH LOGIN PLAIN", b"AUTH=LOGIN PLAIN")  # the second for old Outlooks
KW_SIZE = b"SIZE %d"
KW_ENHANCED = b"ENHANCEDSTATUSCODES"
QUIT = b"221 "
CRLF = b"\r\n"

OK = b"250 ok\r\n"
FLUSHED = b"250 flushed\r\n"
VRFY = b"252 send some mail, i'll try my best\r\n"
HELP = b"214 qmail home page: http://pobox.com/~djb/qmail.html\r\n"
GO_AHEAD = b"354 go ahead\r\n"
#: "250 ok <unix time> qp <queue program's pid>"
ACCEPTED = b"250 ok %d qp %d\r\n"

UNIMPLEMENTED = b"502 unimplemented (#5.5.1)\r\n"
SYNTAX = b"555 syntax error (#5.5.4)\r\n"
WANT_MAIL = b"503 MAIL first (#5.5.1)\r\n"
WANT_RCPT = b"503 RCPT first (#5.5.1)\r\n"
BADMAILFROM = b"553 sorry, your envelope sender is in my badmailfrom list (#5.7.1)\r\n"
NOGATEWAY = b"553 sorry, that domain isn't in my list of allowed rcpthosts (#5.7.1)\r\n"

TOO_MANY_HOPS = b"554 too many hops, this message is looping (#5.4.6)\r\n"
DATABYTES = b"552 sorry, that message size exceeds my databytes limit (#5.3.4)\r\n"
#: a queue failure: 554 (permanent, "D") or 451 (temporary, "Z") + qmail-queue's text
QUEUE_PERM = b"554 "
QUEUE_TEMP = b"451 "
QQT = b"451 qqt failure (#4.3.0)\r\n"

# each of these ends the session
TIMEOUT = b"451 timeout (#4.4.2)\r\n"
STRAY_NEWLINE = b"451 See http://pobox.com/~djb/docs/smtplf.html.\r\n"
NOMEM = b"421 out of memory (#4.3.0)\r\n"
CONTROLS = b"421 unable to read controls (#4.3.0)\r\n"
IPME = b"421 unable to figure out my IP addresses (#4.3.0)\r\n"

# -- ESMTP SIZE (RFC 1870): a MAIL whose SIZE= is over the databytes limit
SIZE_EXCEEDED = DATABYTES

# -- STARTTLS (qmail-tls patch)
TLS_READY = b"220 ready for tls\r\n"
#: "454 TLS " + what failed + ": " + why + " (#4.3.0)"
TLS_FAILED = b"454 TLS %s: %s (#4.3.0)\r\n"
TLS_PARAMS = b"501 Syntax error (no parameters allowed) (#5.5.4)\r\n"
TLS_ACTIVE = b"503 TLS already active (#5.5.1)\r\n"
TLS_IN_MAIL = b"503 no TLS during mail transaction (#5.5.1)\r\n"

# -- AUTH LOGIN and PLAIN (qmail-smtpd-auth patch)
AUTH_OK = b"235 ok, go ahead (#2.0.0)\r\n"
AUTH_FAILED = b"535 authorization failed (#5.7.0)\r\n"
AUTH_ALREADY = b"503 you're already authenticated (#5.5.0)\r\n"
AUTH_IN_MAIL = b"503 no auth during mail transaction (#5.5.0)\r\n"
AUTH_NOT_AVAILABLE = b"503 auth not available (#5.3.3)\r\n"
AUTH_UNKNOWN = b"504 auth type unimplemented (#5.5.1)\r\n"
AUTH_MALFORMED = b"501 malformed auth input (#5.5.4)\r\n"
AUTH_CANCELLED = b"501 auth exchange cancelled (#5.0.0)\r\n"
#: control/forcetls and no TLS yet (force-tls patch)
AUTH_NEEDS_TLS = b"538 auth not available without TLS (#5.3.3)\r\n"
AUTH_USERNAME = b"334 VXNlcm5hbWU6\r\n"  # "Username:"
AUTH_PASSWORD = b"334 UGFzc3dvcmQ6\r\n"  # "Password:"
AUTH_PLAIN = b"334 \r\n"
AUTH_PIPE = b"454 oops, unable to open pipe and I can't auth (#4.3.0)\r\n"
AUTH_FORK = b"454 oops, child won't start and I can't auth (#4.3.0)\r\n"
AUTH_WRITE = b"454 oops, unable to write pipe and I can't auth (#4.3.0)\r\n"
AUTH_CHILD = b"454 oops, problem with child and I can't auth (#4.3.0)\r\n"

#: RFC 3463 codes of the replies qmail gives without one (keyed by the reply);
#: MAIL's and RCPT's "250 ok" and the reply to DATA pass theirs explicitly
CODES = {
    OK: b"2.0.0", FLUSHED: b"2.0.0", VRFY: b"2.0.0", HELP: b"2.0.0",
    STRAY_NEWLINE: b"4.6.0", TLS_READY: b"2.0.0",
}
MAIL_OK = b"2.1.0"
RCPT_OK = b"2.1.5"
SENT = b"2.0.0"


def enhance(reply: bytes, code: bytes | None = None) -> bytes:
    """``reply`` with its enhanced status code after the reply code (RFC 2034):
    ``code``, else the ``(#x.y.z)`` it carries, else its :data:`CODES` entry.

    Only one-line 2xx, 4xx and 5xx replies get one (not 220/250 greetings,
    which the caller does not pass, nor 334 and 354).
    """
    if reply[:1] not in b"245" or reply[3:4] != b" " or reply.count(b"\r\n") != 1:
        return reply
    if code is None:
        i = reply.rfind(b"(#")
        j = reply.find(b")", i)
        code = reply[i + 2:j] if i >= 0 and j > 0 else CODES.get(reply)
        if code is None:
            return reply
    return reply[:4] + code + b" " + reply[4:]


def ehlo(greeting: bytes, starttls: bool = False, auth: bool = False, size: int = 0,
         enhanced: bool = False) -> bytes:
    """EHLO's reply: ``250-greeting`` then a line a keyword, the last with ``250 ``;
    without extensions it is qmail's, ``EHLO + greeting + EHLO_KEYWORDS``."""
    lines = [greeting, *([KW_STARTTLS] if starttls else ()), *(KW_AUTH if auth else ()),
             *KW_BASE, *([KW_SIZE % size] if size else ()), *([KW_ENHANCED] if enhanced else ())]
    return b"".join(b"250-" + k + CRLF for k in lines[:-1]) + b"250 " + lines[-1] + CRLF
