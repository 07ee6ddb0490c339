"""Recipient checking at RCPT time (control/realrcptto), as Paul Jarc's realrcptto
patch for qmail-smtpd does it: refuse a local recipient that qmail-local would
bounce with "Sorry, no mailbox here by that name".

For a recipient (after RELAYCLIENT) the steps are qmail's own:

1. qmail-send's rewriting (:meth:`mta.send_rewrite.Controls.rewrite`: percenthack,
   locals, virtualdomains).  A remote recipient is not checked.
2. qmail-lspawn's assignment (:func:`mta.qmail_lspawn.assignment`: users/cdb, then
   qmail-getpw).  No account and no ``alias`` account: refused, as the patch does.
3. qmail-local's .qmail search (:func:`mta.dotqmail.search`, in the home directory):
   with no extension (dash empty) the address always has a delivery; with one,
   ``.qmail-ext`` or a ``-default`` must exist.

Anything that cannot be decided here - users/cdb unreadable, a home directory
that cannot be entered, a .qmail file that cannot be opened or is writable - is
accepted: delivery will decide (and defer) as without the check.  An OSError
reading the control files is left to the caller (qmail-smtpd's 421).
"""
from __future__ import annotations

import os

from pyqmail import control

#: the reply of the realrcptto patch
NO_MAILBOX = b"550 sorry, no mailbox here by that name. (#5.1.1)\r\n"


def configured() -> "Checker | None":
    """A :class:`Checker` if control/realrcptto holds a non-zero number, else None."""
    return Checker() if control.readint("realrcptto", 0) else None


class Checker:
    """The rewriting controls, read once per connection; call it with a recipient."""

    def __init__(self) -> None:
        from mta.send_rewrite import Controls

        self.controls = Controls()

    def __call__(self, addr: bytes) -> bool:
        """False if ``addr`` is local and qmail-local would find no mailbox for it."""
        channel, recip = self.controls.rewrite(addr)
        if channel != 0:
            return True
        return mailbox(recip[:recip.rfind(b"@")])


def mailbox(local: bytes) -> bool:
    """Would qmail-lspawn and qmail-local find a delivery for the local part ``local``?"""
    from mta.qmail_lspawn import assignment
    from pyqmail.users import QLX_NOALIAS

    if not local:
        return True  # qmail-lspawn delivers nothing, successfully
    a = assignment(local)
    if isinstance(a, int):
        return a != QLX_NOALIAS  # users/cdb or a home unreadable now: let delivery say
    if not a.dash:
        return True  # .qmail or the default delivery
    return dotqmail_exists(a.home, a.dash, a.ext)


def dotqmail_exists(home: bytes, dash: bytes, ext: bytes) -> bool:
    """Does ``home`` hold a .qmail file for ``dash``+``ext`` (exact or -default)?
    A home or file that cannot be read counts as one."""
    from mta import dotqmail
    from pyqmail.strerr import Die

    here = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        try:
            os.chdir(home)
        except OSError:
            return True
        try:
            fd = dotqmail.search(dash, ext)[0]
        except Die:
            return True
        if fd is None:
            return False
        os.close(fd)
        return True
    finally:
        os.fchdir(here)
        os.close(here)
