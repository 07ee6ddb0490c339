"""The C originals to compare against: Debian's daemontools and ucspi-tcp.

They are downloaded with ``apt-get download`` and unpacked with ``dpkg-deb -x``
into ``.ref/`` at the top of the checkout, never installed system-wide, so
they cannot shadow our programs.  ``python -m tests.reference`` fetches them.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

TOP = Path(__file__).resolve().parent.parent
REF = Path(os.environ.get("PYQMAIL_REF", TOP / ".ref"))
PACKAGES = ("daemontools", "ucspi-tcp")


def bindir() -> Path:
    """The directory holding the reference binaries, fetching them if needed."""
    ensure()
    return REF / "usr" / "bin"


def ensure() -> None:
    """Download and unpack the reference packages unless they are there."""
    if (REF / ".complete").exists():
        return
    with tempfile.TemporaryDirectory() as tmp:
        os.chmod(tmp, 0o755)  # apt hands the download to its own user
        if _download(tmp) != 0:
            subprocess.run(["apt-get", "update", "-qq"], check=False)
            if _download(tmp) != 0:
                raise RuntimeError("cannot download the reference packages " + " ".join(PACKAGES))
        REF.mkdir(parents=True, exist_ok=True)
        for deb in sorted(Path(tmp).glob("*.deb")):
            subprocess.run(["dpkg-deb", "-x", str(deb), str(REF)], check=True)
    (REF / ".complete").write_text("\n".join(PACKAGES) + "\n")


def _download(tmp: str) -> int:
    return subprocess.run(["apt-get", "download", "-qq", *PACKAGES], cwd=tmp,
                          stdout=subprocess.DEVNULL).returncode


if __name__ == "__main__":
    ensure()
    print(bindir(), file=sys.stderr)
