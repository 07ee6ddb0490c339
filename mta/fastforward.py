"""fastforward: forward mail according to a cdb database (fastforward(1) of fastforward 0.51).

Usage, in .qmail-default: ``| fastforward [ -nNpPdD ] cdb``.  The recipient
is ``$RECIPIENT`` (with -d: ``$DEFAULT@$HOST``, or ``$EXT@$HOST``).  It is
looked up as ``user@host.dom``, ``@host.dom`` and ``user@``, without regard
to case; the first found is obeyed (record format in :mod:`mta.forwardcdb`).
An owner (``?`` record) found the same way becomes the envelope sender,
unless the sender is empty or ``#@[]``.

Instructions are followed depth first: programs run at once (``|`` under
``sh -c``, ``!`` under preline), addresses that are targets themselves are
expanded (unless they have an owner: those are forwarded as they are), lists
are read (they must be world-readable), and each address or list is used
once.  The addresses left get the message, after ``$DTLINE``, through
qmail-queue with the envelope sender ``$SENDER`` (or the owner).

-n prints what would be done (``run |prog``, ``from <s>``, ``to <r>``, or
``no forwarding``) on stderr and neither reads nor forwards the message;
-N (default) forwards.  -p passes through: exit 0 if the recipient is not
in cdb, 99 once forwarded; -P (default): bounce (100, ``Sorry, no mailbox
here by that name. (#5.1.1)``) if not found, 0 once forwarded.  A program
exiting 64, 65, 70, 76, 77, 78, 100 or 112 makes the delivery fail for good
(100), any other failure is temporary (111); so are an unreadable cdb or list.
"""
from __future__ import annotations

import _signal
import errno
import os
import sys

from mta.ffio import Exit, judge, read_all
from mta.forwardcdb import entries
from pyqmail import spawn
from pyqmail.cdb import FormatError, Reader
from pyqmail.errstr import error_str
from pyqmail.qmailqueue import queue_stdin
from pyqmail.sgetopt import OptError, sgetopt
from pyqmail.strerr import die, run, write2

FATAL = "fastforward: fatal: "
USAGE = "fastforward: usage: fastforward [ -nNpP ] data.cdb"
_UPPER = bytes.maketrans(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ", b"abcdefghijklmnopqrstuvwxyz")


def printsafe(s: bytes) -> str:
    """``s`` for -n output: control bytes and bytes above 127 (a signed char
    below 32) shown as ``_``."""
    return "".join("_" if c < 32 or c >= 128 else chr(c) for c in s)


def our_program(name: str, argv0: str) -> str:
    """Our own ``name`` beside the running script, else ``name`` for a PATH search."""
    where = os.path.dirname(os.path.realpath(argv0)) if "/" in argv0 else os.path.dirname(sys.executable)
    path = os.path.join(where, name)
    return path if os.access(path, os.X_OK) else name


class Forwarder:
    """The state of one run: the database, what is left to do, what was done."""

    def __init__(self, db: Reader, fncdb: str, deliver: bool, argv0: str) -> None:
        self.db = db
        self.fncdb = fncdb
        self.deliver = deliver
        self.argv0 = argv0
        self.todo: list[bytes] = []
        self.forward: list[bytes] = []
        self.done: set[bytes] = set()

    def _readerror(self, e: OSError):
        if isinstance(e, FormatError):  # the original's cdb_seek calls a short read EIO
            die(111, FATAL, "unable to read ", self.fncdb, ": ", error_str(errno.EIO))
        die(111, FATAL, "unable to read ", self.fncdb, ": ", exc=e)

    def _keys(self, wild: bool, prepend: bytes, addr: bytes) -> list[bytes]:
        keys = [prepend + addr]
        if wild:
            at = addr.rfind(b"@")
            if at >= 0:
                keys += [prepend + addr[at:], prepend + addr[:at + 1]]
        return [k.translate(_UPPER) for k in keys]

    def has(self, wild: bool, prepend: bytes, addr: bytes) -> bool:
        """findtarget: is there a record for ``addr`` (or its wildcards)?"""
        try:
            return any(k in self.db for k in self._keys(wild, prepend, addr))
        except OSError as e:
            self._readerror(e)

    def get(self, wild: bool, prepend: bytes, addr: bytes) -> bytes | None:
        """gettarget: the data of the first record found, or None."""
        try:
            for k in self._keys(wild, prepend, addr):
                data = self.db.find(k)
                if data is not None:
                    return data
        except OSError as e:
            self._readerror(e)
        return None

    def dofile(self, fn: bytes) -> None:
        """Queue the lists and addresses of the binary mailing list ``fn``."""
        name = os.fsdecode(fn)
        try:
            fd = os.open(fn, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as e:
            die(111, FATAL, "unable to read ", name, ": ", exc=e)
        try:
            try:
                st = os.fstat(fd)
            except OSError as e:
                die(111, FATAL, "unable to stat ", name, ": ", exc=e)
            if st.st_mode & 0o444 != 0o444:
                die(111, FATAL, name, " is not world-readable")
            data = read_all(fd, FATAL, "unable to read ", name, ": ")
        finally:
            os.close(fd)
        for e in entries(data):
            if e[:1] in (b".", b"/") or (e[:1] == b"&" and len(e) < 900):
                self.todo.append(e)

    def doprogram(self, arg: bytes) -> None:
        """Run ``arg`` (``|cmd`` or ``!cmd``) on the message, or say so with -n."""
        if not self.deliver:
            write2("run " + printsafe(arg) + "\n")
            return
        cmd = os.fsdecode(arg[1:])
        args = [our_program("preline", self.argv0), "sh", "-c", cmd] if arg[:1] == b"!" else ["sh", "-c", cmd]
        shown = os.fsdecode(arg)
        try:
            pid = spawn.start(args)
        except OSError as e:
            if getattr(e, "filename", None) is None:
                die(111, FATAL, "unable to fork: ", exc=e)
            die(111, FATAL, "unable to run ", shown, ": ", exc=e)
        code = spawn.wait(pid)
        if code == spawn.CRASHED:
            die(111, FATAL, "child crashed in ", shown)
        judge(code)
        try:
            os.lseek(0, 0, os.SEEK_SET)
        except OSError as e:
            die(111, FATAL, "unable to rewind input: ", exc=e)

    def dodata(self, data: bytes) -> None:
        """Obey the instructions of one ``:`` record."""
        for e in entries(data):
            first = e[:1]
            if first in (b"|", b"!"):
                self.doprogram(e)
            elif first in (b".", b"/") or (first == b"&" and len(e) < 900):
                self.todo.append(e)

    def dorecip(self, addr: bytes) -> None:
        """Expand ``addr`` if it is a target without an owner, else forward to it."""
        if not self.has(False, b"?", addr):
            data = self.get(False, b":", addr)
            if data is not None:
                self.dodata(data)
                return
        self.forward.append(addr)

    def work(self) -> None:
        """Follow the queued instructions, last queued first."""
        while self.todo:
            x = self.todo.pop()
            if x in self.done:
                continue
            self.done.add(x)
            if not x:
                continue
            if x[:1] in (b".", b"/"):
                self.dofile(x)
            else:
                self.dorecip(x[1:])


def recipient(flagdefault: bool) -> bytes:
    env = os.environb
    if not flagdefault:
        r = env.get(b"RECIPIENT")
        if r is None:
            die(100, FATAL, "$RECIPIENT must be set")
        return r
    local = env.get(b"DEFAULT")
    if local is None:
        local = env.get(b"EXT")
    if local is None:
        die(100, FATAL, "$DEFAULT or $EXT must be set")
    host = env.get(b"HOST")
    if host is None:
        die(100, FATAL, "$HOST must be set")
    return local + b"@" + host


def main(argv: list[str]) -> int:
    _signal.signal(_signal.SIGPIPE, _signal.SIG_IGN)
    try:
        return forward(argv)
    except Exit as e:
        return e.code


def forward(argv: list[str]) -> int:
    dtline = os.environb.get(b"DTLINE", b"")
    sender = os.environb.get(b"SENDER", b"original envelope sender")
    try:
        opts, args = sgetopt(argv, "nNpPdD")
    except OptError:
        die(100, USAGE)
    deliver, passthrough, flagdefault = True, False, False
    for opt, _ in opts:
        if opt in "nN":
            deliver = opt == "N"
        elif opt in "pP":
            passthrough = opt == "p"
        else:
            flagdefault = opt == "d"
    if not args:
        die(100, USAGE)
    fncdb = args[0]
    try:
        db = Reader(fncdb)
    except OSError as e:
        die(111, FATAL, "unable to read ", fncdb, ": ", exc=e)
    ff = Forwarder(db, fncdb, deliver, argv[0] if argv else "")
    rcpt = recipient(flagdefault)
    ff.done.add(rcpt)

    if sender and sender != b"#@[]":
        owner = ff.get(True, b"?", rcpt)
        if owner is not None:
            sender = owner
    data = ff.get(True, b":", rcpt)
    if data is None:
        if passthrough:
            return 0
        die(100, "Sorry, no mailbox here by that name. (#5.1.1)")
    ff.dodata(data)
    ff.work()

    done = 99 if passthrough else 0
    if not ff.forward:
        if not deliver:
            write2("no forwarding\n")
        return done
    recips = ff.forward[::-1]
    if not deliver:
        write2("from <" + printsafe(sender) + ">\n" + "".join("to <" + printsafe(r) + ">\n" for r in recips))
        return done
    qp = queue_stdin(FATAL, sender, dtline, recips)
    die(done, f"fastforward: qp {qp}")


def cli() -> None:
    run(main)


if __name__ == "__main__":
    cli()
