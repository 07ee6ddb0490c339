"""File-system helpers: FIFOs, locks, non-blocking opens, atomic replacement."""
from __future__ import annotations

import errno
import fcntl
import os


def fifo_make(path: str, mode: int = 0o600) -> None:
    """Create a FIFO at ``path`` unless something already exists there."""
    try:
        os.mkfifo(path, mode)
    except FileExistsError:
        pass


def open_read(path: str) -> int:
    """Open for reading without blocking (a FIFO opens at once)."""
    return os.open(path, os.O_RDONLY | os.O_NONBLOCK)


def open_write(path: str) -> int:
    """Open for writing without blocking; a FIFO with no reader raises ENXIO."""
    return os.open(path, os.O_WRONLY | os.O_NONBLOCK)


def open_append(path: str, mode: int = 0o600) -> int:
    """Open for appending, creating the file if needed."""
    return os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, mode)


def lock_exnb(fd: int) -> None:
    """Take an exclusive flock on ``fd`` or raise (EAGAIN when it is held)."""
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)


def lock_ex(fd: int) -> None:
    """Take an exclusive flock on ``fd``, waiting for it."""
    fcntl.flock(fd, fcntl.LOCK_EX)


def ndelay_off(fd: int) -> None:
    """Make ``fd`` blocking."""
    os.set_blocking(fd, True)


def write_all(fd: int, data: bytes) -> None:
    """Write all of ``data`` to ``fd``."""
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def replace_file(path: str, data: bytes, *, sync: bool = True, mode: int = 0o644) -> None:
    """Replace ``path`` with ``data``: write ``path.new``, fsync, rename.

    With ``sync`` the directory is fsynced too, so the new contents survive a
    crash; without it the replacement is atomic but not durable.
    """
    tmp = path + ".new"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        write_all(fd, data)
        if sync:
            os.fsync(fd)
    finally:
        os.close(fd)
    os.rename(tmp, path)
    if sync:
        fsync_dir(os.path.dirname(path) or ".")


def fsync_dir(path: str) -> None:
    """fsync a directory so a rename or link in it is durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    except OSError as e:  # some file systems refuse fsync on directories
        if e.errno not in (errno.EINVAL, errno.EROFS):
            raise
    finally:
        os.close(fd)
