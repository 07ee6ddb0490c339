"""Looking up the account a program is told to become or describe."""
from __future__ import annotations

import pwd

from pyqmail.strerr import die


def getpw(account: str, fatal: str) -> pwd.struct_passwd:
    """The passwd entry of ``account``, or die 111 ``fatal: unknown account NAME``."""
    try:
        return pwd.getpwnam(account)
    except KeyError:
        die(111, fatal, "unknown account ", account)
