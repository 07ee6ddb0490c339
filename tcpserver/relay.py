"""The pipe pair recordio and fixcrio put between the network and a program.

``spawn`` makes two pipes and forks: the child copies descriptor 0 into the
program's input and the program's output to descriptor 1, while the parent
moves the pipes onto its own 0 and 1 and execs the program, which so keeps
the pid the caller started.  As in the originals the copy reads at most 256
bytes at a time and hands each read to a hook before writing it on: recordio
logs it, fixcrio adds the missing CRs.  The child exits 0 when the program's
output ends or a write fails.
"""
from __future__ import annotations

import os
import select

import _signal

from pyqmail import pathexec
from pyqmail.strerr import die

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable, NoReturn

#: bytes asked of each read(), as the originals' 256-byte buffers
CHUNK = 256
_IN = select.POLLIN
_OUT = select.POLLOUT


def fd_move(to: int, fd: int) -> None:
    """Put ``fd`` on descriptor ``to`` (inheritable, as a C program's would be)."""
    if fd == to:
        os.set_inheritable(to, True)
        return
    os.dup2(fd, to)
    os.close(fd)


def spawn(argv: list[str], fatal: str, usage: str,
          pump: Callable[[int, int], None]) -> NoReturn:
    """Run ``argv[1:]`` with ``pump(to_program, from_program)`` in a forked child."""
    if len(argv) < 2:
        die(100, usage)
    try:
        piin = os.pipe()
        piout = os.pipe()
    except OSError as e:
        die(111, fatal, "unable to create pipe: ", exc=e)
    try:
        pid = os.fork()
    except OSError as e:
        die(111, fatal, "unable to fork: ", exc=e)
    if pid == 0:
        try:
            _signal.signal(_signal.SIGPIPE, _signal.SIG_IGN)
            os.close(piin[0])
            os.close(piout[1])
            pump(piin[1], piout[0])
        finally:
            os._exit(0)
    os.close(piin[1])
    os.close(piout[0])
    try:
        fd_move(0, piin[0])
        fd_move(1, piout[1])
    except OSError as e:
        die(111, fatal, "unable to move descriptors: ", exc=e)
    pathexec.chain(fatal, argv[1:])


def _read(fd: int) -> bytes:
    try:
        return os.read(fd, CHUNK)
    except OSError:
        return b""


def copy(fdleft: int, fdright: int, left: Callable[[bytes], bytes],
         right: Callable[[bytes], bytes], left_eof: Callable[[], None] = lambda: None,
         right_eof: Callable[[], None] = lambda: None) -> None:
    """Copy 0 to ``fdleft`` through ``left`` and ``fdright`` to 1 through ``right``.

    One read at a time each way, written out before the next read on that
    side.  At the end of 0, ``fdleft`` is closed and ``left_eof`` called; at
    the end of ``fdright``, ``right_eof`` is called and the copy stops, as it
    does at the first failed write.
    """
    leftstatus = rightstatus = 0  # 0: want to read, 1: have data to write, -1: done
    leftbuf = rightbuf = b""
    while True:
        poller = select.poll()
        if leftstatus == 0:
            poller.register(0, _IN)
        elif leftstatus == 1:
            poller.register(fdleft, _OUT)
        if rightstatus == 0:
            poller.register(fdright, _IN)
        elif rightstatus == 1:
            poller.register(1, _OUT)
        wasleft, wasright = leftstatus, rightstatus
        ready = dict(poller.poll(3600 * 1000))

        if wasleft == 0 and ready.get(0):
            data = _read(0)
            if not data:
                leftstatus = -1
                os.close(fdleft)
                left_eof()
            else:
                leftstatus = 1
                leftbuf = left(data)
        if wasleft == 1 and ready.get(fdleft):
            try:
                n = os.write(fdleft, leftbuf)
            except OSError:
                return
            leftbuf = leftbuf[n:]
            if not leftbuf:
                leftstatus = 0

        if wasright == 0 and ready.get(fdright):
            data = _read(fdright)
            if not data:
                right_eof()
                return
            rightstatus = 1
            rightbuf = right(data)
        if wasright == 1 and ready.get(1):
            try:
                n = os.write(1, rightbuf)
            except OSError:
                return
            rightbuf = rightbuf[n:]
            if not rightbuf:
                rightstatus = 0
