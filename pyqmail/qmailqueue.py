"""Talking to qmail-queue, as qmail's qmail.c: the message on its fd 0, the
envelope (``Fsender\\0``, ``Trecip\\0``..., ``\\0``) on its fd 1.

The program is ``$QMAILQUEUE`` if set, else ``bin/qmail-queue``, run in the
qmail home directory (a relative name is taken from there).  When that is
our own qmail-queue and we are neither root nor the queue's owner, it would
only pass the message on to the queue service: we talk to the service
directly instead of starting it (the service records our pid, which is then
the "qp").  :meth:`Queue.close`
returns qmail.c's answer: ``""`` for success, else ``D`` (permanent) or ``Z``
(temporary) and the text.  Callers must ignore SIGPIPE, as qmail's do, so a
queue that quits early shows as an error and not as a dead caller.
"""
from __future__ import annotations

import os

from pyqmail import control
from pyqmail.fsutil import write_all

_EXIT = {
    115: "Denvelope address too long for qq (#5.1.3)",
    11: "Denvelope address too long for qq (#5.1.3)",
    31: "Dmail server permanently rejected message (#5.3.0)",
    51: "Zqq out of memory (#4.3.0)",
    52: "Zqq timeout (#4.3.0)",
    53: "Zqq write error or disk full (#4.3.0)",
    54: "Zqq read error (#4.3.0)",
    55: "Zqq unable to read configuration (#4.3.0)",
    56: "Zqq trouble making network connection (#4.3.0)",
    61: "Zqq trouble in home directory (#4.3.0)",
    62: "Zqq trouble creating files in queue (#4.3.0)",
    63: "Zqq trouble creating files in queue (#4.3.0)",
    64: "Zqq trouble creating files in queue (#4.3.0)",
    65: "Zqq trouble creating files in queue (#4.3.0)",
    66: "Zqq trouble creating files in queue (#4.3.0)",
    71: "Zmail server temporarily rejected message (#4.3.0)",
    72: "Zconnection to mail server timed out (#4.4.1)",
    73: "Zconnection to mail server rejected (#4.4.1)",
    74: "Zcommunication with mail server failed (#4.4.2)",
    81: "Zqq internal bug (#4.3.0)",
    91: "Zqq internal bug (#4.3.0)",
    120: "Zunable to exec qq (#4.3.0)",
}


def program() -> str:
    """The queue program: ``$QMAILQUEUE`` or ``bin/qmail-queue``, under QMAILHOME."""
    return os.path.join(control.qmail_home(), os.environ.get("QMAILQUEUE") or "bin/qmail-queue")


def _via_service(prog: str) -> bool:
    """True if ``prog`` is our qmail-queue and would hand the message to the service."""
    if os.environ.get("QMAILQUEUE") or os.geteuid() == 0:
        return False
    from pyqmail import preload, queueproto

    try:
        if os.geteuid() == queueproto.queue_owner():
            return False
    except OSError:
        return False
    return preload.entry(prog) == "mta.qmail_queue:cli"


class Queue:
    """One message on its way into the queue (qmail_open ... qmail_close)."""

    def __init__(self) -> None:
        """Start qmail-queue (qmail_open); OSError if the pipes or fork fail."""
        prog = program()
        home = control.qmail_home()
        self.flagerr = False
        self._buf: list[bytes] = []
        self.client = None
        self.inproc = _via_service(prog)
        if self.inproc:
            from pyqmail import queueproto

            self.pid = os.getpid()
            self.fdm = self.fde = -1
            try:
                self.client = queueproto.Client()
            except OSError:
                self.code = queueproto.NOCONNECT
            else:
                self.code = None
            return
        mr, mw = os.pipe()
        try:
            er, ew = os.pipe()
        except OSError:
            os.close(mr)
            os.close(mw)
            raise
        try:
            self.pid = os.fork()
        except OSError:
            for fd in (mr, mw, er, ew):
                os.close(fd)
            raise
        if self.pid == 0:  # pragma: no cover - the child
            try:
                os.dup2(mr, 0)
                os.dup2(er, 1)
            except OSError:
                os._exit(120)
            try:
                os.chdir(home)
            except OSError:
                os._exit(61)
            try:
                os.execv(prog, [prog])
            except BaseException:
                pass
            os._exit(120)
        os.close(mr)
        os.close(er)
        self.fdm, self.fde = mw, ew

    @property
    def qp(self) -> int:
        """qmail's "qp": the queue program's pid."""
        return self.pid

    def fail(self) -> None:
        self.flagerr = True

    def put(self, data: bytes) -> None:
        """Send part of the message."""
        if self.flagerr or not data:
            return
        if self.inproc:
            if self.client is not None:
                self.client.put(data)
            return
        try:
            write_all(self.fdm if self.fdm >= 0 else self.fde, data)
        except OSError:
            self.flagerr = True

    def sender(self, addr: bytes) -> None:
        """End the message and send the envelope sender (qmail_from)."""
        if self.client is not None:
            self.client.end_message()
        if self.fdm >= 0:
            os.close(self.fdm)
        self.fdm = -1
        self._buf.append(b"F" + addr + b"\0")

    def recipient(self, addr: bytes) -> None:
        self._buf.append(b"T" + addr + b"\0")

    def close(self) -> str:
        """Finish the envelope, wait for the queue program; ``""`` or ``D``/``Z`` + text."""
        if self.fdm >= 0:
            os.close(self.fdm)
            self.fdm = -1
        self._buf.append(b"\0")
        if self.inproc:  # the queue service, directly
            if self.client is not None and self.flagerr:
                # no envelope, as qmail-queue gets none then: nothing is queued
                # (the service still answers, so it never writes to a closed socket)
                import socket  # loaded already, by queueproto

                try:
                    self.client.sock.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
                self.code = self.client.finish()
                self.client = None
            elif self.client is not None:
                self.client.envelope(b"".join(self._buf))
                self.code = self.client.finish()
                self.client = None
            return answer(self.code, self.flagerr)
        self.put(b"".join(self._buf))
        os.close(self.fde)
        while True:
            try:
                pid, wstat = os.waitpid(self.pid, 0)
                break
            except ChildProcessError:
                return "Zqq waitpid surprise (#4.3.0)"
        if os.WIFSIGNALED(wstat):
            return "Zqq crashed (#4.3.0)"
        return answer(os.WEXITSTATUS(wstat), self.flagerr)


def answer(code: int, flagerr: bool) -> str:
    """qmail_close's text for qmail-queue's exit code: ``""``, or D/Z and the text."""
    if code == 0:
        return "Zqq read error (#4.3.0)" if flagerr else ""
    if code in _EXIT:
        return _EXIT[code]
    if 11 <= code <= 40:
        return "Dqq permanent problem (#5.3.0)"
    return "Zqq temporary problem (#4.3.0)"


def queue_stdin(fatal: str, sender: bytes, dtline: bytes, recips: list[bytes]) -> int:
    """Queue stdin (from where it is) after ``dtline``; return the qp or die."""
    from pyqmail.strerr import die

    try:
        qq = Queue()
    except OSError as e:
        die(111, fatal, "unable to fork: ", exc=e)
    qq.put(dtline)
    try:
        while True:
            data = os.read(0, 65536)
            if not data:
                break
            qq.put(data)
    except OSError as e:
        die(111, fatal, "unable to read message: ", exc=e)
    qq.sender(sender)
    for r in recips:
        qq.recipient(r)
    answer = qq.close()
    if answer:
        die(100 if answer[0] == "D" else 111, fatal, answer[1:])
    return qq.qp
