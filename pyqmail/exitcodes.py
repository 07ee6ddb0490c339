"""Exit codes shared by the programs, as the originals use them."""

OK = 0
#: usage errors and permanent failures (daemontools, ucspi-tcp, qmail)
PERM = 100
#: temporary failures: the caller may try again later
TEMP = 111

# svok: the service is not running
SVOK_NOT_RUNNING = 100
