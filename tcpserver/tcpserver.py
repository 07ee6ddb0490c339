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

import _signal
import gc
import os
import select
import signal
import socket
import stat

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
#: a banner the parent can write without ever waiting: a new socket's buffer takes it
SHORT_BANNER = 2048
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
        self.fast = False  # the parent can learn all and spawn the program itself
        self.closing: list[int] = []

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
        self.fast = (self.target is None and not c.flagremotehost and c.localhost is not None
                     and not c.flagremoteinfo)
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
        if self.target is not None:
            preload.prepare_stdio()
        # /dev/null holds 0 and 1 (close-on-exec), so connections never land there
        null = os.open("/dev/null", os.O_RDWR | os.O_CLOEXEC)
        for fd in (0, 1):
            if fd != null:
                os.dup2(null, fd, inheritable=False)
        if null > 1:
            os.close(null)
        s.setblocking(False)
        r, w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.wakeup = (r, w)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.set_wakeup_fd(w, warn_on_full_buffer=False)
        # what a child closes: the descriptors exec would close, 0 and 1 aside
        self.closing = []
        for name in os.listdir("/proc/self/fd"):
            try:
                if int(name) > 2 and not os.get_inheritable(int(name)):
                    self.closing.append(int(name))
            except OSError:  # the listing's own descriptor
                pass
        tcpenv.remember()

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
                if not (self.fast and self.spawn(Connection(self.c, t, addr))):
                    self.fork(t, addr)
                os.close(t)

    def fork(self, t: int, addr: tuple[str, int], conn: Connection | None = None) -> None:
        """A child for the connection; as little as can be done here, where every
        page written after a fork is a page fault (the children run in parallel)."""
        try:
            pid = os.fork()
        except OSError as e:
            if self.c.verbosity:
                write2(f"{DROP}unable to fork: {exc_str(e)}\n")
            self.numchildren -= 1
            self.printstatus()
            return
        if pid == 0:
            self.child(conn or Connection(self.c, t, addr))

    def spawn(self, conn: Connection) -> bool:
        """Start the program with posix_spawn (vfork and exec: no copy of this
        process), doing the child's work here; for the common case where none
        of it can block: no names, no remote info.

        False if a forked child must do it (a rule denies or cannot be read,
        the program is not simply there): the child then does and says what
        the original would.  Past the banner, a failure is left to a child too.
        """
        try:
            deny = conn.rules()
        except Die:
            return False
        path = self.exec_path()
        if deny or path is None or len(self.c.banner) > SHORT_BANNER:
            return False
        conn.prepare()
        if conn.error is not None:
            self.fork(conn.fd, (conn.remoteip, conn.remoteport), conn)
            return True
        try:
            pid = os.posix_spawn(path, self.program, tcpenv.environment(conn.edits()),
                                 file_actions=((os.POSIX_SPAWN_DUP2, conn.fd, 0),
                                               (os.POSIX_SPAWN_DUP2, conn.fd, 1)),
                                 setsigdef=(_signal.SIGCHLD, _signal.SIGTERM, _signal.SIGPIPE))
        except (OSError, ValueError):  # the child finds out again, and says so
            self.fork(conn.fd, (conn.remoteip, conn.remoteport), conn)
            return True
        if self.c.verbosity >= 2:
            write2(f"tcpserver: pid {pid} from {conn.remoteip}\n{conn.line(pid, False)}")
        return True

    def exec_path(self) -> str | None:
        """The file pathexec would run now, if finding it is simple (it exists
        and is an executable regular file); None for anything else."""
        prog = self.program[0]
        if "/" in prog:
            candidates = [prog]
        elif not prog:
            return None
        else:
            path = os.environ.get("PATH", "/bin:/usr/bin")
            candidates = [os.path.join(d or ".", prog) for d in path.split(":")]
        for path in candidates:
            try:
                st = os.stat(path)
            except FileNotFoundError:
                continue
            except OSError:
                return None
            return path if stat.S_ISREG(st.st_mode) and os.access(path, os.X_OK) else None
        return None

    # -- the child ---------------------------------------------------------
    def child(self, conn: Connection) -> None:
        """Everything after the fork: look up, log, set the environment, run; never returns."""
        try:
            try:
                _signal.set_wakeup_fd(-1)
                for sig in (_signal.SIGCHLD, _signal.SIGTERM, _signal.SIGPIPE):
                    _signal.signal(sig, _signal.SIG_DFL)
                for fd in self.closing:
                    os.close(fd)
                edits = conn.doit()
                try:
                    os.dup2(conn.fd, 0)
                    os.close(conn.fd)
                    os.dup2(0, 1)
                except OSError as e:
                    die(111, DROP, "unable to set up descriptors: ", exc=e)
                env = tcpenv.put(edits)
            except Die as d:
                if self.c.verbosity:
                    write2(d.message + "\n")
                os._exit(d.code)
            argv = self.program
            if self.target is not None:
                preload.call(self.target, argv, env, [])
            err = pathexec.run(argv, env)
            if self.c.verbosity:
                write2(f"{DROP}unable to run {argv[0]}: {exc_str(err)}\n")
        finally:
            os._exit(111)


class Connection:
    """What tcpserver learns and decides about one connection, as the
    original's child does it (:meth:`doit`), in steps the parent can take too."""

    def __init__(self, c: Config, fd: int, addr: tuple[str, int]) -> None:
        self.c = c
        self.fd = fd
        self.remoteip, self.remoteport = addr
        self.localip = ""
        self.localport = 0
        self.localhost = c.localhost
        self.remotehost: str | None = None
        self.info: bytes | None = None
        self.ruled: list[tuple[bytes, bytes]] = []
        self.prepared = False
        self.error: Die | None = None  # from prepare(), for the child to report

    def doit(self) -> list[tuple[str, str | bytes | None]]:
        """In the child: all of it, logged; exits 100 if a rule denies; the
        environment edits."""
        c = self.c
        pid = os.getpid()
        if c.verbosity >= 2:
            write2(f"tcpserver: pid {pid} from {self.remoteip}\n")
        if not self.prepared:
            self.prepare()
        if self.error is not None:
            raise self.error
        self.learn()
        deny = self.rules()
        if c.verbosity >= 2:
            write2(self.line(pid, deny))
        if deny:
            os._exit(100)
        return self.edits()

    def prepare(self) -> None:
        """Socket options, the banner, the local address: what the original's
        child does first (the parent does it before spawning: a short banner
        cannot block on a new socket).  A failure is kept in :attr:`error`."""
        c = self.c
        self.prepared = True
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, 0, self.fd)
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
                    self.error = Die(111, DROP + "unable to print banner: " + exc_str(e))
                    return
            try:
                self.localip, self.localport = sock.getsockname()
            except OSError as e:
                self.error = Die(111, DROP + "unable to get local address: " + exc_str(e))
        finally:
            sock.detach()

    def learn(self) -> None:
        """The names of both ends and the remote info, as the options ask."""
        c = self.c
        if self.localhost is None:
            self.localhost = tcpenv.name4(self.localip) or None
        if c.flagremotehost:
            self.remotehost = tcpenv.name4(self.remoteip) or None
            if self.remotehost and c.flagparanoid:
                if self.remoteip not in (tcpenv.ip4s(self.remotehost) or ()):
                    self.remotehost = None
        if c.flagremoteinfo:
            self.info = remoteinfo(self.remoteip, self.remoteport, self.localip,
                                   self.localport, c.timeout)

    def edits(self) -> list[tuple[str, str | bytes | None]]:
        """The environment edits, in the original's order."""
        return [("PROTO", "TCP"), ("TCPLOCALIP", self.localip),
                ("TCPLOCALPORT", str(self.localport)), ("TCPLOCALHOST", self.localhost),
                ("TCPREMOTEIP", self.remoteip), ("TCPREMOTEPORT", str(self.remoteport)),
                ("TCPREMOTEHOST", self.remotehost), ("TCPREMOTEINFO", self.info),
                *self.ruled]

    def line(self, pid: int, deny: bool) -> str:
        """The ok (or deny) line of -v."""
        return (f"tcpserver: {'deny' if deny else 'ok'} {pid} {safe(self.localhost)}:"
                f"{safe(self.localip)}:{self.localport} {safe(self.remotehost)}:"
                f"{safe(self.remoteip)}:{safe(self.info)}:{self.remoteport}\n")

    def rules(self) -> bool:
        """Look the connection up in the rules CDB, keep its variables; True to deny."""
        fn = self.c.fnrules
        if not fn:
            return False
        try:
            reader = cdb.Reader(fn)
        except OSError as e:
            if isinstance(e, FileNotFoundError) and self.c.flagallownorules:
                return False
            die(111, DROP, "unable to read ", fn, ": ", exc=e)
        try:
            with reader:
                data = rules.lookup(reader, self.remoteip, self.info, self.remotehost)
        except OSError as e:  # cdb.FormatError too, with the C programs' errno
            die(111, DROP, "unable to read ", fn, ": ", exc=e)
        if data is None:
            return False
        rule = rules.parse(data)
        self.ruled = rule.env
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
