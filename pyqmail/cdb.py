"""djb's constant database (CDB): a reader and a writer, byte-compatible with cdb_make.

A CDB file is a 2048-byte header of 256 (position, slot count) pairs, the
records (key length, data length, key, data), then 256 hash tables of
(hash, record position) slots.  All numbers are 32-bit little-endian.  The
hash is 5381, then ``h = (h * 33) ^ byte`` for each byte; ``h & 255`` picks the
table, ``(h >> 8) % slots`` the first slot to probe.

:class:`Writer` lays records, tables and slots out in exactly the order
djb's ``cdb_make`` does, so the same ``add`` calls give the same bytes as
tcprules, qmail-newu or cdbmake.  :class:`Reader` follows ``cdb_findnext``
step by step, so it finds what the C programs find, also for duplicate keys
(:meth:`Reader.find_all`).  A truncated or corrupt file raises
:class:`FormatError` (an ``OSError`` with errno ``EPROTO``, which is what
djb's ``cdb_read`` sets, so ``prog: fatal: unable to read x.cdb: protocol
error`` comes out as the original's), never ``IndexError`` or ``struct.error``;
an empty file gives errno ``EINVAL`` instead, as Debian's programs report it.
The file is mapped (as djb's cdb_init does) when it can be, read with pread
otherwise.
"""
from __future__ import annotations

import errno
import mmap
import os
import struct

from pyqmail.fsutil import write_all

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import BinaryIO, Iterator

_PAIR = struct.Struct("<LL")
_pack_pair = _PAIR.pack
_unpack_pair = _PAIR.unpack_from
_HEADER = 2048
_MAX = 0xFFFFFFFF


class FormatError(OSError):
    """The file is not a CDB, or is cut short: a temporary failure for the caller."""

    def __init__(self, message: str = "truncated or corrupt cdb", code: int = errno.EPROTO) -> None:
        super().__init__(code, message)


def cdb_hash(key: bytes) -> int:
    """djb's CDB hash of ``key``: 5381, then times 33 xor each byte, mod 2**32."""
    h = 5381
    if len(key) <= 24:
        # masking at the end is the same as masking every step: the xor only
        # touches the low 8 bits, and reduction mod 2**32 commutes with * 33
        for c in key:
            h = (h * 33) ^ c
        return h & _MAX
    for c in key:
        h = ((h * 33) ^ c) & _MAX
    return h


class Reader:
    """Look keys up in a CDB file (or an open descriptor, which stays the caller's).

    Use as a context manager or call :meth:`close`.  Opening a missing file
    raises the ``OSError`` of ``open``; reading outside the file raises
    :class:`FormatError`.
    """

    def __init__(self, source: str | bytes | os.PathLike | int) -> None:
        self._fd = -1
        self._map: mmap.mmap | bytes | None = b""
        if isinstance(source, int):
            self._src = source
        else:
            # non-blocking as djb's open_read: a FIFO must not hang the caller
            self._src = self._fd = os.open(source, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            size = os.fstat(self._src).st_size
        except OSError:
            self.close()
            raise
        self._size = size
        if size:
            try:
                self._map = mmap.mmap(self._src, size, mmap.MAP_SHARED, mmap.PROT_READ)
            except (OSError, ValueError):
                # not mappable (a directory, a device): read as cdb_read does then,
                # and let read(2) give the reason
                self._map = None

    def close(self) -> None:
        """Unmap the file and close it if this reader opened it."""
        m, self._map = self._map, b""
        if isinstance(m, mmap.mmap):
            m.close()
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            os.close(fd)

    def __enter__(self) -> "Reader":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _read(self, pos: int, length: int) -> bytes:
        """``length`` bytes at ``pos``, or :class:`FormatError` past the end (cdb_read)."""
        m = self._map
        if not self._size:
            # cdb_init cannot map an empty file (mmap says EINVAL), and that
            # reason is what the C programs report for it
            raise FormatError("empty cdb", errno.EINVAL)
        if m is not None:
            if pos > self._size or self._size - pos < length:
                raise FormatError()
            return m[pos:pos + length]
        parts = []
        while length > 0:
            got = os.pread(self._src, length, pos)
            if not got:
                raise FormatError()
            parts.append(got)
            pos += len(got)
            length -= len(got)
        return b"".join(parts)

    def _pair(self, pos: int) -> tuple[int, int]:
        """The two numbers at ``pos``, as cdb_read and uint32_unpack give them."""
        return _unpack_pair(self._read(pos, 8))

    def _positions(self, key: bytes) -> Iterator[tuple[int, int]]:
        """(data position, data length) of each record for ``key``, as cdb_findnext."""
        h = cdb_hash(key)
        hpos, hslots = self._pair((h << 3) & 2047)
        if not hslots:
            return
        end = (hpos + (hslots << 3)) & _MAX
        kpos = (hpos + (((h >> 8) % hslots) << 3)) & _MAX
        klen = len(key)
        for _ in range(hslots):
            slot_hash, pos = self._pair(kpos)
            if not pos:
                return
            kpos = (kpos + 8) & _MAX
            if kpos == end:
                kpos = hpos
            if slot_hash == h:
                rklen, dlen = self._pair(pos)
                if rklen == klen and self._read(pos + 8, klen) == key:
                    yield (pos + 8 + klen) & _MAX, dlen

    def find(self, key: bytes) -> bytes | None:
        """The data of the first record for ``key``, or None."""
        for dpos, dlen in self._positions(key):
            return self._read(dpos, dlen)
        return None

    def find_all(self, key: bytes) -> list[bytes]:
        """The data of every record for ``key``, in the order they were added."""
        return [self._read(dpos, dlen) for dpos, dlen in self._positions(key)]

    def __contains__(self, key: bytes) -> bool:
        for _ in self._positions(key):
            return True
        return False

    def __iter__(self) -> Iterator[tuple[bytes, bytes]]:
        """Every (key, data) in file order, as cdbdump: records end where table 0 starts."""
        eod = self._pair(0)[0]
        pos = _HEADER
        while pos < eod:
            klen, dlen = self._pair(pos)
            key = self._read(pos + 8, klen)
            data = self._read(pos + 8 + klen, dlen)
            yield key, data
            pos += 8 + klen + dlen


class Writer:
    """Write a CDB to a descriptor or a binary file object, positioned anywhere.

    :meth:`add` the records, then :meth:`finish`, which writes the hash tables
    and the header; the caller then fsyncs, closes and renames as it sees fit.
    Like cdb_make, the records start at offset 2048 of the file.
    """

    _FLUSH = 1 << 16

    def __init__(self, target: int | BinaryIO) -> None:
        if isinstance(target, int):
            fd = target
            self._seek = lambda pos: os.lseek(fd, pos, os.SEEK_SET)
            self._write = lambda data: write_all(fd, data)
        else:
            self._seek = lambda pos: target.seek(pos)
            self._write = _file_writer(target)
        self._seek(_HEADER)
        self._pos = _HEADER
        self._buf = bytearray()
        self._hashes: list[int] = []
        self._starts: list[int] = []
        self._done = False

    def add(self, key: bytes, data: bytes) -> None:
        """Add a record; keys may repeat, and the records keep their order."""
        klen = len(key)
        dlen = len(data)
        pos = self._pos
        end = pos + 8 + klen + dlen
        if end > _MAX:
            raise OSError(errno.ENOMEM, "cdb would pass 4 GB")
        buf = self._buf
        buf += _pack_pair(klen, dlen)
        buf += key
        buf += data
        self._hashes.append(cdb_hash(key))
        self._starts.append(pos)
        self._pos = end
        if len(buf) >= self._FLUSH:
            self._write(bytes(buf))
            buf.clear()

    def finish(self) -> None:
        """Write the hash tables and the header."""
        if self._done:
            raise ValueError("cdb already finished")
        self._done = True
        # the records of each table in the order they were added
        buckets: list[list[tuple[int, int]]] = [[] for _ in range(256)]
        for h, p in zip(self._hashes, self._starts):
            buckets[h & 255].append((h, p))
        pos = self._pos
        header = []
        buf = self._buf
        for entries in buckets:
            slots = len(entries) * 2
            header.append(_pack_pair(pos, slots))
            if not slots:
                continue
            if pos + 8 * slots > _MAX:
                raise OSError(errno.ENOMEM, "cdb would pass 4 GB")
            buf += _table(entries, slots)
            pos += 8 * slots
            if len(buf) >= self._FLUSH:
                self._write(bytes(buf))
                buf.clear()
        if buf:
            self._write(bytes(buf))
            buf.clear()
        self._pos = pos
        self._seek(0)
        self._write(b"".join(header))


def _table(entries: list[tuple[int, int]], slots: int) -> bytes:
    """One hash table: each (hash, position) in the first free slot from
    ``(hash >> 8) % slots`` on, wrapping, in the order given (as cdb_make).

    The first free slot is found through "next free" links with path
    compression, not by stepping: a key added a thousand times (tcprules'
    ``=`` or a repeated address) would otherwise cost a million steps.
    """
    table = [0] * (2 * slots)
    jump = list(range(slots))  # jump[i] == i: slot i is free
    for h, p in entries:
        w = (h >> 8) % slots
        r = w
        while jump[r] != r:
            r = jump[r]
        while w != r:
            jump[w], w = r, jump[w]
        jump[r] = r + 1 if r + 1 < slots else 0
        table[2 * r] = h
        table[2 * r + 1] = p
    return struct.pack("<%dL" % (2 * slots), *table)


def _file_writer(f: BinaryIO):
    def write(data: bytes) -> None:
        view = memoryview(data)
        while view:
            n = f.write(view)
            if n is None:  # a non-blocking raw file that would block
                raise OSError(errno.EAGAIN, "write would block")
            view = view[n:]
    return write
