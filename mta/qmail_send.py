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
import math
import os
import select
import signal
import time

from mta import send_todo
from mta.send_bounce import addbounce, getinfo, injectbounce
from mta.send_log import log, safe
from mta.send_rewrite import Controls, senderadd
from pyqmail import control, queue
from pyqmail.fsutil import lock_exnb
from pyqmail.strerr import run

SLEEP_TODO = 1500
SLEEP_FUZZ = 1
SLEEP_FOREVER = 86400
SLEEP_CLEANUP = 76431
SLEEP_SYSFAIL = 123
REPORTMAX = 10000
CHANNELS = ("local", "remote")
CHANFDOUT = (1, 3)
CHANFDIN = (2, 4)
CHANSKIP = (10, 20)


class Job:
    __slots__ = ("refs", "id", "channel", "retry", "sender", "numtodo", "flaghiteof", "flagdying")

    def __init__(self, id_: int, channel: int) -> None:
        self.refs = 1
        self.id = id_
        self.channel = channel
        self.retry = 0
        self.sender = b""
        self.numtodo = 0
        self.flaghiteof = False
        self.flagdying = False


class Del:
    __slots__ = ("job", "delid", "mpos", "recip")

    def __init__(self, job: Job, delid: int, mpos: int, recip: bytes) -> None:
        self.job, self.delid, self.mpos, self.recip = job, delid, mpos, recip


class Pass:
    """A channel's walk through one message's recipient file."""

    __slots__ = ("id", "job", "records", "i")

    def __init__(self, id_: int, job: Job, records: list[tuple[int, bytes]]) -> None:
        self.id, self.job, self.records, self.i = id_, job, records, 0


def nextretry(birth: int, recent: int, c: int) -> int:
    n = 0 if birth > recent else math.isqrt(recent - birth)
    n += CHANSKIP[c]
    return birth + n * n


class Send:
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

    # -- jobs ------------------------------------------------------------------------
    def job_close(self, j: Job) -> None:
        j.refs -= 1
        if j.refs > 0:
            return
        self.jobs -= 1
        dt = j.retry
        if j.flaghiteof and not j.numtodo:
            fn = queue.fn(CHANNELS[j.channel], j.id)
            try:
                os.unlink(fn)
            except OSError:
                log(f"warning: unable to unlink {fn}; will try again later\n")
                dt = int(time.time()) + SLEEP_SYSFAIL
            else:
                other = queue.fn(CHANNELS[1 - j.channel], j.id)
                try:
                    os.stat(other)
                    return  # more channels going
                except FileNotFoundError:
                    pass
                except OSError:
                    log(f"warning: unable to stat {other}\n")
                heapq.heappush(self.pqdone, (int(time.time()), j.id))
                return
        heapq.heappush(self.pqchan[j.channel], (dt, j.id))

    # -- deliveries ------------------------------------------------------------------
    def status(self) -> None:
        log(f"status: local {self.used[0]}/{self.concurrency[0]} "
            f"remote {self.used[1]}/{self.concurrency[1]}"
            + (" exitasap" if self.exitasap else "") + "\n")

    def spawndied(self, c: int) -> None:
        log("alert: oh no! lost spawn connection! dying...\n")
        self.spawnalive[c] = False
        self.exitasap = True

    def del_avail(self, c: int) -> bool:
        return (self.spawnalive[c] and len(self.comm[c]) < 4096
                and self.used[c] < self.concurrency[c])

    def del_start(self, j: Job, mpos: int, recip: bytes) -> None:
        c = j.channel
        slots = self.d[c]
        i = slots.index(None)
        j.refs += 1
        dl = Del(j, self.masterdelid, mpos, recip)
        self.masterdelid += 1
        slots[i] = dl
        self.used[c] += 1
        self.comm[c] += (bytes([i]) + queue.fn("", j.id, True).lstrip("/").encode() + b"\0"
                         + senderadd(j.sender, recip) + b"\0" + recip + b"\0")
        log(f"starting delivery {dl.delid}: msg {j.id} to {CHANNELS[c]} ", safe(recip), "\n")
        self.status()

    def markdone(self, c: int, id_: int, pos: int) -> None:
        fn = queue.fn(CHANNELS[c], id_)
        try:
            fd = os.open(fn, os.O_WRONLY | os.O_NONBLOCK)
            try:
                os.lseek(fd, pos, os.SEEK_SET)
                if os.write(fd, b"D") == 1:
                    return
            finally:
                os.close(fd)
        except OSError:
            pass
        log(f"warning: trouble marking {fn}; message will be delivered twice!\n")

    def comm_do(self, c: int) -> None:
        try:
            n = os.write(CHANFDOUT[c], self.comm[c])
        except BlockingIOError:
            return
        except BrokenPipeError:
            self.spawndied(c)
            return
        except OSError:
            return
        del self.comm[c][:n]

    def del_dochan(self, c: int) -> None:
        try:
            data = os.read(CHANFDIN[c], 8192)
        except OSError:
            return
        if not data:
            self.spawndied(c)
            return
        line = self.dline[c]
        for ch in data:
            line.append(ch)
            if len(line) > REPORTMAX:
                del line[REPORTMAX:]
            if ch == 0 and len(line) > 1:
                self.report(c, bytes(line[:-1]))
                line.clear()

    def report(self, c: int, rep: bytes) -> None:
        delnum = rep[0]
        dl = self.d[c][delnum] if delnum < len(self.d[c]) else None
        if dl is None:
            log("warning: internal error: delivery report out of range\n")
            return
        kind, text = rep[1:2], rep[2:]
        if kind == b"Z" and dl.job.flagdying:
            kind = b"D"
            text += b"I'm not going to try again; this message has been in the queue too long.\n"
        if kind == b"K":
            log(f"delivery {dl.delid}: success: ", safe(text), "\n")
            self.markdone(c, dl.job.id, dl.mpos)
            dl.job.numtodo -= 1
        elif kind == b"Z":
            log(f"delivery {dl.delid}: deferral: ", safe(text), "\n")
        elif kind == b"D":
            log(f"delivery {dl.delid}: failure: ", safe(text), "\n")
            addbounce(self.ctl, dl.job.id, dl.recip, text)
            self.markdone(c, dl.job.id, dl.mpos)
            dl.job.numtodo -= 1
        else:
            log(f"delivery {dl.delid}: report mangled, will defer\n")
        self.job_close(dl.job)
        self.d[c][delnum] = None
        self.used[c] -= 1
        self.status()

    # -- passes ----------------------------------------------------------------------
    def pass_dochan(self, c: int) -> None:
        if self.exitasap:
            return
        while True:
            p = self.passes[c]
            if p is None:
                if self.jobs >= self.numjobs or not self.pqchan[c]:
                    return
                dt, id_ = self.pqchan[c][0]
                if dt > self.recent:
                    return
                heapq.heappop(self.pqchan[c])
                fn = queue.fn(CHANNELS[c], id_)
                try:
                    with open(fn, "rb") as f:
                        data = f.read()
                    info = getinfo(id_)
                except OSError:
                    info = None
                if info is None:
                    log(f"warning: trouble opening {fn}; will try again later\n")
                    heapq.heappush(self.pqchan[c], (self.recent + SLEEP_SYSFAIL, id_))
                    return
                job = Job(id_, c)
                self.jobs += 1
                sender, birth = info
                job.retry = nextretry(birth, self.recent, c)
                job.flagdying = self.recent > birth + self.ctl.lifetime
                job.sender = sender
                records, pos = [], 0
                for rec in data.split(b"\0")[:-1]:
                    records.append((pos, rec))
                    pos += len(rec) + 1
                p = self.passes[c] = Pass(id_, job, records)
            if not self.del_avail(c):
                return
            if p.i >= len(p.records):
                p.job.flaghiteof = True
                self.job_close(p.job)
                self.passes[c] = None
                continue
            pos, rec = p.records[p.i]
            p.i += 1
            kind = rec[:1]
            if kind == b"T":
                p.job.numtodo += 1
                self.del_start(p.job, pos, rec[1:])
            elif kind != b"D":
                log(f"warning: unknown record type in {queue.fn(CHANNELS[c], p.id)}!\n")
                self.job_close(p.job)
                self.passes[c] = None

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
