"""What multilog's script makes of each read: pure computation, no I/O.

:class:`Lines` holds the script's actions and the state carried from one read
to the next (the start of an unfinished line, or where the rest of a long
line goes).  :meth:`Lines.feed` takes one read and returns a :class:`Result`:
the bytes each log receives, the alerts for stderr and the status files'
lines, without doing any of it, so that the caller can try a shorter piece
when a log would have to be cut.

Lines are handled as the original handles them: its ``line`` buffer holds at
most 1000 bytes (stamp included), which is what patterns, ``e`` and ``=``
see; a line's first 1000 bytes are decided on as soon as they are read and
the rest of a long line follows them out byte by byte as it arrives.  Whole
lines within a read are done as a block (multilog_match), the line begun
before the read and the line left unfinished at its end one at a time.
"""
from __future__ import annotations

from svtools import multilog_match as mm

#: the original's line buffer: what a pattern, ``e`` and ``=`` see of a line
HEAD = 1000
#: where the line left unfinished at the end of a read sorts among its lines
_LAST = 1 << 62


class Result:
    """One read's effect: new line state, output per log, alerts, status lines."""

    __slots__ = ("head", "tail", "outs", "err", "status")

    def __init__(self, head: bytes, tail: tuple | None, outs: list, err: list, status: dict):
        self.head = head  # the start of an unfinished line (stamp included), < 1000 bytes
        self.tail = tail  # per log, while the rest of a long line streams; else None
        self.outs = outs  # per log: a list of byte strings, in order
        self.err = err  # bytes for stderr, in order
        self.status = status  # ``=`` index: (place of the line in the read, its first 1000 bytes)


class Lines:
    """The script's actions and the line state between reads."""

    def __init__(self, actions: list[tuple[str, object]], ndirs: int, flagtimestamp: bool) -> None:
        #: ("+"|"-", Pattern), ("e", None), ("=", status index), ("d", log index)
        self.actions = actions
        self.ndirs = ndirs
        self.flagtimestamp = flagtimestamp
        self.head = b""
        self.tail: tuple[bool, ...] | None = None

    def take(self, res: Result) -> None:
        """Adopt the line state after ``res`` (once its output is written)."""
        self.head, self.tail = res.head, res.tail

    def decide(self, head: bytes, err: list, status: dict, where: int = 0) -> list[bool]:
        """Run the script on one line's first 1000 bytes; say which logs take it.

        ``where`` places the line among the others of the read (for ``=``).
        """
        sel = True
        dirsel = []
        for kind, x in self.actions:
            if kind == "d":
                dirsel.append(sel)
            elif kind == "+":
                if not sel and x.match(head):
                    sel = True
            elif kind == "-":
                if sel and x.match(head):
                    sel = False
            elif sel:
                if kind == "e":
                    err.append(head[:200] + b"...\n" if len(head) > 200 else head + b"\n")
                else:
                    status[x] = (where, head)
        return dirsel

    def block(self, T: bytes, a: int, b: int, outs: list, err: list, status: dict) -> None:
        """Run the script on the whole lines ``T[a:b]`` (each ending in a newline) at once."""
        sel = mm.EVERY
        ends: dict[int, int] = {}
        cache: dict[bytes, object] = {}
        di = 0
        alerts: list[tuple[int, bytes]] = []
        nalerts = 0
        for kind, x in self.actions:
            if kind == "+" or kind == "-":
                if not mm.needed(sel, kind):
                    continue
                matched = cache.get(x.text)
                if matched is None:
                    matched = cache[x.text] = x.block(T, a, b, ends)
                sel = mm.apply(sel, kind, matched)
            elif kind == "d":
                outs[di].extend(mm.pieces(sel, T, a, b, ends))
                di += 1
            elif kind == "e":
                nalerts += 1
                alerts.extend((s, T[s:s + 200] + b"...\n" if le - s > 200 else T[s:le + 1])
                              for s, le in mm.lines(sel, T, a, b, ends))
            else:
                r = mm.last(sel, T, a, b, ends)
                if r is not None:
                    s, le = r
                    status[x] = (1 + s, T[s:min(le, s + HEAD)])
        if nalerts > 1:  # the original prints line by line: merge, keeping script order
            alerts.sort(key=lambda item: item[0])
        err.extend(data for _, data in alerts)

    def feed(self, buf: bytes, st: bytes) -> Result:
        """What reading ``buf`` does; ``st`` is this read's stamp and a space (or b"")."""
        head, tail = self.head, self.tail
        outs: list[list] = [[] for _ in range(self.ndirs)]
        err: list[bytes] = []
        status: dict[int, tuple[int, bytes]] = {}
        n = len(buf)
        pos = 0
        if tail is not None:  # the rest of a long line goes where its start went
            j = buf.find(b"\n")
            end = n if j < 0 else j + 1
            piece = buf[:end]
            for o, s in zip(outs, tail):
                if s:
                    o.append(piece)
            if j < 0:
                return Result(head, tail, outs, err, status)
            tail = None
            pos = end
        elif head:  # a line begun in an earlier read
            need = HEAD - len(head)
            j = buf.find(b"\n", 0, need)
            if j >= 0:
                line = head + buf[:j]
                data = line + b"\n"
                for o, s in zip(outs, self.decide(line, err, status)):
                    if s:
                        o.append(data)
                pos = j + 1
            elif n >= need:
                h = head + buf[:need]
                sel = self.decide(h, err, status)
                j = buf.find(b"\n", need)
                end = n if j < 0 else j + 1
                rest = buf[need:end]
                for o, s in zip(outs, sel):
                    if s:
                        o.append(h)
                        o.append(rest)
                if j < 0:
                    return Result(b"", tuple(sel), outs, err, status)
                pos = end
            else:
                return Result(head + buf, None, outs, err, status)
        g = buf.rfind(b"\n", pos) + 1
        if g > pos:
            if st:
                T = st + buf[pos:g].replace(b"\n", b"\n" + st)
                self.block(T, 0, len(T) - len(st), outs, err, status)
            else:
                self.block(buf, pos, g, outs, err, status)
        else:
            g = pos
        if g < n:  # a line begins and does not end in this read
            h = st + buf[g:]
            if len(h) < HEAD:
                return Result(h, None, outs, err, status)
            sel = self.decide(h[:HEAD], err, status, _LAST)
            for o, s in zip(outs, sel):
                if s:
                    o.append(h)
            return Result(b"", tuple(sel), outs, err, status)
        return Result(b"", None, outs, err, status)

    def end(self) -> Result:
        """The end of input: an unfinished line gets its newline."""
        outs: list[list] = [[] for _ in range(self.ndirs)]
        err: list[bytes] = []
        status: dict[int, tuple[int, bytes]] = {}
        if self.tail is not None:
            for o, s in zip(outs, self.tail):
                if s:
                    o.append(b"\n")
        elif self.head:
            data = self.head + b"\n"
            for o, s in zip(outs, self.decide(self.head, err, status)):
                if s:
                    o.append(data)
        return Result(b"", None, outs, err, status)
