"""softlimit: run a child with new soft resource limits.

Usage: ``softlimit [-a allbytes] [-c corebytes] [-d databytes] [-f filebytes]
[-l lockbytes] [-m membytes] [-o openfiles] [-p processes] [-r residentbytes]
[-s stackbytes] [-t cpusecs] child``.  A value of ``=`` means the hard limit;
a number above the hard limit is cut down to it.  ``-m`` sets the data, stack,
locked-memory and address-space limits at once, as softlimit.c does on Linux.
"""
from __future__ import annotations

import errno
import resource as R

from pyqmail import pathexec
from pyqmail.sgetopt import OptError, Options
from pyqmail.strerr import die, run

FATAL = "softlimit: fatal: "
USAGE = ("softlimit: usage: softlimit [-a allbytes] [-c corebytes] [-d databytes] "
         "[-f filebytes] [-l lockbytes] [-m membytes] [-o openfiles] [-p processes] "
         "[-r residentbytes] [-s stackbytes] [-t cpusecs] child")

#: the limits each option sets, in softlimit.c's order (Linux has no RLIMIT_VMEM)
LIMITS = {
    "a": (R.RLIMIT_AS,),
    "c": (R.RLIMIT_CORE,),
    "d": (R.RLIMIT_DATA,),
    "f": (R.RLIMIT_FSIZE,),
    "l": (R.RLIMIT_MEMLOCK,),
    "m": (R.RLIMIT_DATA, R.RLIMIT_STACK, R.RLIMIT_MEMLOCK, R.RLIMIT_AS),
    "o": (R.RLIMIT_NOFILE,),
    "p": (R.RLIMIT_NPROC,),
    "r": (R.RLIMIT_RSS,),
    "s": (R.RLIMIT_STACK,),
    "t": (R.RLIMIT_CPU,),
}
_MASK = (1 << 64) - 1  # rlim_t; Python shows RLIM_INFINITY and above 2**63 as negative


def scan_ulong(arg: str) -> int | None:
    """The number in ``arg`` as scan_ulong() reads it (wrapping at 2**64), or None
    if anything follows the digits.  An empty string is 0, as in C."""
    if arg and not (arg.isascii() and arg.isdigit()):
        return None
    return int(arg or "0") & _MASK


def setlimit(resource: int, arg: str) -> None:
    """Set the soft limit of ``resource`` to ``arg`` (``=``: the hard limit)."""
    try:
        cur, hard = R.getrlimit(resource)
    except OSError as e:
        die(111, FATAL, "getrlimit failed: ", exc=e)
    if arg == "=":
        cur = hard
    else:
        u = scan_ulong(arg)
        if u is None:
            die(100, USAGE)
        cur = hard if u > hard & _MASK else u
    if cur >= 1 << 63:
        cur -= 1 << 64
    try:
        R.setrlimit(resource, (cur, hard))
    except ValueError as e:  # Python's words for EINVAL and EPERM
        code = errno.EPERM if "not allowed" in str(e) else errno.EINVAL
        die(111, FATAL, "setrlimit failed: ", exc=OSError(code, ""))
    except OSError as e:
        die(111, FATAL, "setrlimit failed: ", exc=e)


def main(argv: list[str]) -> int:
    """Apply the options' limits in order and exec the child."""
    opts = Options(argv, "a:c:d:f:l:m:o:p:r:s:t:")
    try:
        for opt, arg in opts:
            for resource in LIMITS[opt]:
                setlimit(resource, arg)
    except OptError:
        die(100, USAGE)
    child = opts.rest
    if not child:
        die(100, USAGE)
    pathexec.chain(FATAL, child)


def cli() -> None:
    run(main)


if __name__ == "__main__":
    cli()
