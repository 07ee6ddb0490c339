"""qmail-local: deliver or forward a mail message (qmail-local(8), dot-qmail(5)).

Usage: ``qmail-local [ -nN ] user homedir local dash ext domain sender
defaultdelivery``, the message on stdin (a seekable file).  Changes to
``homedir``, checks it, refuses a message that already has our
``Delivered-To`` line, and follows the ``.qmail`` file for ``dash``+``ext``
(or ``defaultdelivery``): ``./Maildir/`` lines, mbox lines, ``|program`` lines
(``sh -c`` with qmail-command(8)'s environment) and forwards, sent all at
once through qmail-queue after everything else.

Reports as qmail-lspawn expects: on success ``did F+W+P`` (files, forwards,
programs; then ``qp N`` if it forwarded) on stdout, exit 0; on failure qmail's
text on stderr, exit 100 (permanent) or 111 (temporary).  Programs write to
the same stdout and stderr.  ``-n`` prints the instructions instead
(``maildir``, ``mbox``, ``program``, ``forward`` lines) and delivers nothing.
"""
from __future__ import annotations

import _signal
import os
import time

from mta import dotqmail
from pyqmail.errstr import exc_str
from pyqmail.spawn import start
from pyqmail.strerr import Die, die, run, warn

USAGE = ("qmail-local: usage: qmail-local [ -nN ] user homedir local dash ext domain "
         "sender aliasempty")
#: program exit codes that mean a permanent failure besides 100
HARD = frozenset((64, 65, 70, 76, 77, 78, 100, 112))


class Quiet(Exception):
    """Exit with ``code`` and no text of our own (a program failed; it spoke)."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


def temp_rewind() -> Die:
    return Die(111, "Unable to rewind message. (#4.3.0)")


def rewind() -> None:
    try:
        os.lseek(0, 0, os.SEEK_SET)
    except OSError:
        raise temp_rewind() from None


def say(text: bytes) -> None:
    try:
        from pyqmail.fsutil import write_all
        write_all(1, text)
    except OSError:
        pass


def check_home(doit: bool) -> None:
    try:
        st = os.stat(".")
    except OSError as e:
        die(111, f"Unable to stat home directory: {exc_str(e)}. (#4.3.0)")
    if st.st_mode & dotqmail.PATRN:
        die(111, "Uh-oh: home directory is writable. (#4.7.0)")
    if st.st_mode & 0o1000:
        if doit:
            die(111, "Home directory is sticky: user is editing his .qmail file. (#4.2.1)")
        warn("Warning: home directory is sticky.")


def check_loop(dt: bytes) -> None:
    """bouncexf(): bounce if the header already holds exactly our Delivered-To line."""
    rewind()
    buf = b""
    while True:
        try:
            data = os.read(0, 65536)
        except OSError as e:
            die(111, f"Unable to read message: {exc_str(e)}. (#4.3.0)")
        if not data:
            return
        buf += data
        start = 0
        while True:
            nl = buf.find(b"\n", start)
            if nl < 0:
                break
            if nl == start:  # the blank line: end of the header
                return
            if buf[start:nl + 1] == dt:
                die(100, "This message is looping: it already has my Delivered-To line. (#5.4.6)")
            start = nl + 1
        buf = buf[start:]


def program(cmd: bytes, env: dict[bytes, bytes]) -> bool:
    """Run ``sh -c cmd`` on the message; True if it exited 99."""
    rewind()
    try:
        pid = start([b"/bin/sh", b"-c", cmd], env=env)
    except OSError as e:
        if e.errno in (2, 8, 13):  # ENOENT, ENOEXEC, EACCES: the exec itself failed
            die(111, f"Unable to run /bin/sh: {exc_str(e)}. (#4.3.0)")
        die(111, f"Unable to fork: {exc_str(e)}. (#4.3.0)")
    _, wstat = os.waitpid(pid, 0)
    if os.WIFSIGNALED(wstat):
        die(111, "Aack, child crashed. (#4.3.0)")
    code = os.WEXITSTATUS(wstat)
    if code in HARD:
        raise Quiet(100)
    if code == 99:
        return True
    if code != 0:
        raise Quiet(111)
    return False


def forward(recips: list[bytes], dt: bytes, sender: bytes) -> int:
    """Send the message with our Delivered-To line to ``recips``; the qp."""
    from pyqmail.qmailqueue import Queue

    rewind()
    try:
        qq = Queue()
    except OSError as e:
        die(111, f"Unable to fork: {exc_str(e)}. (#4.3.0)")
    qq.put(dt)
    while True:
        try:
            data = os.read(0, 65536)
        except OSError:
            qq.fail()
            break
        if not data:
            break
        qq.put(data)
    qq.sender(sender)
    for r in recips:
        qq.recipient(r)
    answer = qq.close()
    if answer:
        die(100 if answer[0] == "D" else 111, "Unable to forward message: ", answer[1:], ".")
    return qq.qp


def main(argv: list[str]) -> int:
    """Deliver the message on stdin; 0, or :class:`Die` with 100 or 111."""
    try:
        return _main(argv)
    except Quiet as q:
        return q.code


def _main(argv: list[str]) -> int:
    from pyqmail.sgetopt import OptError, sgetopt

    os.umask(0o077)
    _signal.signal(_signal.SIGPIPE, _signal.SIG_IGN)
    try:
        opts, args = sgetopt(argv, "nN")
    except OptError:
        die(100, USAGE)
    doit = True
    for opt, _ in opts:
        doit = opt == "N"
    if len(args) != 8:
        die(100, USAGE)
    user, homedir, local, dash, ext, host, sender, aliasempty = map(os.fsencode, args)
    if not homedir.startswith(b"/"):
        die(100, USAGE)
    try:
        os.chdir(homedir)
    except OSError as e:
        die(111, f"Unable to switch to {args[1]}: {exc_str(e)}. (#4.3.0)")
    check_home(doit)

    env = dict(os.environb)
    recipient = local + b"@" + host
    dt = dotqmail.dtline(recipient)
    env.update({b"HOST": host, b"HOME": homedir, b"USER": user, b"LOCAL": local,
                b"RECIPIENT": recipient, b"DTLINE": dt})
    if doit:
        check_loop(dt)
    from pyqmail.mbox import ufline

    rp = dotqmail.rpline(sender)
    uf = ufline(sender, time.time())
    env.update({b"SENDER": sender, b"RPLINE": rp, b"UFLINE": uf})
    env.update(dotqmail.ext_env(ext))
    env.update(dotqmail.host_env(host))

    fd, forwardonly, default = dotqmail.search(dash, ext)
    if default is not None:
        env[b"DEFAULT"] = default
    if fd is None and dash:
        die(100, "Sorry, no mailbox here by that name. (#5.1.1)")
    ueo = dotqmail.new_sender(sender, local, host, dash, ext)
    env[b"NEWSENDER"] = ueo
    cmds = dotqmail.read_all(fd) if fd is not None else b""
    if not cmds:
        cmds = aliasempty
        forwardonly = False
    return deliver(dotqmail.lines(cmds), forwardonly, doit, env, rp + dt, uf, dt, ueo)


def deliver(lines: list[bytes], forwardonly: bool, doit: bool, env: dict[bytes, bytes],
            head: bytes, uf: bytes, dt: bytes, ueo: bytes) -> int:
    """Follow the instruction ``lines``; forwards last.  Returns 0 or raises Die."""
    from pyqmail import maildir, mbox

    files = forwards = programs = 0
    recips: list[bytes] = []
    for n, line in enumerate(lines):
        first = line[:1]
        if not line:
            if n == 0:
                die(111, "Uh-oh: first line of .qmail file is blank. (#4.2.1)")
            continue
        if first == b"#":
            continue
        if first in (b".", b"/"):
            files += 1
            if forwardonly:
                die(111, "Uh-oh: .qmail has file delivery but has x bit set. (#4.7.0)")
            kind = b"maildir " if line.endswith(b"/") else b"mbox "
            if not doit:
                say(kind + line + b"\n")
            elif kind == b"maildir ":
                maildir.deliver(os.fsdecode(line), 0, head)
            else:
                mbox.deliver(os.fsdecode(line), 0, uf + head)
        elif first == b"|":
            programs += 1
            if forwardonly:
                die(111, "Uh-oh: .qmail has prog delivery but has x bit set. (#4.7.0)")
            if not doit:
                say(b"program " + line[1:] + b"\n")
            elif program(line[1:], env):
                break
        elif first == b"+":
            if line[1:] == b"list":
                forwardonly = True
        else:
            forwards += 1
            addr = line[1:] if first == b"&" else line
            if doit:
                recips.append(addr)
            else:
                say(b"forward " + addr + b"\n")
    qp = forward(recips, dt, ueo) if recips and doit else 0
    report = f"did {files}+{forwards}+{programs}\n"
    if qp:
        report += f"qp {qp}\n"
    say(report.encode())
    return 0


def cli() -> None:
    run(main)


if __name__ == "__main__":
    cli()
