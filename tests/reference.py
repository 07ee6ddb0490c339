"""The C originals to compare against: Debian's daemontools and ucspi-tcp.

They are downloaded with ``apt-get download`` and unpacked with ``dpkg-deb -x``
into ``.ref/`` at the top of the checkout, never installed system-wide, so
they cannot shadow our programs.  ``python -m tests.reference`` fetches them.
Beside them: tinycdb's ``cdb`` (an oracle for the CDB format), and in
``.ref/ipv6/`` Debian's ucspi-tcp-ipv6, whose programs have the same names as
ucspi-tcp's.
"""
from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import tempfile
from pathlib import Path

TOP = Path(__file__).resolve().parent.parent
REF = Path(os.environ.get("PYQMAIL_REF", TOP / ".ref"))
PACKAGES = ("daemontools", "ucspi-tcp", "tinycdb", "libcdb1")
IPV6 = REF / "ipv6"
IPV6_PACKAGES = ("ucspi-tcp-ipv6",)


def bindir() -> Path:
    """The directory holding the reference binaries, fetching them if needed."""
    ensure()
    return REF / "usr" / "bin"


def ipv6_bindir() -> Path:
    """The directory holding Debian's ucspi-tcp-ipv6 binaries, fetching them if needed."""
    ensure(IPV6, IPV6_PACKAGES)
    return IPV6 / "usr" / "bin"


def cdb_tool() -> tuple[str, dict[str, str]]:
    """tinycdb's ``cdb`` program and the environment it runs in (its library is ours)."""
    ensure()
    libs = sorted(str(p.parent) for p in (REF / "usr" / "lib").rglob("libcdb.so*"))
    env = dict(os.environ, LD_LIBRARY_PATH=":".join(libs))
    return str(REF / "usr" / "bin" / "cdb"), env


def ensure(dest: Path = REF, packages: tuple[str, ...] = PACKAGES) -> None:
    """Download and unpack into ``dest`` those of ``packages`` that are not there.

    ``dest/.complete`` lists the packages unpacked; test workers running at
    once take turns through a lock.
    """
    marker = dest / ".complete"
    if _missing(marker, packages):
        dest.mkdir(parents=True, exist_ok=True)
        with open(dest / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            missing = _missing(marker, packages)
            if missing:
                _fetch(dest, missing)
                done = _listed(marker) | set(missing)
                marker.write_text("\n".join(sorted(done)) + "\n")


def _listed(marker: Path) -> set[str]:
    try:
        return set(marker.read_text().split())
    except FileNotFoundError:
        return set()


def _missing(marker: Path, packages: tuple[str, ...]) -> tuple[str, ...]:
    listed = _listed(marker)
    return tuple(p for p in packages if p not in listed)


def _fetch(dest: Path, packages: tuple[str, ...]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        os.chmod(tmp, 0o755)  # apt hands the download to its own user
        if _download(tmp, packages) != 0:
            subprocess.run(["apt-get", "update", "-qq"], check=False)
            if _download(tmp, packages) != 0:
                raise RuntimeError("cannot download the reference packages " + " ".join(packages))
        for deb in sorted(Path(tmp).glob("*.deb")):
            subprocess.run(["dpkg-deb", "-x", str(deb), str(dest)], check=True)


def _download(tmp: str, packages: tuple[str, ...]) -> int:
    return subprocess.run(["apt-get", "download", "-qq", *packages], cwd=tmp,
                          stdout=subprocess.DEVNULL).returncode


if __name__ == "__main__":
    ensure()
    ensure(IPV6, IPV6_PACKAGES)
    print(bindir(), file=sys.stderr)
