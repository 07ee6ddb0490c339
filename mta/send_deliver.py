"""qmail-send's deliveries: jobs, the channels to qmail-lspawn and
qmail-rspawn, delivery reports, and the passes through a message's
recipients (the JOBS, DELIVERIES and PASSES parts of qmail-send.c)."""
from __future__ import annotations

import heapq
import math
import os
import time

from mta.send_bounce import addbounce, getinfo
from mta.send_log import log, safe
from mta.send_rewrite import senderadd
from pyqmail import queue

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


class Deliveries:
    """The delivery half of :class:`mta.qmail_send.Send` (which sets up its state)."""

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
