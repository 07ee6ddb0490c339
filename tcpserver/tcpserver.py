"""tcpserver: accept TCP connections and run a program for each one.

Usage: ``tcpserver [ -1UXpPhHrRoOdDqQv ] [ -c limit ] [ -x rules.cdb ] [ -B banner ]
[ -g gid ] [ -u uid ] [ -b backlog ] [ -l localname ] [ -t timeout ] host port program``.

As ucspi-tcp 0.88's: the connection is the program's descriptors 0 and 1, the
environment carries PROTO, TCPLOCALIP/PORT/HOST and TCPREMOTEIP/PORT/HOST/INFO
plus the matching rule's variables, ``-v`` logs ``status``, ``pid``, ``ok`` or
``deny`` and ``end`` lines, beyond ``-c`` connections wait in the backlog, and
``-q`` silences every message once the options are read.

When the program is one of pyqmail's own (its path is one of our console
scripts, or a link to one), it is imported once here and each connection's
child calls it after the fork instead of exec'ing a new interpreter (see
:mod:`tcpserver.preload`).  Any other program is exec'd.  Everything a child
needs is imported before the fork and before tcpserver gives up root: the
child of ``-u`` may not be able to read the interpreter's library.
"""
from __future__ import annotations

import gc
import os
import select
import signal
import socket

from pyqmail import cdb, pathexec
from pyqmail.errstr import exc_str
from pyqmail.proctitle import set_title
from pyqmail.scan import scan_ulong
from pyqmail.sgetopt import OptError, sgetopt
from pyqmail.strerr import Die, die, run, write2
from tcpserver import preload, rules, tcpenv
from tcpserver.remoteinfo import remoteinfo

FATAL = "tcpserver: fatal: "
DROP = "tcpserver: warning: dropping connection, "
USAGE = ("tcpserver: usage: tcpserver [ -1UXpPhHrRoOdDqQv ] [ -c limit ] [ -x rules.cdb ] "
         "[ -B banner ] [ -g gid ] [ -u uid ] [ -b backlog ] [ -l localname ] "
         "[ -t timeout ] host port program")


class Config:
    """The options, with the original's defaults."""

    verbosity = 1
    flagkillopts = True
    flagdelay = True
    banner = ""
    flagremoteinfo = True
    flagremotehost = True
    flagparanoid = False
    timeout = 26
    fnrules: str | None = None
    flagallownorules = False
    localhost: str | None = None
    limit = 40
    backlog = 20
    uid = 0
    gid = 0
    flag1 = False


def parse(argv: list[str]) -> tuple[Config, list[str]]:
    """The options as tcpserver 0.88 reads them, and the arguments after them."""
    c = Config()
    try:
        opts, rest = sgetopt(argv, "dDvqQhHrR1UXx:t:u:g:l:b:B:c:pPoO")
    except OptError:
        raise Die(100, USAGE) from None
    num = lambda v: scan_ulong(v)[0]  # noqa: E731
    for o, v in opts:
        if o == "b": c.backlog = num(v)
        elif o == "c": c.limit = num(v)
        elif o == "X": c.flagallownorules = True
        elif o == "x": c.fnrules = v
        elif o == "B": c.banner = v
        elif o == "d": c.flagdelay = True
        elif o == "D": c.flagdelay = False
        elif o == "v": c.verbosity = 2
        elif o == "q": c.verbosity = 0
        elif o == "Q": c.verbosity = 1
        elif o == "P": c.flagparanoid = False
        elif o == "p": c.flagparanoid = True
        elif o == "O": c.flagkillopts = True
        elif o == "o": c.flagkillopts = False
        elif o == "H": c.flagremotehost = False
        elif o == "h": c.flagremotehost = True
        elif o == "R": c.flagremoteinfo = False
        elif o == "r": c.flagremoteinfo = True
        elif o == "t": c.timeout = num(v)
        elif o == "U":
            if "UID" in os.environ:
                c.uid = num(os.environ["UID"])
            if "GID" in os.environ:
                c.gid = num(os.environ["GID"])
        elif o == "u": c.uid = num(v)
        elif o == "g": c.gid = num(v)
        elif o == "1": c.flag1 = True
        elif o == "l": c.localhost = v
    return c, rest


def safe(s: str | bytes | None) -> str:
    """A field of the ok/deny line as the original prints it: at most 100 bytes,
    blanks, controls, non-ASCII, ``%`` and ``:`` as ``?``, ``...`` if cut."""
    if s is None:
        return ""
    b = s if isinstance(s, bytes) else s.encode("utf-8", "surrogateescape")
    out = "".join("?" if ch < 33 or ch > 126 or ch in (37, 58) else chr(ch) for ch in b[:100])
    return out + "..." if len(b) >= 100 else out


class Server:
    """The listening socket, the children and their count."""

    def __init__(self, c: Config, program: list[str]) -> None:
        self.c = c
        self.program = program
        self.numchildren = 0
        self.sock: socket.socket | None = None
        self.localport = 0
        self.wakeup = (-1, -1)
        self.target = None  # a preloaded program's entry point

    def log(self, text: str) -> None:
        if self.c.verbosity >= 2:
            write2("tcpserver: " + text + "\n")

    def printstatus(self) -> None:
        if self.c.verbosity >= 2:
            write2(f"tcpserver: status: {self.numchildren}/{self.c.limit}\n")

    def setup(self, host: str, port: int) -> None:
        """Listen, give up root, print the port, get ready to fork (as the original's main)."""
        c = self.c
        if host in ("", "0"):
            host = "0.0.0.0"
        localip = tcpenv.host_ip4s(host, FATAL)[0]
        try:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        except OSError as e:
            die(111, FATAL, "unable to create socket: ", exc=e)
        try:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((localip, port))
        except OSError as e:
            die(111, FATAL, "unable to bind: ", exc=e)
        try:
            self.localport = s.getsockname()[1]
        except OSError as e:
            die(111, FATAL, "unable to get local address: ", exc=e)
        try:
            s.listen(c.backlog)
        except OSError as e:
            die(111, FATAL, "unable to listen: ", exc=e)
        self.sock = s
        # while we are still who started us: import what the children run
        self.target = preload.find(self.program[0])
        if c.flagremotehost or c.localhost is None:
            tcpenv.prepare_dns()
        if c.gid:
            try:
                os.setgroups([c.gid])
                os.setgid(c.gid)
            except OSError as e:
                die(111, FATAL, "unable to set gid: ", exc=e)
        if c.uid:
            try:
                os.setuid(c.uid)
            except OSError as e:
                die(111, FATAL, "unable to set uid: ", exc=e)
        if c.flag1:
            try:
                os.write(1, b"%d\n" % self.localport)
            except OSError:
                pass
        for fd in (0, 1):
            try:
                os.close(fd)
            except OSError:
                pass
        s.setblocking(False)
        r, w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.wakeup = (r, w)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.set_wakeup_fd(w, warn_on_full_buffer=False)

    def reap(self) -> None:
        while True:
            try:
                pid, wstat = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid <= 0:
                return
            if self.c.verbosity >= 2:
                write2(f"tcpserver: end {pid} status {wstat}\n")
            if self.numchildren:
                self.numchildren -= 1
            self.printstatus()

    def loop(self) -> None:
        self.printstatus()
        gc.freeze()  # the children share the parent's pages instead of copying them
        accept = self.sock._accept  # a bare descriptor: no socket object per connection
        lfd = self.sock.fileno()
        wake = self.wakeup[0]
        both, wakeonly = [wake, lfd], [wake]
        while True:
            try:
                ready = select.select(both if self.numchildren < self.c.limit else wakeonly,
                                      (), ())[0]
            except InterruptedError:
                continue
            if wake in ready:
                try:
                    while os.read(wake, 256):
                        pass
                except BlockingIOError:
                    pass
                self.reap()
            if lfd in ready and self.numchildren < self.c.limit:
                try:
                    t, addr = accept()
                except OSError:
                    continue
                self.numchildren += 1
                self.printstatus()
                try:
                    pid = os.fork()
                except OSError as e:
                    if self.c.verbosity:
                        write2(f"{DROP}unable to fork: {exc_str(e)}\n")
                    self.numchildren -= 1
                    self.printstatus()
                    os.close(t)
                    continue
                if pid == 0:
                    self.child(t, addr)
                os.close(t)

    # -- the child ---------------------------------------------------------
    def child(self, t: int, addr: tuple[str, int]) -> None:
        """Everything after the fork: look up, log, set the environment, run; never returns."""
        try:
            try:
                signal.set_wakeup_fd(-1)
                for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGPIPE):
                    signal.signal(sig, signal.SIG_DFL)
                self.sock.close()
                os.close(self.wakeup[0])
                os.close(self.wakeup[1])
                edits = Connection(self.c, t, addr).doit()
                try:
                    if t != 0:
                        os.dup2(t, 0)
                        os.close(t)
                    os.dup2(0, 1)
                except OSError as e:
                    die(111, DROP, "unable to set up descriptors: ", exc=e)
                env = tcpenv.environment(edits)
            except Die as d:
                if self.c.verbosity:
                    write2(d.message + "\n")
                os._exit(d.code)
            argv = self.program
            if self.target is not None:
                preload.call(self.target, argv, env)
            err = pathexec.run(argv, env)
            if self.c.verbosity:
                write2(f"{DROP}unable to run {argv[0]}: {exc_str(err)}\n")
        finally:
            os._exit(111)


class Connection:
    """doit(): what tcpserver learns and decides about one connection, as the
    original's child does it; the environment edits, in the original's order."""

    def __init__(self, c: Config, fd: int, addr: tuple[str, int]) -> None:
        self.c = c
        self.fd = fd
        self.remoteip, self.remoteport = addr

    def doit(self) -> list[tuple[str, str | bytes | None]]:
        c = self.c
        pid = os.getpid()
        if c.verbosity >= 2:
            write2(f"tcpserver: pid {pid} from {self.remoteip}\n")
        sock = socket.socket(fileno=self.fd)
        try:
            if c.flagkillopts:
                try:
                    sock.setsockopt(socket.IPPROTO_IP, socket.IP_OPTIONS, b"")
                except OSError:
                    pass
            if not c.flagdelay:
                try:
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                except OSError:
                    pass
            if c.banner:
                try:
                    sock.sendall(c.banner.encode("utf-8", "surrogateescape"))
                except OSError as e:
                    die(111, DROP, "unable to print banner: ", exc=e)
            try:
                localip, localport = sock.getsockname()
            except OSError as e:
                die(111, DROP, "unable to get local address: ", exc=e)
        finally:
            sock.detach()
        localhost = c.localhost
        if localhost is None:
            localhost = tcpenv.name4(localip) or None
        remotehost = None
        if c.flagremotehost:
            remotehost = tcpenv.name4(self.remoteip) or None
            if remotehost and c.flagparanoid:
                if self.remoteip not in (tcpenv.ip4s(remotehost) or ()):
                    remotehost = None
        info = None
        if c.flagremoteinfo:
            info = remoteinfo(self.remoteip, self.remoteport, localip, localport, c.timeout)
        edits: list[tuple[str, str | bytes | None]] = [
            ("PROTO", "TCP"), ("TCPLOCALIP", localip), ("TCPLOCALPORT", str(localport)),
            ("TCPLOCALHOST", localhost),
            ("TCPREMOTEIP", self.remoteip), ("TCPREMOTEPORT", str(self.remoteport)),
            ("TCPREMOTEHOST", remotehost), ("TCPREMOTEINFO", info)]
        deny = False
        if c.fnrules:
            deny = self.rules(edits, remotehost, info)
        if c.verbosity >= 2:
            write2(f"tcpserver: {'deny' if deny else 'ok'} {pid} {safe(localhost)}:{safe(localip)}:"
                   f"{localport} {safe(remotehost)}:{safe(self.remoteip)}:"
                   f"{safe(info)}:{self.remoteport}\n")
        if deny:
            os._exit(100)
        return edits

    def rules(self, edits: list, remotehost: str | None, info: bytes | None) -> bool:
        """Look the connection up in the rules CDB, add its variables; True to deny."""
        fn = self.c.fnrules
        try:
            reader = cdb.Reader(fn)
        except OSError as e:
            if isinstance(e, FileNotFoundError) and self.c.flagallownorules:
                return False
            die(111, DROP, "unable to read ", fn, ": ", exc=e)
        try:
            with reader:
                data = rules.lookup(reader, self.remoteip, info, remotehost)
        except OSError as e:  # cdb.FormatError too, with the C programs' errno
            die(111, DROP, "unable to read ", fn, ": ", exc=e)
        if data is None:
            return False
        rule = rules.parse(data)
        edits.extend(rule.env)
        return rule.deny


def main(argv: list[str]) -> int:
    c, args = parse(argv)
    try:
        return serve(c, args, argv)
    except Die as d:
        if c.verbosity:  # -q: not even a usage or a fatal message
            raise
        return d.code


def serve(c: Config, args: list[str], argv: list[str]) -> int:
    """What follows the options, in the original's order; never returns."""
    if len(args) < 2:
        raise Die(100, USAGE)
    port = tcpenv.port_number(args[1], FATAL)
    if len(args) < 3:
        raise Die(100, USAGE)
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    set_title(argv)
    server = Server(c, args[2:])
    server.setup(args[0], port)
    server.loop()
    return 0


def cli() -> None:
    run(main)


if __name__ == "__main__":
    cli()
