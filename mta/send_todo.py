"""qmail-send's preprocessing of ``todo/``: each new message gets ``info/N``
(its sender) and ``local/N``/``remote/N`` (its recipients, rewritten), then
qmail-clean removes ``todo/N`` and ``intd/N``.

Messages are preprocessed by a few worker threads at once (:class:`Workers`),
each writing and fsyncing one message's new files, so that file creation
and fsyncs overlap and one journal commit serves several; qmail-send's loop
only collects the results, asks qmail-clean to remove ``todo/N``, and
schedules the deliveries.
"""
from __future__ import annotations

import os
import queue as _queue
import threading

from mta.send_log import log, safe
from mta.send_rewrite import Controls
from pyqmail import queue
from pyqmail.scan import scan_ulong

CHANNELS = ("local", "remote")
#: worker threads, and so messages being preprocessed at once
WORKERS = 8


class Prepared:
    """One message whose files are written but not yet fsynced."""

    def __init__(self, id_: int) -> None:
        self.id = id_
        self.fds: list[tuple[int, str]] = []
        self.channels: list[bool] = [False, False]


def _write(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def prepare(ctl: Controls, id_: int) -> Prepared | None:
    """Steps of todo_do up to the fsyncs; None (after a warning) on trouble."""
    todofn = queue.fn("todo", id_)
    try:
        with open(todofn, "rb") as f:
            data = f.read()
    except OSError:
        log(f"warning: unable to open {todofn}\n")
        return None
    messfn = queue.fn("mess", id_)
    try:
        size = os.stat(messfn).st_size
    except OSError:
        log(f"warning: unable to stat {messfn}\n")
        return None
    for name in ("local", "remote", "info"):
        path = queue.fn(name, id_)
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        except OSError:
            log(f"warning: unable to unlink {path}\n")
            return None
    p = Prepared(id_)
    infofn = queue.fn("info", id_)
    try:
        fdinfo = os.open(infofn, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError:
        log(f"warning: unable to create {infofn}\n")
        return None
    p.fds.append((fdinfo, infofn))
    log(f"new msg {id_}\n")
    chan: list[list[bytes]] = [[], []]
    uid = pid = 0
    ok = True
    records = data.split(b"\0")
    records.pop()  # what follows the last NUL is not a record
    try:
        for rec in records:
            kind = rec[:1]
            if kind == b"u":
                uid = scan_ulong(rec[1:])[0]
            elif kind == b"p":
                pid = scan_ulong(rec[1:])[0]
            elif kind == b"F":
                _write(fdinfo, rec + b"\0")
                log(b"info msg %d: bytes %d from <" % (id_, size), safe(rec[1:]),
                    b"> qp %d uid %d\n" % (pid, uid))
            elif kind == b"T":
                c, addr = ctl.rewrite(rec[1:])
                chan[c].append(b"T" + addr + b"\0")
            else:
                log(f"warning: unknown record type in {todofn}\n")
                ok = False
                break
    except OSError:
        log(f"warning: trouble writing to {infofn}\n")
        ok = False
    if ok:
        for c in (0, 1):
            if not chan[c]:
                continue
            path = queue.fn(CHANNELS[c], id_)
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except OSError:
                log(f"warning: unable to create {path}\n")
                ok = False
                break
            p.fds.append((fd, path))
            p.channels[c] = True
            try:
                _write(fd, b"".join(chan[c]))
            except OSError:
                log(f"warning: trouble writing to {path}\n")
                ok = False
                break
    if not ok:
        for fd, _ in p.fds:
            os.close(fd)
        return None
    return p


def finish(p: Prepared) -> bool:
    """fsync and close the message's new files; False (after a warning) on trouble."""
    good = True
    for fd, path in p.fds:
        try:
            if good:
                os.fsync(fd)
        except OSError:
            log(f"warning: trouble fsyncing {path}\n")
            good = False
        finally:
            os.close(fd)
    return good


class Workers:
    """Threads that preprocess messages; results come back through :meth:`results`,
    and each one written wakes the caller's select through ``wake`` (a pipe)."""

    def __init__(self, ctl: Controls, wake: int) -> None:
        self.ctl = ctl
        self.wake = wake
        self.todo: _queue.SimpleQueue = _queue.SimpleQueue()
        self.done: _queue.SimpleQueue = _queue.SimpleQueue()
        self.busy = 0
        for _ in range(WORKERS):
            threading.Thread(target=self._work, daemon=True).start()

    def submit(self, id_: int) -> None:
        self.busy += 1
        self.todo.put(id_)

    def _work(self) -> None:
        while True:
            id_ = self.todo.get()
            p = None
            try:
                p = prepare(self.ctl, id_)
                if p is not None and not finish(p):
                    p = None
            except Exception as e:  # noqa: BLE001 - a bug must not kill the thread
                log(f"warning: trouble preprocessing todo/{id_}: {e}\n")
            self.done.put(p)
            try:
                os.write(self.wake, b"t")
            except OSError:
                pass

    def results(self) -> list[Prepared]:
        """The messages preprocessed since last asked (failures are dropped)."""
        out = []
        while True:
            try:
                p = self.done.get_nowait()
            except _queue.Empty:
                return out
            self.busy -= 1
            if p is not None:
                out.append(p)


def scan() -> list[int] | None:
    """The message numbers in ``todo/``, or None if it cannot be read."""
    try:
        names = os.listdir("todo")
    except OSError:
        return None
    found = []
    for name in names:
        n, used = scan_ulong(name)
        if used and used == len(name):
            found.append(n)
    return found
