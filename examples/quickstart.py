"""The main job: svscan supervising the example services in a scratch directory.

Run by ``make run``.  Copies ``examples/services`` into ``.scratch/service``,
starts our svscan on it with our programs first on PATH, prints how to look at
and control the services, and on Ctrl-C (or SIGTERM) takes every service and
supervise down with ``svc -dx`` before it exits, leaving no process behind.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

TOP = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
SCRATCH = Path(os.environ.get("PYQMAIL_SCRATCH", TOP / ".scratch"))
SERVICE = SCRATCH / "service"


def lay_out() -> list[Path]:
    """Copy the example services into the scratch tree; return the service dirs."""
    SERVICE.mkdir(parents=True, exist_ok=True)
    for src in sorted((TOP / "examples" / "services").iterdir()):
        shutil.copytree(src, SERVICE / src.name, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("supervise", "main"))
    dirs = []
    for d in sorted(SERVICE.iterdir()):
        dirs.append(d)
        if (d / "log").is_dir():
            dirs.append(d / "log")
    return dirs


def stop(dirs: list[Path], scan: subprocess.Popen) -> None:
    """svc -dx everything, wait for the supervisors to go, then stop svscan."""
    scan.send_signal(signal.SIGTERM)
    scan.wait()
    subprocess.run([str(BIN / "svc"), "-dx", *map(str, dirs)])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if all(subprocess.run([str(BIN / "svok"), str(d)]).returncode != 0 for d in dirs):
            break
        time.sleep(0.1)
    try:
        os.killpg(scan.pid, signal.SIGKILL)  # anything a service left behind
    except OSError:
        pass


def main() -> int:
    dirs = lay_out()
    env = dict(os.environ, PATH=f"{BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}")
    scan = subprocess.Popen([str(BIN / "svscan"), str(SERVICE)], env=env, start_new_session=True)
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt))
    rel = SERVICE.relative_to(Path.cwd()) if SERVICE.is_relative_to(Path.cwd()) else SERVICE
    print(f"""pyqmail: svscan (pid {scan.pid}) is supervising {rel}/*

In another shell (after `. .venv/bin/activate`):
  svstat {rel}/* {rel}/*/log      status of every service
  svc -u {rel}/idle                start the service that is normally down
  svc -d {rel}/clock               stop the clock; svc -u starts it again
  svc -t {rel}/clock               send it SIGTERM: supervise restarts it
  tai64nlocal < {rel}/clock/log/main/current   what the clock said

Ctrl-C here stops every service and supervise, then svscan.""", flush=True)
    try:
        scan.wait()
    except KeyboardInterrupt:
        pass
    finally:
        stop(dirs, scan)
    print("pyqmail: stopped.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
