"""multilog: read lines from stdin and append selected lines to any number of logs.

Usage: ``multilog script``, where each argument is one action, carried out in
order for every line: ``t`` (timestamp; only as the first action), ``-pattern``
/ ``+pattern`` (deselect / select), ``e`` (to stderr), ``=file`` (status
file), ``ssize``, ``nnum``, ``!processor`` (settings for the logs that follow)
and ``./dir`` or ``/dir`` (an automatically rotated log).  Anything else is
ignored, as by the original.

The original handles a byte at a time; this works on whole reads.  A read is
cut into lines with bytes methods, stamped with one ``replace`` and selected
by block matching (multilog_lines, multilog_match), so no Python code runs
per line on the common paths.  One timestamp per read stands for the
original's one per line: all lines of one read arrived together.  Where a log
will be cut, the read is taken 1024 bytes at a time, the original's read
size, and multilog_dir replays the original's buffering to cut it at the same
byte; elsewhere the output goes to disk in one write.
"""
from __future__ import annotations

import os
import select
import signal

from pyqmail.strerr import die, run
from svtools import multilog_match as mm
from svtools.multilog_dir import FATAL, SLACK, Dir, pause, stamp
from svtools.multilog_lines import Lines, Result

#: how much to read at once
READSIZE = 256 * 1024
#: the original's read size: its buffers are flushed (and logs cut) between reads
VREAD = 1024
_RD = os.O_RDONLY | os.O_NONBLOCK


def scan_ulong(s: bytes) -> int:
    """djb's scan_ulong: the leading decimal digits (0 if none), wrapping like C."""
    n = 0
    for c in s:
        if not 48 <= c <= 57:
            break
        n = (n * 10 + c - 48) & 0xFFFFFFFFFFFFFFFF
    return n


class Multilog:
    """One multilog process: its status files, its logs, its input loop."""

    def __init__(self, script: list[str], fdstartdir: int) -> None:
        self.script = script
        self.fdstartdir = fdstartdir
        self.status: list[tuple[int, str]] = []
        self.dirs: list[Dir] = []
        self.lines = Lines([], 0, bool(script) and script[0][:1] == "t")
        self.flagnewline = True
        self.flagexitasap = False
        self.flagforcerotate = False

    # -- start-up: the original's f_init and c_init ------------------------------------
    def f_init(self) -> None:
        """Create and open every ``=file``, relative to the starting directory."""
        for arg in self.script:
            if arg[:1] != "=":
                continue
            fn = arg[1:]
            try:
                os.fchdir(self.fdstartdir)
            except OSError as e:
                die(111, FATAL, "unable to switch to starting directory: ", exc=e)
            try:
                os.close(os.open(fn, os.O_WRONLY | os.O_NONBLOCK | os.O_APPEND | os.O_CREAT, 0o600))
            except OSError as e:
                die(111, FATAL, "unable to create ", fn, ": ", exc=e)
            try:
                fd = os.open(fn, os.O_WRONLY | os.O_NONBLOCK)
            except OSError as e:
                die(111, FATAL, "unable to write ", fn, ": ", exc=e)
            self.status.append((fd, fn))

    def c_init(self) -> None:
        """Read the script in order; open each log with the settings then in force."""
        actions = self.lines.actions
        processor = None
        num = 10
        size = 99999
        for arg in self.script:
            c = arg[:1]
            if c == "s":
                size = min(max(scan_ulong(os.fsencode(arg[1:])), 4096), 16777215)
            elif c == "n":
                num = max(scan_ulong(os.fsencode(arg[1:])), 2)
            elif c == "!":
                processor = arg[1:]
            elif c in (".", "/"):
                d = Dir(arg, size, num, processor)
                d.restart(self.fdstartdir)
                actions.append(("d", len(self.dirs)))
                self.dirs.append(d)
            elif c in ("+", "-"):
                actions.append((c, mm.Pattern(os.fsencode(arg[1:]))))
            elif c == "e":
                actions.append(("e", None))
            elif c == "=":
                actions.append(("=", sum(1 for k, _ in actions if k == "=")))
        self.lines.ndirs = len(self.dirs)

    # -- writing ------------------------------------------------------------------------
    def commit(self, res: Result, outs: list[bytes]) -> None:
        """Make ``res`` happen (alerts, status files, logs), then take its line state."""
        if res.err:
            _write_stderr(b"".join(res.err))
        # in the order the original writes them: by line, then by place in the script
        for i, (_, head) in sorted(res.status.items(), key=lambda item: (item[1][0], item[0])):
            self.write_status(i, head)
        for d, out in zip(self.dirs, outs):
            if out:
                if d.safe(out):
                    d.write_bulk(out)
                else:
                    d.write_exact(out)
        self.lines.take(res)

    def write_status(self, i: int, head: bytes) -> None:
        """Overwrite the status file's first 1001 bytes: the line, padded with newlines."""
        fd, fn = self.status[i]
        data = head + b"\n" * (1001 - len(head))
        while True:
            while True:
                try:
                    os.lseek(fd, 0, os.SEEK_SET)
                    break
                except OSError as e:
                    pause("unable to move to beginning of ", fn, ", pausing: ", exc=e)
            try:
                if os.write(fd, data) == 1001:
                    return
            except OSError as e:
                pause("unable to write ", fn, ", pausing: ", exc=e)
                continue
            pause("unable to write ", fn, ", pausing: ")

    def piece_len(self, remaining: int) -> int:
        """How much of a read to take at once: all of it, unless a log may be cut."""
        est = remaining
        for d in self.dirs:
            if d.ratio > 0:
                room = d.size - SLACK - 1 - d.bytes - (2 * VREAD * d.ratio + 1000)
                est = min(est, int(room / d.ratio) if room > 0 else 0)
        if est >= remaining:
            return remaining
        return min(remaining, max(VREAD, est // VREAD * VREAD))

    def shrink(self, length: int, outs: list[bytes], bad: list[int]) -> int:
        """A shorter piece, meant to stop short of where the logs ``bad`` are cut."""
        best = length
        for i in bad:
            d = self.dirs[i]
            out = outs[i]
            nl = out.find(b"\n", max(d.size - SLACK - 1 - d.bytes, 0))
            lim = min(max(d.size - d.bytes, 0), nl if nl >= 0 else len(out))
            best = min(best, int(length * lim / len(out) * 0.9) - VREAD)
        best = best // VREAD * VREAD
        if best >= length:
            best = length // 2 // VREAD * VREAD
        return max(VREAD, best)

    def process(self, buf: bytes) -> None:
        """Handle one read: in large pieces, and 1024 bytes at a time where a log is cut."""
        st = stamp() + b" " if self.lines.flagtimestamp else b""
        n = len(buf)
        pos = 0
        dirs = self.dirs
        while pos < n:
            length = self.piece_len(n - pos)
            while True:
                piece = buf if length == n else buf[pos:pos + length]
                res = self.lines.feed(piece, st)
                outs = [o[0] if len(o) == 1 else b"".join(o) for o in res.outs]
                if length <= VREAD:
                    break  # one of the original's reads: written through its buffering
                bad = [i for i, d in enumerate(dirs) if not d.safe(outs[i])]
                if not bad:
                    break
                length = self.shrink(length, outs, bad)
            self.commit(res, outs)
            if length >= 8 * VREAD:
                for d, o in zip(dirs, outs):
                    r = len(o) / length
                    d.ratio = r if r > d.ratio else (d.ratio + r) / 2
            pos += length

    # -- the loop -------------------------------------------------------------------------
    def doit(self) -> None:
        """Read until the end of input (or TERM at a line's end); then finish the logs."""
        inbuf = bytearray(READSIZE)
        inview = memoryview(inbuf)
        wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
        while True:
            if self.flagforcerotate:
                self.flagforcerotate = False
                for d in self.dirs:
                    if d.bytes > 0:
                        d.fullcurrent()
            if self.flagexitasap:
                if self.flagnewline:
                    break
                size = 1  # finish the line, and leave the rest of stdin unread
            else:
                size = READSIZE
            try:
                ready, _, _ = select.select([0, wake_r], [], [])
            except OSError:
                break  # no stdin: the original's read fails, which ends its input
            if wake_r in ready:
                try:
                    while os.read(wake_r, 64):
                        pass
                except OSError:
                    pass
                continue  # a signal: act on it before reading more, as the original
            try:
                if size == READSIZE:  # into one buffer: os.read would mmap 256 KiB each time
                    got = os.readv(0, [inbuf])
                    buf = inview[:got].tobytes()
                else:
                    buf = os.read(0, size)
            except OSError:
                break
            if not buf:
                break
            self.flagnewline = buf[-1] == 10
            self.process(buf)
        res = self.lines.end()
        self.commit(res, [b"".join(o) for o in res.outs])
        for d in self.dirs:
            d.quit()

    def on_term(self, signum: int, frame: object) -> None:
        self.flagexitasap = True

    def on_alarm(self, signum: int, frame: object) -> None:
        self.flagforcerotate = True


def _write_stderr(data: bytes) -> None:
    """Alerts to fd 2; like the original, a failure to write them is ignored."""
    view = memoryview(data)
    try:
        while view:
            view = view[os.write(2, view):]
    except OSError:
        pass


def main(argv: list[str]) -> int:
    """Run the script ``argv[1:]`` over stdin; exit 0 at the end of input."""
    os.umask(0o022)
    try:
        fdstartdir = os.open(".", _RD)
    except OSError as e:
        die(111, FATAL, "unable to switch to current directory: ", exc=e)
    log = Multilog(argv[1:], fdstartdir)
    signal.signal(signal.SIGTERM, log.on_term)
    signal.signal(signal.SIGALRM, log.on_alarm)
    log.f_init()
    log.c_init()
    log.doit()
    return 0


def cli() -> None:
    run(main)


if __name__ == "__main__":
    cli()
