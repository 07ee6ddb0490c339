"""bench/smtp: messages accepted per second over SMTP, ours against Postfix.

The same load generator for both, Postfix's ``smtp-source`` (from the Postfix
package bench/postfix.py unpacks): ``--sessions`` (default 10) concurrent
sessions send ``--count`` messages (one message a connection, as smtp-source
does by default) to one local user.  Ours: our tcpserver running
qmail-smtpd as qmaild (as the guide's run script does) over a scratch qmail
with qmail-start delivering; Postfix: Debian's master with its smtpd on
loopback.  Timed: smtp-source from start to exit, that is until the last
message got its 250, which both give only after the message is fsynced in
the queue.  Delivery goes on afterwards and is not timed.  Needs root.

Run: ``.venv/bin/python bench/smtp.py [--count 5000] [--sessions 10] [--only ours|postfix]``
"""
from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as c  # noqa: E402
import postfix as pf  # noqa: E402

from pyqmail.hier import make_home  # noqa: E402

SOURCE = pf.REF / "usr/sbin/smtp-source"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 30) -> None:
    def up() -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                return bool(s.recv(100))
        except OSError:
            return False
    c.wait_for(up, timeout, what=f"a server on port {port}")


def source(port: int, count: int, sessions: int, user: str, env: dict[str, str]) -> float:
    """Run smtp-source; the seconds it took.  Raises if it fails."""
    t0 = time.perf_counter()
    p = subprocess.run([str(SOURCE), "-s", str(sessions), "-m", str(count), "-l", "1024",
                        "-f", pf.SENDER, "-t", f"{user}@localhost", f"127.0.0.1:{port}"],
                       env=env, capture_output=True, text=True, timeout=600)
    elapsed = time.perf_counter() - t0
    if p.returncode != 0 or "error" in p.stderr.lower():
        raise RuntimeError(f"smtp-source exited {p.returncode}: {p.stderr.strip()[:500]}")
    return elapsed


def run_ours(count: int, sessions: int, user: str, workdir: Path, env: dict[str, str]) -> dict:
    import pwd

    qhome = workdir / "qmail"
    make_home(str(qhome), "localhost", str(c.OURS))
    (qhome / "control" / "rcpthosts").write_text("localhost\n")
    port = free_port()
    qenv = {**os.environ, "QMAILHOME": str(qhome)}
    for k in ("QMAILQUEUE", "QMAILREMOTE"):
        qenv.pop(k, None)
    qmaild = pwd.getpwnam("qmaild")
    with c.Procs(workdir) as procs:
        procs.start([c.ours("qmail-start"), "./Maildir/"], env=qenv, cwd="/")
        c.wait_for(lambda: (qhome / "run" / "qmail-queue.sock").exists(), 30,
                   what="the queue service")
        procs.start([c.ours("tcpserver"), "-HRl0", "-c", "100", "-u", str(qmaild.pw_uid),
                     "-g", str(qmaild.pw_gid), "127.0.0.1", str(port),
                     c.ours("qmail-smtpd")], env=qenv, log="tcpserver.log")
        wait_port(port)
        elapsed = source(port, count, sessions, user, env)
        for p in procs.popens:
            p.send_signal(signal.SIGTERM)
    return {"rate": count / elapsed, "elapsed": elapsed, "leftovers": procs.leftovers}


def run_postfix(count: int, sessions: int, user: str, workdir: Path,
                env: dict[str, str]) -> dict:
    libdirs = pf.ensure_package()
    pf.ensure_postfix_accounts()
    port = free_port()
    penv = pf.configure(workdir, libdirs, smtpd_port=port)
    with c.Procs(workdir) as procs:
        master = pf._start_master(procs, penv, workdir)
        try:
            wait_port(port)
            elapsed = source(port, count, sessions, user, env)
        finally:
            pf._stop(master)
    return {"rate": count / elapsed, "elapsed": elapsed,
            "leftovers": procs.leftovers + [c.describe(p) for p in pf.postfix_procs()]}


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description="SMTP messages accepted per second")
    ap.add_argument("--count", type=int, default=5000)
    ap.add_argument("--sessions", type=int, default=10)
    ap.add_argument("--only", choices=("ours", "postfix"))
    args = ap.parse_args(argv)
    if os.geteuid() != 0:
        raise SystemExit("bench: run as root (system users, Postfix, qmaild)")
    c.become_subreaper()
    pf.ensure_package()
    env = {"PATH": "/usr/bin:/bin", "LD_LIBRARY_PATH": ":".join(pf.ensure_package())}

    def run_side(side: str, workdir: Path) -> dict:
        user = f"sb{os.getpid() % 10000}{side[0]}"
        home = workdir / "home"
        home.mkdir(mode=0o755)
        try:
            pf.add_users([user], home)
            run = run_ours if side == "ours" else run_postfix
            return run(args.count, args.sessions, user, workdir, env)
        finally:
            pf.remove_users([user])

    c.ours_against_postfix("smtpbench", args.only, run_side, lambda side, r: (
        f"{side:8s}: {args.count} messages accepted over {args.sessions} sessions in "
        f"{r['elapsed']:.2f} s: {r['rate']:.0f} messages/s"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
