"""The main job: svscan supervising the example services and qmail's delivery
side in a scratch directory.

Run by ``make run``.  Copies ``examples/services`` into ``.scratch/service``,
lays out a qmail tree in ``.scratch/qmail`` (host ``localhost``) with the
caller as its one mailbox (``.scratch/mail/Maildir``, through users/assign),
adds a ``qmail-send`` service (``qmail-start ./Maildir/`` logged by multilog)
and a ``qmail-smtpd`` one (our tcpserver on 127.0.0.1, port 2525 or
``$PYQMAIL_SMTP_PORT``, taking mail for the scratch host),
starts our svscan on it with our programs first on PATH, prints how to send
mail and look at and control the services, and on Ctrl-C (or SIGTERM) takes
every service and supervise down with ``svc -dx`` before it exits, leaving no
process behind.  Run as root, the mail services run as ``nobody`` (qmail
itself would need its own accounts, which the installer makes).
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
sys.path.insert(0, str(TOP))
BIN = Path(sys.executable).parent
SCRATCH = Path(os.environ.get("PYQMAIL_SCRATCH", TOP / ".scratch"))
SERVICE = SCRATCH / "service"
#: the scratch mail host: with a dot, so qmail-inject adds no default domain to it
HOST = "localhost.localdomain"
#: where qmail-smtpd listens (on 127.0.0.1)
SMTP_PORT = int(os.environ.get("PYQMAIL_SMTP_PORT", "2525"))


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


def mail(env: dict[str, str]) -> tuple[Path, Path, str]:
    """The scratch qmail tree, the mailbox and the qmail-send service; returns
    (QMAILHOME, the Maildir, the mailbox's local part)."""
    import pwd

    from pyqmail.hier import make_home

    qmail, home = SCRATCH / "qmail", SCRATCH / "mail"
    me = pwd.getpwuid(os.getuid()).pw_name
    runas = pwd.getpwnam("nobody") if os.getuid() == 0 else pwd.getpwuid(os.getuid())
    make_home(str(qmail), HOST, str(BIN),
              (runas.pw_uid, runas.pw_gid) if os.getuid() == 0 else None)
    maildir = home / "Maildir"
    for sub in ("", "tmp", "new", "cur"):
        (maildir / sub).mkdir(mode=0o700, parents=True, exist_ok=True)
    (qmail / "users").mkdir(exist_ok=True)
    ids = f"{runas.pw_name}:{runas.pw_uid}:{runas.pw_gid}:{home}"
    (qmail / "users" / "assign").write_text(f"={me}:{ids}:::\n+:{ids}:-::\n.\n")
    subprocess.run([str(BIN / "qmail-newu")], env={**env, "QMAILHOME": str(qmail)}, check=True)
    if os.getuid() == 0:  # everything of the mail system belongs to the account it runs as
        for d in (qmail, home):
            for path in [d, *d.rglob("*")]:
                os.lchown(path, runas.pw_uid, runas.pw_gid)
    svc = SERVICE / "qmail-send"
    (svc / "log").mkdir(parents=True, exist_ok=True)
    setuid = f"setuidgid {runas.pw_name} " if os.getuid() == 0 else ""
    _script(svc / "run", f"exec 2>&1\nQMAILHOME={qmail}\nexport QMAILHOME\n"
                         f"exec {setuid}qmail-start ./Maildir/\n")
    _script(svc / "log" / "run", f"exec {setuid}multilog t s2500000 ./main\n")
    # qmail-smtpd on a loopback port, taking mail for this host only (rcpthosts)
    (qmail / "control" / "rcpthosts").write_text(HOST + "\n")
    smtpd = SERVICE / "qmail-smtpd"
    (smtpd / "log").mkdir(parents=True, exist_ok=True)
    ids_opt = f"-u {runas.pw_uid} -g {runas.pw_gid} " if os.getuid() == 0 else ""
    _script(smtpd / "run", f"exec 2>&1\nQMAILHOME={qmail}\nexport QMAILHOME\n"
                           f"exec tcpserver -v -HR -l {HOST} {ids_opt}127.0.0.1 {SMTP_PORT} "
                           f"qmail-smtpd\n")
    _script(smtpd / "log" / "run", f"exec {setuid}multilog t s2500000 ./main\n")
    if os.getuid() == 0:
        for d in (svc / "log", smtpd / "log"):
            os.chown(d, runas.pw_uid, runas.pw_gid)
    return qmail, maildir, me


def _script(path: Path, body: str) -> None:
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)


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
    env = dict(os.environ, PATH=f"{BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}")
    lay_out()
    qmail, maildir, me = mail(env)
    dirs = lay_out()
    scan = subprocess.Popen([str(BIN / "svscan"), str(SERVICE)], env=env, start_new_session=True)
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt))
    rel = SERVICE.relative_to(Path.cwd()) if SERVICE.is_relative_to(Path.cwd()) else SERVICE
    home = qmail.relative_to(Path.cwd()) if qmail.is_relative_to(Path.cwd()) else qmail
    box = maildir.relative_to(Path.cwd()) if maildir.is_relative_to(Path.cwd()) else maildir
    print(f"""pyqmail: svscan (pid {scan.pid}) is supervising {rel}/*

In another shell (after `. .venv/bin/activate` and `export QMAILHOME={home}`):
  echo 'Subject: hello' | qmail-inject {me}      send yourself mail ({me}@{HOST})
  python3 -c "import smtplib; smtplib.SMTP('127.0.0.1', {SMTP_PORT}).sendmail('you@example.org', ['{me}@{HOST}'], 'Subject: by SMTP\\n\\nhi\\n')"
                                       the same through qmail-smtpd on port {SMTP_PORT}
  ls {box}/new                       where it lands
  tai64nlocal < {rel}/qmail-send/log/main/current   qmail-send's log
  qmail-qstat; qmail-qread             the queue
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
