"""ucspi-tcp 0.88 in Python: tcpserver, tcprules, rblsmtpd and friends."""
