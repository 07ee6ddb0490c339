"""bench/queue: our queue against Postfix's, delivering into local Maildirs.

Both sides get the same messages (bench/postfix.py's ``message``) for the
same throw-away system users and are timed the same way: until the last
message appears in a ``Maildir/new`` (inotify).  Two measurements:

- ``--preload`` (the queue alone): every message is injected while the
  delivery side is stopped; the clock runs from the start of delivery
  (Postfix's master; our qmail-start) to the last message delivered.
- live (default): delivery running, the clock from the first injection.
  Postfix's messages come through its ``sendmail`` (one sendmail and one
  postdrop process each, as a local user's mail does); ours come through
  the queue service's socket from the bench's threads (as qmail-smtpd and
  every long-running program of ours sends them), and, with ``--cli``, one
  ``qmail-queue`` process a message (an interpreter start each).

Every message is fsynced into the queue before its injection is
acknowledged, and into the Maildir before it is reported delivered, on both
sides.  Needs root (system users, Postfix).

Run: ``.venv/bin/python bench/queue.py [--count 5000] [--users 10] [--preload]
[--injectors 4] [--cli] [--only ours|postfix]``
"""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as c  # noqa: E402
import postfix as pf  # noqa: E402

from pyqmail import queueproto  # noqa: E402
from pyqmail.hier import make_home  # noqa: E402


class Injectors(pf.Injectors):
    """``n`` threads sending messages to the queue service (or running qmail-queue)."""

    def __init__(self, env: dict[str, str], jobs: list[tuple[int, str]], n: int, cli: bool):
        super().__init__(env, jobs, n)
        self.cli = cli

    def _run(self, jobs: list[tuple[int, str]]) -> None:
        sock = os.path.join(self.env["QMAILHOME"], *queueproto.SOCKET)
        for i, user in jobs:
            msg = pf.message(i, user)
            env = b"F" + pf.SENDER.encode() + b"\0T" + f"{user}@localhost".encode() + b"\0\0"
            if self.cli:
                r, w = os.pipe()
                os.write(w, env)
                os.close(w)
                p = subprocess.run([c.ours("qmail-queue")], input=msg, stdout=r, env=self.env)
                os.close(r)
                code = p.returncode
            else:
                client = queueproto.Client(sock)
                client.put(msg)
                client.end_message()
                client.envelope(env)
                code = client.finish()
            if code:
                self.errors.append(f"qmail-queue exit code {code}")
                break
        self.finished.append(time.perf_counter())


def run_ours(count: int, users: list[str], workdir: Path, *, injectors: int = 4,
             preload: bool = False, cli: bool = False, timeout: float | None = None) -> dict:
    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    os.chmod(workdir, 0o755)
    qhome = workdir / "qmail"
    make_home(str(qhome), "localhost", str(c.OURS))
    home = workdir / "home"
    home.mkdir(mode=0o755)
    env = {**os.environ, "QMAILHOME": str(qhome)}
    for k in ("QMAILQUEUE", "QMAILREMOTE"):
        env.pop(k, None)
    timeout = timeout or 120 + count / 20
    jobs = [(i, users[i % len(users)]) for i in range(count)]
    try:
        pf.add_users(users, home)
        watcher = pf.NewWatcher([home / u / "Maildir" / "new" for u in users])
        with c.Procs(workdir) as procs:
            def start_send() -> subprocess.Popen:
                return procs.start([c.ours("qmail-start"), "./Maildir/"], env=env,
                                   stdout=open(workdir / "send.log", "ab"), cwd="/")
            try:
                if preload:
                    qd = procs.start([c.ours("setuidgid"), "qmailq", c.ours("qmail-queued")],
                                     env=env, stdin=subprocess.DEVNULL)
                    c.wait_for(lambda: (qhome / "run" / "qmail-queue.sock").exists(), 10)
                    inj = Injectors(env, jobs, injectors, cli)
                    t_start = time.perf_counter()
                    inj.start()
                    t_injected = inj.join() - t_start
                    if inj.errors:
                        raise SystemExit("bench: " + inj.errors[0])
                    qd.send_signal(signal.SIGTERM)
                    qd.wait()
                    t0 = time.perf_counter()
                    start_send()
                    t_last = watcher.wait(count, timeout)
                else:
                    start_send()
                    c.wait_for(lambda: (qhome / "run" / "qmail-queue.sock").exists(), 10)
                    warm = Injectors(env, [(count, users[0])], 1, False)
                    warm.start()
                    warm.join()
                    watcher.wait(1, 60)
                    watcher.clear()
                    inj = Injectors(env, jobs, injectors, cli)
                    t0 = time.perf_counter()
                    inj.start()
                    t_last = watcher.wait(count, timeout)
                    t_injected = inj.join() - t0
                    if inj.errors:
                        raise SystemExit("bench: " + inj.errors[0])
                delivered = watcher.count_files()
            finally:
                watcher.close()
                procs.snapshot()
                for p in procs.popens:
                    if p.poll() is None:
                        p.send_signal(signal.SIGTERM)
                        try:
                            p.wait(timeout=30)
                        except subprocess.TimeoutExpired:
                            pass
    finally:
        pf.remove_users(users)
    elapsed = t_last - t0
    return {"rate": count / elapsed, "elapsed": elapsed, "delivered": delivered,
            "injected": t_injected, "leftovers": procs.leftovers}


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description="our queue against Postfix's, into Maildirs")
    ap.add_argument("--count", type=int, default=5000)
    ap.add_argument("--users", type=int, default=10)
    ap.add_argument("--injectors", type=int, default=4)
    ap.add_argument("--preload", action="store_true", help="time the queue alone")
    ap.add_argument("--cli", action="store_true", help="ours through qmail-queue processes")
    ap.add_argument("--only", choices=("ours", "postfix"))
    args = ap.parse_args(argv)
    if os.geteuid() != 0:
        raise SystemExit("bench: run as root (system users, Postfix)")
    c.become_subreaper()

    def run_side(side: str, workdir: Path) -> dict:
        users = [f"qb{os.getpid() % 10000}{side[0]}{n}" for n in range(args.users)]
        if side == "ours":
            return run_ours(args.count, users, workdir, injectors=args.injectors,
                            preload=args.preload, cli=args.cli)
        return pf.run_postfix(args.count, users, workdir, injectors=args.injectors,
                              preload=args.preload)

    how = "queue alone, injected first" if args.preload else "from the first injection"
    c.ours_against_postfix("qbench", args.only, run_side, lambda side, r: (
        f"{side:8s}: {r['delivered']}/{args.count} delivered in {r['elapsed']:.2f} s: "
        f"{r['rate']:.0f} messages/s ({how}; injection {r['injected']:.2f} s)"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
