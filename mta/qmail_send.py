"""qmail-send: deliver mail messages from the queue (qmail-send(8)).

Started by qmail-start as qmails, in ``QMAILHOME``, with qmail-lspawn on
fds 1 (commands) and 2 (reports), qmail-rspawn on 3 and 4, qmail-clean on
5 and 6, and its log (qmail-log(5)) on fd 0.  It preprocesses new messages
from ``todo/`` (woken by ``lock/trigger``, and every 25 minutes anyway),
hands each recipient to the local or remote channel within
concurrencylocal/concurrencyremote, retries temporary failures on qmail's
schedule, bounces permanent ones (QSBMF), and removes messages once done.

Beyond qmail: when fd 7 is a pipe (qmail-start makes it one whose other end
only the queue service holds), its end means the queue service is gone;
qmail-send then finishes its deliveries and exits, for supervise to start
everything again.

Signals: TERM finishes the deliveries under way and exits; ALRM retries
everything now; HUP rereads ``locals`` and ``virtualdomains``.
"""
from __future__ import annotations

import heapq
import os
import select
import signal
import time

from mta import send_todo
from mta.send_deliver import CHANFDIN, CHANFDOUT, CHANNELS, SLEEP_SYSFAIL, Del, Deliveries, Pass
from mta.send_bounce import injectbounce
from mta.send_log import log
from mta.send_rewrite import Controls
from pyqmail import control, queue
from pyqmail.fsutil import lock_exnb
from pyqmail.strerr import run

SLEEP_TODO = 1500
SLEEP_FUZZ = 1
SLEEP_FOREVER = 86400
SLEEP_CLEANUP = 76431


class Send(Deliveries):
    def __init__(self, ctl: Controls) -> None:
        self.ctl = ctl
        self.recent = int(time.time())
        self.exitasap = self.runasap = self.readasap = False
        self.spawnalive = [True, True]
        self.concurrency = [min(max(n, 0), 120) for n in ctl.concurrency]
        self.used = [0, 0]
        self.d: list[list[Del | None]] = [[], []]
        self.dline = [bytearray(), bytearray()]
        self.comm = [bytearray(), bytearray()]
        self.masterdelid = 1
        self.numjobs = 0
        self.jobs = 0
        self.pqdone: list[tuple[int, int]] = []
        self.pqchan: list[list[tuple[int, int]]] = [[], []]
        self.pqfail: list[tuple[int, int]] = []
        self.passes: list[Pass | None] = [None, None]
        self.todo: list[int] = []
        self.todoscan = False
        self.nexttodorun = int(time.time())
        self.trigger = -1
        self.cleanupiter = None
        self.cleanuptime = int(time.time())
        self.queued = -1
        self.workers: send_todo.Workers | None = None
        self.inflight: set[int] = set()
        self.wake_r, wake_w = os.pipe()
        os.set_blocking(self.wake_r, False)
        os.set_blocking(wake_w, False)
        self.workers = send_todo.Workers(ctl, wake_w)

    # -- qmail-clean ---------------------------------------------------------------
    def clean(self, names: list[str]) -> list[bytes] | None:
        """Ask qmail-clean to remove each of ``names``; its answers, or None if it died."""
        try:
            os.write(5, b"".join(n.encode() + b"\0" for n in names))
            answers = b""
            while len(answers) < len(names):
                data = os.read(6, len(names) - len(answers))
                if not data:
                    raise OSError
                answers += data
        except OSError:
            log("alert: oh no! lost qmail-clean connection! dying...\n")
            self.exitasap = True
            return None
        return [answers[i:i + 1] for i in range(len(answers))]

    # -- the trigger -----------------------------------------------------------------
    def trigger_set(self) -> None:
        if self.trigger >= 0:
            os.close(self.trigger)
        try:
            self.trigger = os.open("lock/trigger", os.O_RDONLY | os.O_NONBLOCK)
        except OSError:
            self.trigger = -1

    # -- priority queues -------------------------------------------------------------
    def pqadd(self, id_: int) -> None:
        fn = queue.fn("info", id_)
        try:
            if queue.missing(fn):
                return
            fn = queue.fn("todo", id_)
            if not queue.missing(fn):
                return
            flag = []
            for c in (0, 1):
                fn = queue.fn(CHANNELS[c], id_)
                try:
                    flag.append(int(os.stat(fn).st_mtime))
                except FileNotFoundError:
                    flag.append(None)
        except OSError:
            log(f"warning: unable to stat {fn}; will try again later\n")
            heapq.heappush(self.pqfail, (int(time.time()) + SLEEP_SYSFAIL, id_))
            return
        for c in (0, 1):
            if flag[c] is not None:
                heapq.heappush(self.pqchan[c], (flag[c], id_))
        if flag[0] is None and flag[1] is None:
            heapq.heappush(self.pqdone, (int(time.time()), id_))

    def pqstart(self) -> None:
        while True:
            try:
                found = queue.ids("info")
                break
            except OSError:
                from mta.send_log import pausedir
                pausedir("info")
        for id_ in found:
            self.pqadd(id_)

    def pqfinish(self) -> None:
        for c in (0, 1):
            for dt, id_ in self.pqchan[c]:
                fn = queue.fn(CHANNELS[c], id_)
                try:
                    os.utime(fn, (dt, dt))
                except OSError:
                    log(f"warning: unable to utime {fn}; message will be retried too soon\n")

    def pqrun(self) -> None:
        for c in (0, 1):
            self.pqchan[c] = [(self.recent, id_) for _, id_ in self.pqchan[c]]
            heapq.heapify(self.pqchan[c])

    def messdone(self, id_: int) -> None:
        try:
            for name in ("local", "remote", "todo"):
                fn = queue.fn(name, id_)
                if not queue.missing(fn):
                    return  # false alarm
            fn = queue.fn("info", id_)
            if queue.missing(fn):
                return
        except OSError:
            log(f"warning: unable to stat {fn}; will try again later\n")
            heapq.heappush(self.pqdone, (int(time.time()) + SLEEP_SYSFAIL, id_))
            return
        if not injectbounce(self.ctl, id_):
            heapq.heappush(self.pqdone, (int(time.time()) + SLEEP_SYSFAIL, id_))
            return
        log(f"end msg {id_}\n")
        try:
            os.unlink(queue.fn("info", id_))
        except OSError:
            log(f"warning: unable to unlink {queue.fn('info', id_)}; will try again later\n")
            heapq.heappush(self.pqdone, (int(time.time()) + SLEEP_SYSFAIL, id_))
            return
        answer = self.clean([f"foop/{id_}"])
        if answer is not None and answer[0] != b"+":
            log(f"warning: qmail-clean unable to clean up foop/{id_}\n")

    def pass_do(self) -> None:
        for c in (0, 1):
            self.pass_dochan(c)
        while self.pqfail and self.pqfail[0][0] <= self.recent:
            self.pqadd(heapq.heappop(self.pqfail)[1])
        while self.pqdone and self.pqdone[0][0] <= self.recent and not self.exitasap:
            self.messdone(heapq.heappop(self.pqdone)[1])

    # -- todo ------------------------------------------------------------------------
    def todo_do(self, pulled: bool) -> None:
        """Start preprocessing what todo/ holds; schedule what has been preprocessed."""
        if self.workers is None:
            return
        self.todo_collect()
        if self.exitasap:
            return
        if not self.todoscan:
            if not pulled and self.recent < self.nexttodorun:
                return
            self.trigger_set()
            found = send_todo.scan()
            if found is None:
                from mta.send_log import pausedir
                pausedir("todo")
                return
            self.todo = [id_ for id_ in found if id_ not in self.inflight]
            self.todoscan = True
            self.nexttodorun = self.recent + SLEEP_TODO
        while self.todo and self.workers.busy < 2 * send_todo.WORKERS:
            id_ = self.todo.pop()
            self.inflight.add(id_)
            self.workers.submit(id_)
        if not self.todo:
            self.todoscan = False

    def todo_collect(self) -> None:
        done = self.workers.results()
        self.inflight.difference_update(p.id for p in done)
        if not done:
            if not self.workers.busy:
                self.inflight.clear()
            return
        answers = self.clean([f"todo/{p.id}" for p in done])
        if answers is None:
            return
        now = int(time.time())
        for p, answer in zip(done, answers):
            if answer != b"+":
                log(f"warning: qmail-clean unable to clean up todo/{p.id}\n")
                continue
            for c in (0, 1):
                if p.channels[c]:
                    heapq.heappush(self.pqchan[c], (now, p.id))
            if not any(p.channels):
                heapq.heappush(self.pqdone, (now, p.id))

    # -- cleanup of leftovers --------------------------------------------------------
    def cleanup_do(self) -> None:
        if self.cleanupiter is None:
            if self.recent < self.cleanuptime:
                return
            try:
                self.cleanupiter = iter(queue.ids("mess"))
            except OSError:
                from mta.send_log import pausedir
                pausedir("mess")
                return
        id_ = next(self.cleanupiter, None)
        if id_ is None:
            self.cleanupiter = None
            self.cleanuptime = self.recent + SLEEP_CLEANUP
            return
        try:
            if self.recent <= os.stat(queue.fn("mess", id_)).st_atime + queue.OSSIFIED:
                return
            if not queue.missing(queue.fn("info", id_)):
                return
            if not queue.missing(queue.fn("todo", id_)):
                return
        except OSError:
            return
        answer = self.clean([f"foop/{id_}"])
        if answer is not None and answer[0] != b"+":
            log(f"warning: qmail-clean unable to clean up foop/{id_}\n")

    # -- the loop --------------------------------------------------------------------
    def wakeup(self) -> float:
        wake = self.recent + SLEEP_FOREVER
        if not self.exitasap:
            for c in (0, 1):
                if self.passes[c] is not None and self.del_avail(c):
                    return 0
            if self.jobs < self.numjobs:
                for c in (0, 1):
                    if self.passes[c] is None and self.pqchan[c]:
                        wake = min(wake, self.pqchan[c][0][0])
            if self.pqfail:
                wake = min(wake, self.pqfail[0][0])
            if self.pqdone:
                wake = min(wake, self.pqdone[0][0])
            if self.todoscan and self.workers.busy < 2 * send_todo.WORKERS:
                return 0
            wake = min(wake, self.nexttodorun)
        if self.cleanupiter is not None:
            return 0
        return min(wake, self.cleanuptime)

    def loop(self, sigfd: int) -> None:
        while not self.exitasap or any(self.spawnalive[c] and self.used[c] for c in (0, 1)):
            self.recent = int(time.time())
            if self.runasap:
                self.runasap = False
                self.pqrun()
            if self.readasap:
                self.readasap = False
                self.reread()
            wake = self.wakeup()
            rfds = [sigfd]
            wfds = []
            for c in (0, 1):
                if self.spawnalive[c]:
                    rfds.append(CHANFDIN[c])
                    if self.comm[c]:
                        wfds.append(CHANFDOUT[c])
            if not self.exitasap and self.trigger >= 0:
                rfds.append(self.trigger)
            if self.queued >= 0:
                rfds.append(self.queued)
            rfds.append(self.wake_r)
            timeout = 0 if wake <= self.recent else wake - self.recent + SLEEP_FUZZ
            try:
                r, w, _ = select.select(rfds, wfds, [], timeout)
            except OSError:
                log("warning: trouble in select\n")
                continue
            if sigfd in r:
                self.signals(sigfd)
            if self.queued in r:
                self.queued_died()
            if self.wake_r in r:
                try:
                    os.read(self.wake_r, 4096)
                except OSError:
                    pass
            self.recent = int(time.time())
            for c in (0, 1):
                if CHANFDOUT[c] in w and self.spawnalive[c]:
                    self.comm_do(c)
            for c in (0, 1):
                if CHANFDIN[c] in r and self.spawnalive[c]:
                    self.del_dochan(c)
            self.todo_do(self.trigger in r)
            self.pass_do()
            self.cleanup_do()
            for c in (0, 1):  # start writing new commands at once
                if self.comm[c] and self.spawnalive[c]:
                    self.comm_do(c)

    def queued_died(self) -> None:
        try:
            if os.read(self.queued, 512):
                return
        except BlockingIOError:
            return
        except OSError:
            pass
        log("alert: oh no! lost qmail-queued connection! dying...\n")
        os.close(self.queued)
        self.queued = -1
        self.exitasap = True

    def signals(self, sigfd: int) -> None:
        try:
            got = os.read(sigfd, 64)
        except OSError:
            return
        for sig in got:
            if sig == signal.SIGTERM:
                self.exitasap = True
            elif sig == signal.SIGALRM:
                self.runasap = True
            elif sig == signal.SIGHUP:
                self.readasap = True

    def reread(self) -> None:
        try:
            self.ctl.reread()
        except OSError as e:
            name = "locals" if "locals" in str(getattr(e, "filename", "")) else "virtualdomains"
            log(f"alert: unable to reread control/{name}\n")


def main(argv: list[str]) -> int:
    try:
        os.chdir(control.qmail_home())
    except OSError:
        log("alert: cannot start: unable to switch to home directory\n")
        return 111
    try:
        ctl = Controls()
    except OSError:
        log("alert: cannot start: unable to read controls\n")
        return 111
    try:
        os.chdir("queue")
    except OSError:
        log("alert: cannot start: unable to switch to queue directory\n")
        return 111
    sig_r, sig_w = os.pipe()
    os.set_blocking(sig_w, False)
    signal.set_wakeup_fd(sig_w, warn_on_full_buffer=False)
    for sig in (signal.SIGTERM, signal.SIGALRM, signal.SIGHUP):
        signal.signal(sig, lambda *_: None)
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    os.umask(0o077)
    try:
        fd = os.open("lock/sendmutex", os.O_WRONLY | os.O_NONBLOCK)
    except OSError:
        log("alert: cannot start: unable to open mutex\n")
        return 111
    try:
        lock_exnb(fd)
    except OSError:
        log("alert: cannot start: qmail-send is already running\n")
        return 111
    s = Send(ctl)
    try:
        import stat
        if stat.S_ISFIFO(os.fstat(7).st_mode):
            s.queued = 7
            os.set_blocking(7, False)
    except OSError:
        pass
    for c in (0, 1):
        while True:
            try:
                ch = os.read(CHANFDIN[c], 1)
                break
            except InterruptedError:
                continue
            except OSError:
                ch = b""
                break
        if not ch:
            log("alert: cannot start: hath the daemon spawn no fire?\n")
            return 111
        s.concurrency[c] = min(s.concurrency[c], ch[0])
        s.numjobs += s.concurrency[c]
        s.d[c] = [None] * s.concurrency[c]
    for c in (0, 1):
        try:
            os.set_blocking(CHANFDOUT[c], False)
        except OSError:
            s.spawndied(c)
    s.pqstart()
    s.status()
    s.trigger_set()
    s.loop(sig_r)
    s.pqfinish()
    log("status: exiting\n")
    return 0


def cli() -> None:
    run(main)


if __name__ == "__main__":
    cli()
