"""The Postfix side of the queue benchmark: Debian's Postfix delivering to Maildirs.

``run_postfix(count, users, workdir)`` injects ``count`` messages through
Postfix's ``sendmail`` (which hands each to ``postdrop``, into the maildrop
queue; ``pickup`` and ``cleanup`` take it into the queue, ``qmgr`` gives it to
``local``, which writes ``~user/Maildir/tmp`` and links it into ``new/``) and
returns ``{"rate": messages per second, "elapsed": seconds, "delivered": n,
"injected": seconds until the last sendmail exited, "leftovers": [...]}``.

What is timed: from the moment just before the first ``sendmail`` is started
to the moment the last message appears in a ``Maildir/new`` (seen through
inotify on each user's ``Maildir/new``, counted again with a directory scan
at the end).  Injection overlaps delivery: ``injectors`` (default 4) threads
each run ``sendmail -i -f bench@HOST user@localhost`` one after the other,
one process (and one postdrop) per message, message i going to
``users[i % len(users)]``; all the sendmail processes run as root.  Before
the clock starts one warm-up message is delivered (and removed), so that
master has already started pickup, cleanup, trivial-rewrite, qmgr and local.
The rate is ``count / elapsed``.

With ``preload=True`` (``--preload``) the messages are all injected the same
way while Postfix is stopped (they wait in maildrop/), and the clock runs
from the start of ``master`` to the last delivery: the queue alone.

On this 2-CPU machine one sendmail (with its postdrop: two execs of programs
linked with libicu, and an fsync) costs about 14 ms of CPU, so injection, not
the queue, sets the pace: 2,000 messages at 83-145 messages/s and 5,000 at
70-97/s (injection ends with the last delivery; the lower figures while
other test suites loaded the machine), against 365-620 messages/s for the
queue alone with ``--preload``.  ``sendmail -bs`` (one SMTP session on stdin,
still one postdrop per message) was slower, about 130/s.

``message()`` and :class:`NewWatcher` are meant for the qmail side too.

Postfix is not installed: ``apt-get download postfix`` (and any library it
needs that ``ldd`` does not find on the machine) is unpacked with
``dpkg-deb -x`` into ``.ref/postfix/`` (by tests/reference.py), and its
``master`` runs in the foreground as root with everything of its own under
``workdir``: ``config_directory`` (a main.cf written here, and Debian's
master.cf.dist with chroot off, since a chroot needs the copies of /etc files
that Debian's init script puts in the spool, and without the smtpd listener),
``queue_directory``, ``data_directory``, the log (``maillog_file``, through
postlogd), the users' homes.  ``daemon_directory``, ``command_directory`` and
``shlib_directory`` point into the unpacked package; ``LD_LIBRARY_PATH`` finds
its libraries and is passed on through ``import_environment`` and
``export_environment`` (sendmail runs postdrop through the latter).  Otherwise it is
Debian's configuration (main.cf.debian plus about what its postinst writes
for a "Local only" site: ``alias_maps = hash:.../aliases``,
``mailbox_size_limit = 0``, ``recipient_delimiter = +``), with
``home_mailbox = Maildir/`` and ``inet_interfaces = loopback-only``, and
Postfix's compiled-in defaults (``in_flow_delay = 1s``,
``default_process_limit = 100``, local concurrency 2 a recipient).

It needs root, and the ``postfix`` user and ``postdrop`` group, which it
creates (as system accounts, as Debian's postinst would) when they are missing
and leaves in place.  The users named must not exist: they are created with
``useradd`` (homes under ``workdir/home``) and removed with ``userdel``
afterwards.  master is stopped with SIGTERM, then everything left in its
process group, or running a program from the unpacked package, is killed; a
survivor is reported and makes the command exit 1.

Run alone:  ``.venv/bin/python bench/postfix.py [--count 5000] [--users 10]
[--injectors 4] [--preload] [--keep]``
"""
from __future__ import annotations

import argparse
import ctypes
import os
import re
import select
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as c  # noqa: E402

import psutil  # noqa: E402

REF = c.TOP / ".ref" / "postfix"
HOSTNAME = "pfbench.localdomain"
SENDER = f"bench@{HOSTNAME}"
#: libraries postfix links against that a minimal system may lack: soname prefix -> package
LIB_PACKAGES = {
    "libdb-5.3.so": "libdb5.3",
    "libicuuc.so.72": "libicu72",
    "libicui18n.so.72": "libicu72",
    "libicudata.so.72": "libicu72",
    "libnsl.so.2": "libnsl2",
    "libsasl2.so.2": "libsasl2-2",
    "libssl.so.3": "libssl3",
    "libcrypto.so.3": "libssl3",
}
#: the programs that run: master, its daemons, sendmail, postdrop, postalias
PROGRAMS = ("usr/lib/postfix/sbin/master", "usr/lib/postfix/sbin/pickup",
            "usr/lib/postfix/sbin/cleanup", "usr/lib/postfix/sbin/qmgr",
            "usr/lib/postfix/sbin/trivial-rewrite", "usr/lib/postfix/sbin/local",
            "usr/lib/postfix/sbin/bounce", "usr/lib/postfix/sbin/postlogd",
            "usr/lib/postfix/sbin/proxymap", "usr/lib/postfix/sbin/anvil",
            "usr/sbin/sendmail", "usr/sbin/postdrop", "usr/sbin/postalias")


def message(i: int, user: str) -> bytes:
    """Message number ``i`` for ``user``: a few headers and about 1 KB of text."""
    body = "".join(f"line {n} of message {i}: the quick brown fox jumps over the lazy dog\n"
                   for n in range(14))
    return (f"From: Bench <{SENDER}>\nTo: {user}@localhost\nSubject: message {i}\n"
            f"Message-ID: <{i}.bench@{HOSTNAME}>\n\n{body}").encode()


# -- the package ------------------------------------------------------------------

def ensure_package() -> list[str]:
    """Unpack postfix (and missing libraries) into .ref/postfix; the LD_LIBRARY_PATH dirs."""
    from tests import reference

    reference.ensure(REF, ("postfix",))
    dirs = [str(REF / "usr" / "lib" / "postfix")]
    missing = _missing_libs(dirs)
    if missing:
        packages = sorted({pkg for lib in missing for pre, pkg in LIB_PACKAGES.items()
                           if lib.startswith(pre)})
        unknown = [lib for lib in missing if not any(lib.startswith(p) for p in LIB_PACKAGES)]
        if unknown:
            raise SystemExit(f"bench: postfix needs libraries of unknown packages: {unknown}")
        reference.ensure(REF, ("postfix", *packages))
    dirs += sorted({str(p.parent) for p in (REF / "usr" / "lib").rglob("*.so*")
                    if "postfix" not in p.parts})
    still = _missing_libs(dirs)
    if still:
        raise SystemExit(f"bench: postfix still misses libraries: {still}")
    return dirs


def _missing_libs(libdirs: list[str]) -> list[str]:
    env = dict(os.environ, LD_LIBRARY_PATH=":".join(libdirs))
    missing: set[str] = set()
    for prog in PROGRAMS:
        p = subprocess.run(["ldd", str(REF / prog)], env=env, capture_output=True, text=True)
        missing.update(re.findall(r"^\s*(\S+) => not found", p.stdout, re.M))
    return sorted(missing)


# -- accounts ---------------------------------------------------------------------

def ensure_postfix_accounts() -> list[str]:
    """Create the ``postfix`` user and ``postdrop`` group if missing; say what was made."""
    from tests.helpers import account_cmd

    made = []
    if not _exists("group", "postdrop"):
        account_cmd(["groupadd", "--system", "postdrop"])
        made.append("group postdrop")
    if not _exists("passwd", "postfix"):
        account_cmd(["useradd", "--system", "--user-group", "--no-create-home",
                     "--home-dir", "/var/spool/postfix", "--shell", "/usr/sbin/nologin",
                     "postfix"])
        made.append("user postfix")
    return made


def _exists(db: str, name: str) -> bool:
    return subprocess.run(["getent", db, name], capture_output=True).returncode == 0


def add_users(users: list[str], home: Path) -> None:
    """Create throw-away ``users`` with homes under ``home`` and empty Maildirs."""
    from tests.helpers import account_cmd

    for user in users:
        account_cmd(["useradd", "--no-create-home", "--home-dir", str(home / user),
                     "--shell", "/usr/sbin/nologin", user])
        pw = _getpw(user)
        for sub in ("", "Maildir", "Maildir/new", "Maildir/cur", "Maildir/tmp"):
            d = home / user / sub
            d.mkdir(mode=0o700, exist_ok=True)
            os.chown(d, pw[0], pw[1])


def remove_users(users: list[str]) -> None:
    from tests.helpers import account_cmd

    for user in users:
        if _exists("passwd", user):
            account_cmd(["userdel", user])


def _getpw(user: str) -> tuple[int, int]:
    import pwd

    pw = pwd.getpwnam(user)
    return pw.pw_uid, pw.pw_gid


# -- configuration ------------------------------------------------------------------

def configure(workdir: Path, libdirs: list[str], smtpd_port: int | None = None) -> dict[str, str]:
    """Write main.cf, master.cf and the aliases under ``workdir``; the environment to run in.

    With ``smtpd_port`` master.cf keeps Debian's smtpd listener, on 127.0.0.1 at that
    port (bench/smtp.py); otherwise there is none."""
    etc, spool, data = workdir / "etc", workdir / "spool", workdir / "data"
    etc.mkdir(parents=True)
    (etc / "dynamicmaps.cf.d").mkdir()
    shutil.copy(REF / "usr/share/postfix/dynamicmaps.cf", etc / "dynamicmaps.cf")
    settings = {
        # where things are: all under workdir, programs from the unpacked package
        "config_directory": etc, "meta_directory": etc, "queue_directory": spool,
        "data_directory": data, "daemon_directory": REF / "usr/lib/postfix/sbin",
        "command_directory": REF / "usr/sbin", "shlib_directory": REF / "usr/lib/postfix",
        "sendmail_path": REF / "usr/sbin/sendmail", "newaliases_path": REF / "usr/bin/newaliases",
        "mailq_path": REF / "usr/bin/mailq", "manpage_directory": "no",
        "import_environment": ("MAIL_CONFIG MAIL_DEBUG MAIL_LOGTAG TZ LANG=C"
                               " POSTLOG_SERVICE POSTLOG_HOSTNAME LD_LIBRARY_PATH"),
        "export_environment": "TZ MAIL_CONFIG LANG LD_LIBRARY_PATH",
        "maillog_file": workdir / "maillog", "maillog_file_prefixes": workdir,
        # Debian's main.cf.debian and what its postinst writes for "Local only"
        "smtpd_banner": "$myhostname ESMTP $mail_name (Debian/GNU)", "biff": "no",
        "append_dot_mydomain": "no", "readme_directory": "no", "compatibility_level": "3.6",
        "myhostname": HOSTNAME, "mydomain": "localdomain", "myorigin": "$myhostname",
        "alias_maps": f"hash:{etc}/aliases", "alias_database": f"hash:{etc}/aliases",
        "mydestination": "$myhostname, localhost.localdomain, localhost",
        "relayhost": "", "mynetworks": "127.0.0.0/8", "mailbox_size_limit": "0",
        "recipient_delimiter": "+", "inet_interfaces": "loopback-only",
        "inet_protocols": "ipv4",
        # the bench's own choice
        "home_mailbox": "Maildir/",
    }
    (etc / "main.cf").write_text("".join(f"{k} = {v}\n" for k, v in settings.items()))
    master, dropped = [], False
    for line in (REF / "usr/share/postfix/master.cf.dist").read_text().splitlines():
        fields = line.split()
        if line[:1].isspace():
            if not dropped:
                master.append(line)  # a continuation: -o, flags=, argv=
            continue
        dropped = False
        if fields and not line.startswith("#"):
            if fields[1] == "inet":
                if smtpd_port is None or fields[0] != "smtp":
                    dropped = True  # no smtpd listener
                    continue
                fields[0] = f"127.0.0.1:{smtpd_port}"
            fields[4] = "n"  # no chroot
            line = " ".join(fields)
        master.append(line)
    (etc / "master.cf").write_text("\n".join(master) + "\n")
    (etc / "aliases").write_text("postmaster: root\n")
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "MAIL_CONFIG": str(etc),
           "LD_LIBRARY_PATH": ":".join(libdirs), "LANG": "C"}
    subprocess.run([str(REF / "usr/sbin/postalias"), f"hash:{etc}/aliases"], env=env,
                   check=True)
    # the queue tree, as postfix-files (and `postfix check`) lay it out
    owner = _getpw("postfix")
    postdrop = int(subprocess.run(["getent", "group", "postdrop"], capture_output=True,
                                  text=True, check=True).stdout.split(":")[2])
    spool.mkdir(mode=0o755)
    data.mkdir(mode=0o700)
    os.chown(data, *owner)
    for name, group, mode in [
            ("active", None, 0o700), ("bounce", None, 0o700), ("corrupt", None, 0o700),
            ("defer", None, 0o700), ("deferred", None, 0o700), ("flush", None, 0o700),
            ("hold", None, 0o700), ("incoming", None, 0o700), ("private", None, 0o700),
            ("maildrop", postdrop, 0o730), ("public", postdrop, 0o710), ("pid", 0, 0o755),
            ("saved", None, 0o700), ("trace", None, 0o700)]:
        d = spool / name
        d.mkdir()
        if name == "pid":
            os.chown(d, 0, 0)
        else:
            os.chown(d, owner[0], owner[1] if group is None else group)
        os.chmod(d, mode)
    return env


# -- watching Maildir/new -------------------------------------------------------------

_IN_CREATE, _IN_MOVED_TO = 0x100, 0x80


class NewWatcher:
    """Counts files arriving in some ``Maildir/new`` directories, through inotify."""

    def __init__(self, dirs: list[Path]) -> None:
        self.dirs = dirs
        self.libc = ctypes.CDLL(None, use_errno=True)
        self.fd = self.libc.inotify_init1(os.O_CLOEXEC)
        if self.fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1")
        for d in dirs:
            if self.libc.inotify_add_watch(self.fd, str(d).encode(), _IN_CREATE | _IN_MOVED_TO) < 0:
                raise OSError(ctypes.get_errno(), f"inotify_add_watch {d}")
        self.seen = 0

    def count_files(self) -> int:
        return sum(len(os.listdir(d)) for d in self.dirs)

    def clear(self) -> None:
        """Empty the directories and start counting again."""
        self.wait_quiet()
        for d in self.dirs:
            for name in os.listdir(d):
                os.unlink(d / name)
        self.seen = 0

    def wait_quiet(self) -> None:
        """Read the events pending now, without counting them."""
        while select.select([self.fd], [], [], 0)[0]:
            os.read(self.fd, 65536)

    def wait(self, total: int, timeout: float, check=lambda: None) -> float:
        """Wait until ``total`` files have arrived; the perf_counter when the last was seen.

        ``check()`` is called about every 0.2 s and may raise to give up.
        """
        deadline = time.monotonic() + timeout
        t = time.perf_counter()
        while self.seen < total:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"{self.seen} of {total} messages delivered in {timeout:.0f} s")
            if not select.select([self.fd], [], [], min(left, 0.2))[0]:
                check()
                continue
            data = os.read(self.fd, 65536)
            t = time.perf_counter()
            pos = 0
            while pos < len(data):
                _, mask, _, namelen = struct.unpack_from("iIII", data, pos)
                pos += 16 + namelen
                if mask & (_IN_CREATE | _IN_MOVED_TO):
                    self.seen += 1
        return t

    def close(self) -> None:
        os.close(self.fd)


# -- running it -------------------------------------------------------------------------

class Injectors:
    """``n`` threads, each running one ``sendmail`` a message, one after the other."""

    def __init__(self, env: dict[str, str], jobs: list[tuple[int, str]], n: int) -> None:
        self.env = env
        self.errors: list[str] = []
        self.stop = threading.Event()
        self.finished: list[float] = []
        self.threads = [threading.Thread(target=self._run, args=(jobs[k::n],), daemon=True)
                        for k in range(n) if jobs[k::n]]

    def start(self) -> None:
        for t in self.threads:
            t.start()

    def join(self) -> float:
        """Wait for every thread; the perf_counter when the last sendmail exited."""
        for t in self.threads:
            t.join()
        return max(self.finished, default=time.perf_counter())

    def _run(self, jobs: list[tuple[int, str]]) -> None:
        sendmail = str(REF / "usr/sbin/sendmail")
        for i, user in jobs:
            if self.stop.is_set():
                break
            p = subprocess.run([sendmail, "-i", "-f", SENDER, f"{user}@localhost"],
                               input=message(i, user), env=self.env, capture_output=True)
            if p.returncode != 0:
                self.errors.append(f"sendmail exited {p.returncode}: "
                                   + p.stderr.decode(errors="replace").strip())
                self.stop.set()
        self.finished.append(time.perf_counter())


def postfix_procs() -> list[psutil.Process]:
    """Processes running a program from the unpacked package."""
    prefix = str(REF) + "/"
    found = []
    for p in psutil.process_iter(["exe", "cmdline"]):
        try:
            exe = p.info["exe"] or ""
            argv0 = (p.info["cmdline"] or [""])[0]
        except (IndexError, TypeError):
            continue
        if exe.startswith(prefix) or argv0.startswith(prefix):
            found.append(p)
    return found


def run_postfix(count: int, users: list[str], workdir: Path, *, injectors: int = 4,
                preload: bool = False, timeout: float | None = None) -> dict:
    """Deliver ``count`` messages to ``users`` through Postfix; rate, elapsed, delivered.

    ``workdir`` must be an empty or missing directory that the users can reach
    (every directory above it searchable by others).  See the module docstring
    for what is timed; with ``preload`` the messages are all injected while
    Postfix is stopped, and the clock runs from the start of master to the
    last delivery (the queue alone, injection left out).  The dict also holds
    ``injected`` (seconds from the start to the exit of the last sendmail) and
    ``leftovers`` (descriptions of Postfix processes that had to be killed
    after the stop, normally empty).
    """
    if os.geteuid() != 0:
        raise SystemExit("bench: postfix runs as root")
    if not users or count < 1:
        raise ValueError("need users and a count")
    for user in users:
        if _exists("passwd", user):
            raise SystemExit(f"bench: user {user} exists already")
    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    os.chmod(workdir, 0o755)
    libdirs = ensure_package()
    ensure_postfix_accounts()
    home = workdir / "home"
    home.mkdir(mode=0o755)
    if timeout is None:
        timeout = 120 + count / 20
    jobs = [(i, users[i % len(users)]) for i in range(count)]
    try:
        add_users(users, home)
        env = configure(workdir, libdirs)
        watcher = NewWatcher([home / u / "Maildir" / "new" for u in users])
        with c.Procs(workdir) as procs:
            try:
                if preload:
                    inj = Injectors(env, jobs, injectors)
                    t_start = time.perf_counter()
                    inj.start()
                    t_injected = inj.join() - t_start
                    _check(inj)
                    t0 = time.perf_counter()
                    master = _start_master(procs, env, workdir, wait=False)
                    t_last = _wait(watcher, count, timeout, inj, master)
                else:
                    master = _start_master(procs, env, workdir)
                    warm = Injectors(env, [(count, users[0])], 1)  # one warm-up message
                    warm.start()
                    warm.join()
                    _check(warm)
                    _wait(watcher, 1, 60, warm, master)
                    watcher.clear()
                    inj = Injectors(env, jobs, injectors)
                    t0 = time.perf_counter()
                    inj.start()
                    try:
                        t_last = _wait(watcher, count, timeout, inj, master)
                    finally:
                        inj.stop.set()
                        t_injected = inj.join() - t0
                    _check(inj)
                delivered = watcher.count_files()
            finally:
                watcher.close()
                procs.snapshot()
                if procs.popens:
                    _stop(procs.popens[0])
        left = postfix_procs()
        for p in left:
            p.kill()
    finally:
        remove_users(users)
    elapsed = t_last - t0
    return {"rate": count / elapsed, "elapsed": elapsed, "delivered": delivered,
            "injected": t_injected,
            "leftovers": procs.leftovers + [c.describe(p) for p in left]}


def _start_master(procs: c.Procs, env: dict[str, str], workdir: Path,
                  wait: bool = True) -> subprocess.Popen:
    """Start master in the foreground, in its own session; wait for pickup's socket."""
    master = procs.start([str(REF / "usr/lib/postfix/sbin/master"), "-d"], env=env,
                         log="master.log")
    if wait:
        c.wait_for(lambda: (workdir / "spool/public/pickup").exists() or master.poll() is not None,
                   timeout=30, what="postfix to start")
        _check_master(master, workdir)
    return master


def _check_master(master: subprocess.Popen, workdir: Path) -> None:
    if master.poll() is not None:
        raise RuntimeError(f"postfix master exited {master.returncode}; "
                           f"see {workdir}/master.log and {workdir}/maillog")


def _check(inj: Injectors) -> None:
    if inj.errors:
        raise RuntimeError(f"{len(inj.errors)} injections failed; first: {inj.errors[0]}")


def _wait(watcher: NewWatcher, total: int, timeout: float, inj: Injectors,
          master: subprocess.Popen) -> float:
    """Wait for ``total`` deliveries, giving up early if injection fails or master dies."""
    def trouble() -> None:
        _check(inj)
        if master.poll() is not None:
            raise RuntimeError(f"postfix master exited {master.returncode}")
    return watcher.wait(total, timeout, trouble)


def _stop(master: subprocess.Popen) -> None:
    """SIGTERM to master, which takes its children down with it; wait for them to go."""
    if master.poll() is None:
        master.send_signal(signal.SIGTERM)
        try:
            master.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
    c.wait_for(lambda: not postfix_procs(), timeout=10, what="postfix to stop", fail=False)


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description="Postfix's delivery rate into Maildirs")
    ap.add_argument("--count", type=int, default=5000, help="messages (default 5000)")
    ap.add_argument("--users", type=int, default=10, help="local users (default 10)")
    ap.add_argument("--injectors", type=int, default=4,
                    help="sendmail processes at a time (default 4)")
    ap.add_argument("--preload", action="store_true",
                    help="inject everything first, time the queue alone")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    args = ap.parse_args(argv)
    c.become_subreaper()
    made = ensure_postfix_accounts()
    if made:
        print(f"bench: created {' and '.join(made)}", file=sys.stderr)
    workdir = Path(tempfile.mkdtemp(prefix="pfbench."))
    users = [f"pfb{os.getpid()}u{n}" for n in range(args.users)]
    try:
        r = run_postfix(args.count, users, workdir, injectors=args.injectors,
                        preload=args.preload)
    finally:
        if args.keep:
            print(f"bench: work directory kept: {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    what = ("timed from the start of master, all injected before"
            if args.preload else "timed from the first sendmail")
    print(f"postfix: {r['delivered']} of {args.count} messages delivered into {args.users} "
          f"Maildirs in {r['elapsed']:.2f} s: {r['rate']:.0f} messages/s ({what}; "
          f"{args.injectors} sendmails at a time, injection took {r['injected']:.2f} s)")
    if r["leftovers"]:
        print("bench: WARNING: postfix processes left behind: " + ", ".join(r["leftovers"]),
              file=sys.stderr)
    return 1 if r["leftovers"] or r["delivered"] != args.count else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
