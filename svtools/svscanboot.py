"""svscanboot: start svscan on /service at boot, its errors shown by readproctitle.

Usage: ``svscanboot [dir]`` (default ``/service``; Debian uses ``/etc/service``).
As daemontools' script: stdio from and to /dev/null, ``svc -dx`` on every
service and log left over from an earlier boot, then ``svscan dir 2>&1 |
readproctitle service errors: ....`` with nothing in the environment but PATH.
PATH is daemontools' list with the directory of pyqmail's programs in front.
"""
from __future__ import annotations

import glob
import os
import sys

from pyqmail.proctitle import set_title
from pyqmail.strerr import run
from svtools import readproctitle, svc, svscan

PATH = "/command:/usr/local/bin:/usr/local/sbin:/bin:/sbin:/usr/bin:/usr/sbin:/usr/X11R6/bin"
DOTS = "." * 400


def main(argv: list[str]) -> int:
    """Stop leftovers, then run svscan piped into readproctitle."""
    top = argv[1] if len(argv) > 1 else "/service"
    set_title(argv)  # before the environment is cleared: setproctitle needs it intact
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.close(null)
    # our own programs come first, so run scripts find pyqmail's tools
    path = os.path.dirname(os.path.abspath(sys.argv[0] or sys.executable)) + ":" + PATH
    os.environ["PATH"] = path
    leftovers = sorted(glob.glob(glob.escape(top) + "/*")) + sorted(glob.glob(glob.escape(top) + "/*/log"))
    pid = os.fork()
    if pid == 0:
        run(svc.main, ["svc", "-dx", *leftovers])
    os.waitpid(pid, 0)
    os.environ.clear()
    os.environ["PATH"] = path
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.dup2(w, 1)
        os.dup2(w, 2)
        os.close(r)
        os.close(w)
        run(svscan.main, ["svscan", top])
    os.dup2(r, 0)
    os.close(r)
    os.close(w)
    return readproctitle.main(["readproctitle", "service", "errors:", DOTS])


def cli() -> None:
    run(main)


if __name__ == "__main__":
    cli()
