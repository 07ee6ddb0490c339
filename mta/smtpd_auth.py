"""SMTP AUTH LOGIN and PLAIN for qmail-smtpd (RFC 4954), as the classic
qmail-smtpd-auth patch: ``qmail-smtpd hostname checkprogram subprogram ...``.

The login name and password go to ``checkprogram subprogram ...`` (any
checkpassword-compatible program, exec'd in a forked child) on descriptor 3
as ``user\\0pass\\0\\0``; exit 0 means yes.  Then RELAYCLIENT is "" for the
rest of the session and the login name is TCPREMOTEINFO (so the
``Received:`` line shows ``user@ip``).  A refusal costs the client
:data:`AUTHSLEEP` seconds, as with the patch.  The program gets
``timeoutsmtpd`` seconds to answer before it is killed.  With
``control/forcetls`` holding a non-zero number, AUTH waits for STARTTLS.
"""
from __future__ import annotations

import os
import select
import time
from binascii import Error as Base64Error
from binascii import a2b_base64

import _signal

from mta import smtpd_replies as R
from pyqmail import pathexec

#: seconds a failed AUTH waits before its 535
AUTHSLEEP = 5
MAXLINE = 65536


class Malformed(Exception):
    """Bad base64, or no login name or password."""


class Cancelled(Exception):
    """The client answered ``*``."""


def auth(s, arg: bytes) -> None:
    """The AUTH command of the session ``s`` (a :class:`mta.qmail_smtpd.Session`)."""
    if s.authd:
        s.out(R.AUTH_ALREADY)
        return
    if s.seenmail:
        s.out(R.AUTH_IN_MAIL)
        return
    if not s.checkargs:
        s.out(R.AUTH_NOT_AVAILABLE)
        return
    if s.c.forcetls and s.tls is None:
        s.out(R.AUTH_NEEDS_TLS)
        return
    mech, _, rest = arg.partition(b" ")
    fun = MECHANISMS.get(mech.lower())
    if fun is None:
        s.out(R.AUTH_UNKNOWN)
        return
    try:
        user, password = fun(s, rest.lstrip(b" "))
    except Malformed:
        s.out(R.AUTH_MALFORMED)
        return
    except Cancelled:
        s.out(R.AUTH_CANCELLED)
        return
    result = check(s.checkargs, user, password, s.conn.timeout)
    if result is True:
        s.authd = True
        s.relayclient = b""
        s.remoteinfo = user
        os.environb[b"TCPREMOTEINFO"] = user
        s.out(R.AUTH_OK)
    elif result is False:
        s.conn.flush()
        time.sleep(AUTHSLEEP)
        s.out(R.AUTH_FAILED)
    else:
        s.out(result)


def decode(data: bytes) -> bytes:
    try:
        return a2b_base64(data, strict_mode=True)
    except (Base64Error, ValueError):
        raise Malformed from None


def getline(s) -> bytes:
    """The client's next line of the exchange (after a 334)."""
    s.conn.flush()
    line = s.conn.getline(MAXLINE)
    if line[-1:] == b"\r":
        line = line[:-1]
    if line == b"*":
        raise Cancelled
    return line


def cstring(data: bytes) -> bytes:
    """What C sees of ``data``: up to its first NUL."""
    return data.split(b"\0", 1)[0]


def login(s, arg: bytes) -> tuple[bytes, bytes]:
    if arg:
        user = decode(arg)
    else:
        s.out(R.AUTH_USERNAME)
        user = decode(getline(s))
    s.out(R.AUTH_PASSWORD)
    password = decode(getline(s))
    user, password = cstring(user), cstring(password)
    if not user or not password:
        raise Malformed
    return user, password


def plain(s, arg: bytes) -> tuple[bytes, bytes]:
    """``authzid\\0user\\0password``; the authorization identity is ignored."""
    if arg:
        data = decode(arg)
    else:
        s.out(R.AUTH_PLAIN)
        data = decode(getline(s))
    fields = data.split(b"\0")
    user = fields[1] if len(fields) > 1 else b""
    password = fields[2] if len(fields) > 2 else b""
    if not user or not password:
        raise Malformed
    return user, password


MECHANISMS = {b"login": login, b"plain": plain}


def check(argv: list[str], user: bytes, password: bytes, timeout: float) -> bool | bytes:
    """Run the checkpassword program ``argv``: True for yes, False for no,
    or the 454 reply when it could not be asked."""
    try:
        rfd, wfd = os.pipe()
    except OSError:
        return R.AUTH_PIPE
    try:
        pid = os.fork()
    except OSError:
        os.close(rfd)
        os.close(wfd)
        return R.AUTH_FORK
    if pid == 0:  # pragma: no cover (the child execs)
        try:
            os.close(wfd)
            if rfd != 3:
                os.dup2(rfd, 3)
            os.set_inheritable(3, True)
            _signal.signal(_signal.SIGPIPE, _signal.SIG_DFL)
            pathexec.run(argv)
        finally:
            os._exit(1)
    os.close(rfd)
    deadline = time.monotonic() + timeout
    try:
        view = memoryview(user + b"\0" + password + b"\0\0")
        while view:
            if not select.select([], [wfd], [], max(0, deadline - time.monotonic()))[1]:
                raise OSError("timeout")
            view = view[os.write(wfd, view):]
    except OSError:
        os.close(wfd)
        reap(pid, 0)
        return R.AUTH_WRITE
    os.close(wfd)
    status = reap(pid, deadline - time.monotonic())
    if status is None or not os.WIFEXITED(status):
        return R.AUTH_CHILD
    return os.WEXITSTATUS(status) == 0


def reap(pid: int, wait: float) -> int | None:
    """The child's wait status within ``wait`` seconds; else it is killed and None."""
    try:
        fd = os.pidfd_open(pid)
    except (AttributeError, OSError):
        fd = -1
    if fd >= 0:
        try:
            ready = select.select([fd], [], [], max(0, wait))[0]
        finally:
            os.close(fd)
    else:  # no pidfd (an old kernel): poll
        end = time.monotonic() + wait
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                return status
            if time.monotonic() >= end:
                break
            time.sleep(0.01)
        ready = []
    if not ready:
        try:
            os.kill(pid, _signal.SIGKILL)
        except OSError:
            pass
        os.waitpid(pid, 0)
        return None
    return os.waitpid(pid, 0)[1]
