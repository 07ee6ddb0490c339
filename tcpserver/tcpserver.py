"""tcpserver: accept TCP connections and run a program for each one.

Usage: ``tcpserver [ -1UXpPhHrRoOdDqQv ] [ -c limit ] [ -x rules.cdb ] [ -B banner ]
[ -g gid ] [ -u uid ] [ -b backlog ] [ -l localname ] [ -t timeout ] host port program``.

As ucspi-tcp 0.88's: the connection is the program's descriptors 0 and 1, the
environment carries PROTO, TCPLOCALIP/PORT/HOST and TCPREMOTEIP/PORT/HOST/INFO
plus the matching rule's variables, ``-v`` logs ``status``, ``pid``, ``ok`` or
``deny`` and ``end`` lines, beyond ``-c`` connections wait in the backlog, and
``-q`` silences every message once the options are read.

IPv6 as Debian's ucspi-tcp-ipv6 (ucspi-tcp6): an IPv6 address as host
(``::1``), ``0`` meaning ``::`` (IPv6 and IPv4 both, IPv4 alone if this
machine has no IPv6), ``-4`` (IPv4 sockets only), ``-6`` (an IPv4
connection described as IPv6, with mapped addresses) and ``-I interface``
(for a link-local address).  An IPv6 connection gets PROTO=TCP6, each TCP
variable followed by its TCP6 twin (and TCP6INTERFACE for a scoped address),
and its addresses unescaped in the ``ok`` line.  Unlike ucspi-tcp6, an IPv4
connection without ``-6`` gets exactly 0.88's environment and log line even
on ``::`` (ucspi-tcp6 adds TCP6 variables with the mapped address); and the
usage message stays 0.88's.

When the program is one of pyqmail's own (its path is one of our console
scripts, or a link to one), it is imported once here and each connection's
child calls it after the fork instead of exec'ing a new interpreter (see
:mod:`pyqmail.preload`).  Any other program is exec'd: when the child would
have nothing to look up (``-H -R -l name``), tcpserver does the child's work
itself and vforks and execs the program (a fork of this process costs ten
times as much); a deny or any failure still gets a forked child, which says
what the original's would.  Everything a child needs is imported before the
fork and before tcpserver gives up root: the child of ``-u`` may not be able
to read the interpreter's library.
"""
from __future__ import annotations

import _signal
import errno
import gc
import os
import select
import signal
import socket
import stat
import sys

from pyqmail import pathexec, preload, spawn
from pyqmail.errstr import exc_str
from pyqmail.proctitle import set_title
from pyqmail.scan import scan_ulong
from pyqmail.sgetopt import OptError, sgetopt
from pyqmail.strerr import Die, die, run, write2
from tcpserver import tcpenv
from tcpserver.connection import DROP, Connection

FATAL = "tcpserver: fatal: "
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
    flag4 = False  # -4: IPv4 sockets only (ucspi-tcp6)
    flag6 = False  # -6: IPv6 environment even for IPv4 connections (ucspi-tcp6)
    interface: str | None = None  # -I: the interface of a link-local address
    family = socket.AF_INET  # the listening socket's, set by Server.setup


def parse(argv: list[str]) -> tuple[Config, list[str]]:
    """The options as tcpserver 0.88 reads them, and the arguments after them."""
    c = Config()
    try:
        opts, rest = sgetopt(argv, "46dDvqQhHrR1UXx:t:u:g:l:b:B:c:pPoOI:")
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
        elif o == "4": c.flag4, c.flag6 = True, False
        elif o == "6": c.flag6, c.flag4 = True, False
        elif o == "I": c.interface = v
    return c, rest


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
        self.inherited: tuple[int, ...] = ()

    def printstatus(self) -> None:
        if self.c.verbosity >= 2:
            write2(f"tcpserver: status: {self.numchildren}/{self.c.limit}\n")

    def setup(self, host: str, port: int) -> None:
        """Listen, give up root, print the port, get ready to fork (as the original's main)."""
        c = self.c
        s = self.listen_socket(host, port)
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
        if self.fast:
            # spawn.start's subprocess, loaded while we are who started us (not otherwise:
            # it brings threading, whose at-fork hook costs each forked child page copies)
            __import__("subprocess")
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
        self.inherited = spawn.inherited_fds()  # what a program is given besides 0, 1, 2

    def listen_socket(self, host: str, port: int) -> socket.socket:
        """The bound socket for ``host``: an IPv4 one for an IPv4 host (as
        ucspi-tcp 0.88), an IPv6 one for an IPv6 address, for ``0`` (``::``,
        taking IPv4 connections too, unless -4 or no IPv6 here) and for any
        host under -6, as ucspi-tcp6."""
        c = self.c
        v6 = tcpenv.is_ip6(host) or c.flag6 or (host in ("", "0") and not c.flag4)
        if c.flag4 and tcpenv.is_ip6(host):
            die(111, FATAL, "unable to bind: ", exc=OSError(errno.EAFNOSUPPORT, ""))
        s = None
        if v6:
            try:
                s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
            except OSError as e:
                if tcpenv.is_ip6(host) or e.errno != errno.EAFNOSUPPORT:
                    die(111, FATAL, "unable to create socket: ", exc=e)
                v6 = False  # no IPv6 here: IPv4, as ucspi-tcp6 falls back
        if v6:
            if host in ("", "0"):
                localip = "::"
            elif tcpenv.is_ip6(host):
                localip = tcpenv.host_ip6s(host, FATAL)[0]
            else:
                localip = "::ffff:" + tcpenv.host_ip4s(host, FATAL)[0]
            scope = 0
            if c.interface is not None:
                try:
                    scope = socket.if_nametoindex(c.interface)
                except OSError:
                    scope = 0
            addr: tuple = (localip, port, 0, scope)
            c.family = socket.AF_INET6
        else:
            if host in ("", "0"):
                host = "0.0.0.0"
            localip = tcpenv.host_ip4s(host, FATAL)[0]
            try:
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            except OSError as e:
                die(111, FATAL, "unable to create socket: ", exc=e)
            addr = (localip, port)
            c.family = socket.AF_INET
        try:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if v6:
                s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            s.bind(addr)
        except OSError as e:
            die(111, FATAL, "unable to bind: ", exc=e)
        return s

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
        """Start the program with vfork and exec (no copy of this process), doing
        the child's work here; for the common case where none of it can block:
        no names, no remote info.

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
            self.fork(conn.fd, conn.addr, conn)
            return True
        try:
            pid = spawn.start(self.program, executable=path, env=tcpenv.environment(conn.edits()),
                              stdin=conn.fd, stdout=conn.fd, pass_fds=self.inherited)
        except (OSError, ValueError, sys.modules["subprocess"].SubprocessError):
            # the child finds out again, and says so
            self.fork(conn.fd, conn.addr, conn)
            return True
        if self.c.verbosity >= 2:
            write2(f"tcpserver: pid {pid} from {conn.remoteip}\n{conn.line(pid, False)}")
        return True

    def exec_path(self) -> str | None:
        """The file pathexec would run now, if finding it is simple: a path, or
        the first regular file of the name in $PATH; None for anything else.
        (Whether it runs is for exec to say.)"""
        prog = self.program[0]
        if "/" in prog:
            return prog
        if not prog:
            return None
        for d in os.environ.get("PATH", "/bin:/usr/bin").split(":"):
            path = os.path.join(d or ".", prog)
            try:
                st = os.stat(path)
            except FileNotFoundError:
                continue
            except OSError:
                return None
            return path if stat.S_ISREG(st.st_mode) else None
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
                    try:
                        os.close(fd)
                    except OSError:
                        pass
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
