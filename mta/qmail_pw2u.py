"""qmail-pw2u: turn a passwd file into users/assign (qmail-pw2u(8)).

Usage: ``qmail-pw2u [-/ohHuUC] [-c break] < passwd > assign``.  As qmail
1.03's qmail-pw2u: for each account with a non-zero uid (and, unless ``-u``,
no upper-case letter in its name) it writes ``=name:user:uid:gid:home:::``
and ``+name-:user:uid:gid:home:-::``; for the account ``alias`` also
``+:alias:uid:gid:home:-::``.  Files in ``QMAILHOME/users`` adjust this:
``include`` (only these accounts), ``exclude`` (not these), ``mailnames``
(``user:name1:name2...``, the addresses to use instead of the account name),
``subusers`` (``sub:user:pre:``, an address delivered as ``user``'s ``pre``
extension) and ``append`` (copied to the end).  A final ``.`` line follows.

Options: ``-o`` skip accounts whose home is missing or not theirs (the
default); ``-h`` stop if a home is missing; ``-H`` do not look at homes;
``-U`` skip upper-case names (the default), ``-u`` keep them; ``-c x`` makes
``x`` the extension separator instead of ``-``; ``-C`` no extensions; ``-/``
makes the dash ``-/``, so deliveries use ``home/.qmail-/...`` files.  Exits 0; 100 for a bad option;
111 with qmail-pw2u's message for anything else (there is no alias account,
a subuser's user is unknown, a home cannot be checked, I/O errors).
"""
from __future__ import annotations

import errno
import os
import sys

from pyqmail import control
from pyqmail.sgetopt import OptError, sgetopt
from pyqmail.strerr import die, run
from pyqmail.scan import scan_ulong

FATAL = "qmail-pw2u: fatal: "
ALIAS = b"alias"


def _die_read() -> None:
    die(111, FATAL, "unable to read input")


def read_lines(fd: int):
    """The lines of ``fd`` with their newlines, the last maybe without, as getln."""
    rest = b""
    while True:
        try:
            data = os.read(fd, 65536)
        except OSError:
            _die_read()
        if not data:
            if rest:
                yield rest
            return
        lines = (rest + data).split(b"\n")
        rest = lines.pop()
        for line in lines:
            yield line + b"\n"


def read_control(name: str) -> list[bytes] | None:
    """users/``name`` as qmail's control_readfile: lines without trailing
    blanks, blank and ``#`` lines dropped; None if the file does not exist."""
    try:
        with open(os.path.join("users", name), "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return None
    except OSError:
        die(111, FATAL, "unable to read controls")
    out = []
    for line in data.split(b"\n"):
        line = line.rstrip(b" \t")
        if line and not line.startswith(b"#"):
            out.append(line)
    return out


def _key(name: bytes) -> bytes:
    return name.lower()  # constmap compares ignoring ASCII case


class Pw2u:
    """The conversion, with its options and the users/ files already read."""

    def __init__(self) -> None:
        self.dashcolon = b"-:"
        self.brk = b"-"
        self.noupper = True
        self.homestrategy = 2  # 2: skip missing or foreign homes; 1: stop if missing; 0: ignore
        self.include: set[bytes] | None = None
        self.exclude: set[bytes] | None = None
        self.mailnames: dict[bytes, bytes] | None = None
        self.allusers: dict[bytes, bytes] = {}
        self.flagalias = False
        self.out: list[bytes] = []

    def load(self) -> None:
        incl = read_control("include")
        excl = read_control("exclude")
        mana = read_control("mailnames")
        if incl is not None:
            self.include = {_key(x) for x in incl}
        if excl is not None:
            self.exclude = {_key(x) for x in excl}
        if mana is not None:
            self.mailnames = {}
            for line in mana:  # constmap: lines without a colon are not keys; the last wins
                user, colon, names = line.partition(b":")
                if colon:
                    self.mailnames[_key(user)] = names

    def account(self, line: bytes) -> None:
        if b"\0" in line:
            return
        fields = line.split(b":", 6)
        if len(fields) < 7:  # user, passwd, uid, gid, gecos, home, then a colon
            return
        user, _, uidstr, gidstr, _, home = fields[:6]
        uid = scan_ulong(uidstr)[0]
        if not uid:
            return
        if self.noupper and any(65 <= c <= 90 for c in user):
            return
        if self.include is not None and _key(user) not in self.include:
            return
        if self.exclude is not None and _key(user) in self.exclude:
            return
        if self.homestrategy:
            try:
                st = os.stat(home)
            except OSError as e:
                if e.errno != errno.ENOENT or self.homestrategy == 1:
                    die(111, FATAL, "unable to stat ", os.fsdecode(home))
                return
            if st.st_uid != uid:
                return
        uugh = b":" + user + b":" + uidstr + b":" + gidstr + b":" + home + b":"
        self.allusers[_key(user)] = uugh
        out = self.out
        if user == ALIAS:
            out.append(b"+" + uugh + self.dashcolon + b":\n")
            self.flagalias = True
        names = None
        if self.mailnames is not None:
            names = self.mailnames.get(_key(user))
        if names is None:
            names = user
        for name in names.split(b":"):
            if not name:
                continue
            out.append(b"=" + name + uugh + b"::\n")
            if self.brk:
                out.append(b"+" + name + self.brk + uugh + self.dashcolon + b":\n")

    def subuser(self, line: bytes) -> None:
        sub, colon, rest = line.partition(b":")
        if not colon:
            return
        user, colon, rest = rest.partition(b":")
        if not colon:
            return
        uugh = self.allusers.get(_key(user))
        if uugh is None:
            die(111, FATAL, "unable to find ", os.fsdecode(user), " user for subuser")
        pre, colon, _ = rest.partition(b":")
        if not colon:
            return
        self.out.append(b"=" + sub + uugh + self.dashcolon + pre + b":\n")
        if self.brk:
            self.out.append(b"+" + sub + self.brk + uugh + self.dashcolon + pre + b"-:\n")

    def flush(self) -> None:
        if self.out:
            data, self.out = b"".join(self.out), []
            try:
                sys.stdout.buffer.write(data)
            except OSError:
                die(111, FATAL, "unable to write output")


def _open_users(name: str) -> int | None:
    try:
        return os.open(os.path.join("users", name), os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        return None
    except OSError:
        die(111, FATAL, "unable to read controls")


def main(argv: list[str]) -> int:
    p = Pw2u()
    try:
        opts, _ = sgetopt(argv, "/ohHuUc:C")
    except OptError:
        return 100
    for opt, value in opts:
        if opt == "/":
            p.dashcolon = b"-/:"
        elif opt == "o":
            p.homestrategy = 2
        elif opt == "h":
            p.homestrategy = 1
        elif opt == "H":
            p.homestrategy = 0
        elif opt == "u":
            p.noupper = False
        elif opt == "U":
            p.noupper = True
        elif opt == "c":
            p.brk = os.fsencode(value)[:1]
        elif opt == "C":
            p.brk = b""
    try:
        os.chdir(control.qmail_home())
    except OSError:
        die(111, FATAL, "unable to chdir")
    p.load()
    for line in read_lines(0):
        p.account(line)
        if len(p.out) > 512:
            p.flush()
    if not p.flagalias:
        die(111, FATAL, "unable to find alias user")
    fd = _open_users("subusers")
    if fd is not None:
        for line in read_lines(fd):
            p.subuser(line)
        os.close(fd)
    fd = _open_users("append")
    if fd is not None:
        for line in read_lines(fd):
            p.out.append(line)
        os.close(fd)
    p.out.append(b".\n")
    p.flush()
    try:
        sys.stdout.buffer.flush()
    except OSError:
        die(111, FATAL, "unable to write output")
    return 0


def cli() -> None:
    run(main)


if __name__ == "__main__":
    cli()
