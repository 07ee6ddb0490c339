"""tcpserver: accept TCP connections and run a program for each one.

Usage: ``tcpserver [ -1UXpPhHrRoOdDqQv ] [ -c limit ] [ -x rules.cdb ] [ -B banner ]
[ -g gid ] [ -u uid ] [ -b backlog ] [ -l localname ] [ -t timeout ] host port program``.

As ucspi-tcp 0.88's: the connection is the program's descriptors 0 and 1, the
environment carries PROTO, TCPLOCALIP/PORT/HOST and TCPREMOTEIP/PORT/HOST/INFO
plus the matching rule's variables, ``-v`` logs ``status``, ``pid``, ``ok`` or
``deny`` and ``end`` lines, and beyond ``-c`` connections wait in the backlog.

When the program is one of pyqmail's own (its path is one of our console
scripts, or a link to one), it is imported once here and each connection's
child calls it after the fork instead of exec'ing a new interpreter; argv,
environment, descriptors, ids, limits and process title are what exec would
have given it.  Any other program is exec'd.
"""
from __future__ import annotations

import gc
import os
import select
import signal
import socket

from pyqmail import pathexec
from pyqmail.errstr import exc_str
from pyqmail.proctitle import set_title
from pyqmail.scan import scan_ulong
from pyqmail.sgetopt import OptError, sgetopt
from pyqmail.strerr import Die, die, run, write2
from tcpserver import preload

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
    """Options as tcpserver 0.88 reads them; the rest is host, port, program."""
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
            c.uid = num(os.environ["UID"]) if "UID" in os.environ else c.uid
            c.gid = num(os.environ["GID"]) if "GID" in os.environ else c.gid
        elif o == "u": c.uid = num(v)
        elif o == "g": c.gid = num(v)
        elif o == "1": c.flag1 = True
        elif o == "l": c.localhost = v
    if len(rest) < 3:
        raise Die(100, USAGE)
    return c, rest


def safe(s: str | None) -> str:
    """A field of the ok/deny line as the original prints it."""
    if s is None:
        return ""
    out = []
    for ch in s.encode("utf-8", "surrogateescape")[:100]:
        if ch < 33 or ch > 126 or ch in (37, 58):  # blanks, non-ASCII, % and :
            ch = 63
        out.append(chr(ch))
    return "".join(out) + ("..." if len(s.encode("utf-8", "surrogateescape")) >= 100 else "")


class Server:
    """The listening socket, the children and their count."""

    def __init__(self, c: Config, args: list[str]) -> None:
        self.c = c
        self.program = args[2:]
        self.numchildren = 0
        self.sock: socket.socket | None = None
        self.localport = 0
        self.wakeup = (-1, -1)
        self.target = None  # a preloaded program's entry point

    def log(self, text: str) -> None:
        if self.c.verbosity >= 2:
            write2("tcpserver: " + text + "\n")

    def printstatus(self) -> None:
        self.log(f"status: {self.numchildren}/{self.c.limit}")

    def setup(self, host: str, port: str) -> None:
        c = self.c
        if host in ("", "0"):
            host = "0.0.0.0"
        value, n = scan_ulong(port)
        if n == len(port) and port:
            self.localport = value & 0xFFFF
        else:
            try:
                self.localport = socket.getservbyname(port, "tcp")
            except OSError:
                die(111, FATAL, "unable to figure out port number for ", port)
        localip = _ip4(host)
        try:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        except OSError as e:
            die(111, FATAL, "unable to create socket: ", exc=e)
        try:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((localip, self.localport))
        except OSError as e:
            die(111, FATAL, "unable to bind: ", exc=e)
        self.localport = s.getsockname()[1]
        try:
            s.listen(c.backlog)
        except OSError as e:
            die(111, FATAL, "unable to listen: ", exc=e)
        self.sock = s
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
        self.target = preload.find(self.program[0])
        if c.flagremotehost or c.localhost is None or c.flagparanoid:
            from pyqmail import dnsq

            dnsq.resolver()  # import and configure once, before the forks
        s.setblocking(False)
        r, w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.wakeup = (r, w)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.set_wakeup_fd(w, warn_on_full_buffer=False)
        signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)

    def reap(self) -> None:
        while True:
            try:
                pid, wstat = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid <= 0:
                return
            self.log(f"end {pid} status {wstat}")
            if self.numchildren:
                self.numchildren -= 1
            self.printstatus()

    def loop(self) -> None:
        self.printstatus()
        gc.freeze()
        lfd = self.sock.fileno()
        wake = self.wakeup[0]
        while True:
            fds = [wake, lfd] if self.numchildren < self.c.limit else [wake]
            try:
                ready, _, _ = select.select(fds, [], [])
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
                    t, addr = self.sock.accept()
                except OSError:
                    continue
                self.numchildren += 1
                self.printstatus()
                try:
                    pid = os.fork()
                except OSError as e:
                    write2(f"{DROP}unable to fork: {exc_str(e)}\n")
                    self.numchildren -= 1
                    self.printstatus()
                    t.close()
                    continue
                if pid == 0:
                    self.child(t, addr)
                t.close()

    # -- the child ---------------------------------------------------------
    def child(self, t: socket.socket, addr: tuple[str, int]) -> None:
        """Everything after the fork: look up, log, set the environment, run."""
        try:
            signal.set_wakeup_fd(-1)
            for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGPIPE):
                signal.signal(sig, signal.SIG_DFL)
            self.sock.close()
            os.close(self.wakeup[0])
            os.close(self.wakeup[1])
            t.setblocking(True)
            fd = t.detach()
            env = Connection(self.c, fd, addr, self.localport).doit()
            for name, value in env:
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
            if fd != 0:
                os.dup2(fd, 0)
                os.close(fd)
            os.dup2(0, 1)
        except Die as d:
            write2(d.message + "\n")
            os._exit(d.code)
        except OSError as e:
            write2(f"{DROP}unable to set up descriptors: {exc_str(e)}\n")
            os._exit(111)
        argv = self.program
        if self.target is not None:
            set_title(argv)
            preload.call(self.target, argv)
        err = pathexec.run(argv)
        write2(f"{DROP}unable to run {argv[0]}: {exc_str(err)}\n")
        os._exit(111)


class Connection:
    """doit(): what tcpserver learns and decides about one connection."""

    def __init__(self, c: Config, fd: int, addr: tuple[str, int], localport: int) -> None:
        self.c = c
        self.fd = fd
        self.remoteip, self.remoteport = addr
        self.localportstr = str(localport)

    def doit(self) -> list[tuple[str, str | None]]:
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
            localhost = _name4(localip)
        env: list[tuple[str, str | None]] = [
            ("PROTO", "TCP"), ("TCPLOCALIP", localip), ("TCPLOCALPORT", str(localport)),
            ("TCPLOCALHOST", localhost)]
        remotehost = None
        if c.flagremotehost:
            remotehost = _name4(self.remoteip)
            if remotehost and c.flagparanoid:
                if self.remoteip not in _ip4s(remotehost):
                    remotehost = None
        env += [("TCPREMOTEIP", self.remoteip), ("TCPREMOTEPORT", str(self.remoteport)),
                ("TCPREMOTEHOST", remotehost)]
        info = None
        if c.flagremoteinfo:
            from tcpserver.remoteinfo import remoteinfo

            raw = remoteinfo(self.remoteip, self.remoteport, localip, localport, c.timeout)
            info = raw.decode("utf-8", "surrogateescape") if raw is not None else None
        env.append(("TCPREMOTEINFO", info))
        deny = False
        if c.fnrules:
            deny = self.rules(env, remotehost, info)
        if c.verbosity >= 2:
            write2(f"tcpserver: {'deny' if deny else 'ok'} {pid} {safe(localhost)}:{safe(localip)}:"
                   f"{safe(str(localport))} {safe(remotehost)}:{safe(self.remoteip)}:"
                   f"{safe(info)}:{safe(str(self.remoteport))}\n")
        if deny:
            os._exit(100)
        return env

    def rules(self, env: list, remotehost: str | None, info: str | None) -> bool:
        """Look the connection up in the rules CDB; add its variables; True to deny."""
        from pyqmail import cdb
        from tcpserver import rules

        fn = self.c.fnrules
        try:
            reader = cdb.Reader(fn)
        except FileNotFoundError as e:
            if not self.c.flagallownorules:
                die(111, DROP, "unable to read ", fn, ": ", exc=e)
            return False
        except (OSError, cdb.FormatError) as e:
            die(111, DROP, "unable to read ", fn, ": ", exc=e if isinstance(e, OSError) else None)
        try:
            with reader:
                data = rules.lookup(reader, self.remoteip, info, remotehost)
        except (OSError, cdb.FormatError) as e:
            die(111, DROP, "unable to read ", fn, ": ", exc=e if isinstance(e, OSError) else None)
        if data is None:
            return False
        deny = False
        for item in data.split(b"\0"):
            if item[:1] == b"D":
                deny = True
            elif item[:1] == b"+" and b"=" in item:
                name, _, value = item[1:].partition(b"=")
                env.append((os.fsdecode(name), os.fsdecode(value)))
        return deny


def _name4(ip: str) -> str | None:
    from pyqmail import dnsq

    try:
        return dnsq.name4(ip) or None
    except dnsq.TempError:
        return None


def _ip4s(name: str) -> list[str]:
    from pyqmail import dnsq

    try:
        return dnsq.ip4(name)
    except dnsq.TempError:
        return []


def _ip4(host: str) -> str:
    """The address to listen on: a dotted quad, or the name's first address."""
    try:
        socket.inet_aton(host)
        if host.count(".") == 3:
            return host
    except OSError:
        pass
    from pyqmail import dnsq

    try:
        addrs = dnsq.ip4(host)
    except dnsq.TempError:
        die(111, FATAL, "temporarily unable to figure out IP address for ", host,
            ": temporary failure")
    if not addrs:
        die(111, FATAL, "no IP address for ", host)
    return addrs[0]


def main(argv: list[str]) -> int:
    c, rest = parse(argv)
    set_title(argv)
    server = Server(c, rest)
    server.setup(rest[0], rest[1])
    server.loop()
    return 0


def cli() -> None:
    run(main)


if __name__ == "__main__":
    cli()
