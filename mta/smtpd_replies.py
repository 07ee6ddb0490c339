"""qmail-smtpd's replies, the exact texts of qmail 1.03's qmail-smtpd.c.

Replies that carry the greeting (220, HELO's and EHLO's 250, QUIT's 221) or
a figure (DATA's 250) are built in :mod:`mta.qmail_smtpd` from the parts here.
"""

# the greeting's frame: "220 " + greeting + " ESMTP"
GREET = b"220 "
ESMTP = b" ESMTP\r\n"
HELO = b"250 "
EHLO = b"250-"
EHLO_KEYWORDS = b"\r\n250-PIPELINING\r\n250 8BITMIME\r\n"
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
