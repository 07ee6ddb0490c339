"""dot-forward: read a .forward file under qmail (dot-forward(1) of dot-forward 0.71).

Usage, in .qmail: ``| dot-forward [ -nN ] file ...``.  Uses the first file
that exists and is not empty (no instruction in it); with none, exits 0 so
qmail-local goes on with the next line of .qmail.

Each line that does not start with ``#`` is a list of addresses, parsed as
in a message header (comments, ``Name <addr>``, quoted strings; see
:mod:`mta.addrparse`), from right to left.  An address without ``@`` that is
``$USER``, or one that is ``$USER@$HOST`` (any case), means delivery to the
user: dot-forward then exits 0 instead of 99, after forwarding to the
others.  ``|command`` (without an unquoted ``@``) runs ``/bin/sh -c
command`` at once, fed ``$UFLINE``, ``$RPLINE``, ``$DTLINE`` and the message;
``/file`` is refused (111: "file delivery /file not supported").  Other
addresses are completed with the defaulthost, plusdomain and defaultdomain
controls and get the message, after ``$DTLINE``, through qmail-queue with the
envelope sender ``$NEWSENDER``; ``dot-forward: info: qp N`` is printed.

-n prints the instructions (``forward a@b``, ``pipe through cmd``, ``direct
delivery``, ``skipping empty file f``) on stderr and follows none; -N
(default) follows them.  Exit 99 when the file was obeyed; 0 as above; 100
if a command fails for good (exit 64, 65, 70, 76, 77, 78, 100, 112) or the
queue refuses the message; 111 for temporary errors.
"""
from __future__ import annotations

import _signal
import errno
import os

from mta.addrparse import ParseError, cstr, has_at, qualify, read_controls, tokenize, walk
from mta.ffio import Exit, chunks, judge, lines, read_all
from mta.forwardcdb import lower
from mta.token822 import Token, unquote
from pyqmail import control, spawn
from pyqmail.qmailqueue import Queue
from pyqmail.sgetopt import OptError, sgetopt
from pyqmail.strerr import die, run, write2

FATAL = "dot-forward: fatal: "
INFO = "dot-forward: info: "
USAGE = "dot-forward: usage: dot-forward [ -nN ] file ..."


class DotForward:
    """The instructions of one .forward file, followed (or shown with -n)."""

    def __init__(self, deliver: bool) -> None:
        env = os.environb
        self.deliver = deliver
        self.ufline = env.get(b"UFLINE", b"")
        self.rpline = env.get(b"RPLINE", b"")
        self.dtline = env.get(b"DTLINE", b"")
        self.sender = env.get(b"NEWSENDER", b"")
        self.user = lower(env.get(b"USER", b""))
        self.host = lower(env.get(b"HOST", b""))
        self.controls = read_controls(FATAL, control.qmail_home())
        self.targets: list[bytes] = []
        self.acted = False
        self.direct = False

    def gotaddr(self, toks: list[Token]) -> None:
        address = unquote(toks)
        if not address:
            return
        hasat = has_at(toks)
        if (not hasat and lower(address) == self.user) or \
                (hasat and lower(address) == self.user + b"@" + self.host):
            self.acted = self.direct = True
            return
        if not hasat and address[:1] == b"/":
            die(111, FATAL, "file delivery ", os.fsdecode(cstr(address)), " not supported")
        if not hasat and address[:1] == b"|":
            self.acted = True
            self.program(cstr(address)[1:])
            return
        if not hasat:
            address += b"@" + self.controls.defaulthost
        address = cstr(qualify(address, self.controls, fill_host=False))
        self.targets.append(address)
        if not self.deliver:
            write2("forward " + os.fsdecode(address) + "\n")

    def program(self, cmd: bytes) -> None:
        """Feed UFLINE, RPLINE, DTLINE and the message to ``/bin/sh -c cmd``."""
        if not self.deliver:
            write2("pipe through " + os.fsdecode(cmd) + "\n")
            return
        try:
            r, w = os.pipe()
        except OSError as e:
            die(111, FATAL, "unable to create pipe: ", exc=e)
        try:
            pid = spawn.start(["/bin/sh", "-c", os.fsdecode(cmd)], stdin=r)
        except OSError as e:
            if getattr(e, "filename", None) is None:
                die(111, FATAL, "unable to fork: ", exc=e)
            die(111, FATAL, "unable to run /bin/sh: ", exc=e)
        os.close(r)
        writing = True
        for data in self._message(self.ufline + self.rpline + self.dtline):
            while writing and data:  # as the original's blindwrite: the command
                try:                 # may leave the message unread
                    data = data[os.write(w, data):]
                except OSError:
                    writing = False
        os.close(w)
        code = spawn.wait(pid)
        if code == spawn.CRASHED:
            die(111, FATAL, "child crashed")
        judge(code)
        try:
            os.lseek(0, 0, os.SEEK_SET)
        except OSError as e:
            die(111, FATAL, "unable to rewind input: ", exc=e)

    @staticmethod
    def _message(first: bytes):
        """``first``, then the message from where fd 0 is."""
        yield first
        yield from chunks(0, FATAL, "unable to read message: ")

    def parseline(self, line: bytes) -> None:
        try:
            walk(tokenize(line), self.gotaddr)
        except ParseError:
            die(111, FATAL, "unable to parse this line: ", os.fsdecode(cstr(line)))

    def forward(self) -> None:
        """Give the message to qmail-queue for the collected addresses."""
        try:
            qq = Queue()
        except OSError as e:
            die(111, FATAL, "unable to run qmail-queue: ", exc=e)
        for data in self._message(self.dtline):
            qq.put(data)
        qq.sender(self.sender)
        for t in self.targets:
            qq.recipient(t)
        answer = qq.close()
        if answer:
            die(100 if answer[0] == "D" else 111, FATAL, "unable to forward message: ", answer[1:])
        write2(f"{INFO}qp {qq.qp}\n")

    def try_file(self, fn: str) -> None:
        """Obey ``fn`` and exit, or return if it does not exist or is empty."""
        try:
            fd = os.open(fn, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as e:
            if e.errno == errno.ENOENT:
                return
            die(111, FATAL, "unable to open ", fn, ": ", exc=e)
        try:
            data = read_all(fd, FATAL, "unable to read ", fn, ": ")
        finally:
            os.close(fd)
        self.targets = []
        self.acted = self.direct = False
        for line in lines(data):
            if line[:1] != b"#":
                self.parseline(line)
        if self.targets:
            self.acted = True
            if self.deliver:
                self.forward()
        if self.direct:
            if not self.deliver:
                write2("direct delivery\n")
            raise Exit(0)
        if not self.acted:
            if not self.deliver:
                write2("skipping empty file " + fn + "\n")
            return
        raise Exit(99)


def main(argv: list[str]) -> int:
    _signal.signal(_signal.SIGPIPE, _signal.SIG_IGN)
    try:
        opts, files = sgetopt(argv, "nN")
    except OptError:
        die(100, USAGE)
    deliver = True
    for opt, _ in opts:
        deliver = opt == "N"
    df = DotForward(deliver)
    try:
        for fn in files:
            df.try_file(fn)
    except Exit as e:
        return e.code
    if not deliver:
        write2("direct delivery\n")
    return 0


def cli() -> None:
    run(main)


if __name__ == "__main__":
    cli()
