"""sendmail: sendmail's interface to qmail, as qmail 1.03's sendmail wrapper.

Usage: ``sendmail [ -t ] [ -fsender ] [ -Fname ] [ -bp ] [ -bs ] [ arg ... ]``.
Changes to QMAILHOME and execs ``bin/qmail-inject -a -- arg ...`` (``-H``
instead of ``-a`` with ``-t``, and ``-f sender`` before the ``--`` with
``-f``); ``-Fname`` sets MAILNAME; ``-bp`` (or the name ``mailq``) execs
``bin/qmail-qread``; ``-bs`` execs ``bin/qmail-smtpd`` with the environment of
a local SMTP connection unless PROTO is set.  The other options of
sendmail (``-i``, ``-oX``, ``-m``, ``-e``, ``-v``, ``-x``, ``-B``, ``-p``,
``-bm``, ``-E``, ``-J``) are accepted and ignored.  qmail-inject is exec'd
by its path, whatever is installed there, as the original does.
"""
from __future__ import annotations

import os

from pyqmail import control
from pyqmail.sgetopt import progname
from pyqmail.strerr import die, run, usage, write2

OPTS = "vimte:f:p:o:B:F:EJxb:"
USAGE = "sendmail: usage: sendmail [ -t ] [ -fsender ] [ -Fname ] [ -bp ] [ -bs ] [ arg ... ]"
SMTPD_ENV = {"RELAYCLIENT": "", "DATABYTES": "0", "PROTO": "TCP", "TCPLOCALIP": "127.0.0.1",
             "TCPLOCALHOST": "localhost", "TCPREMOTEIP": "127.0.0.1",
             "TCPREMOTEHOST": "localhost", "TCPREMOTEINFO": "sendmail-bs"}


def _exec(prog: str, argv: list[str], env: dict) -> None:
    """exec ``prog`` (relative to QMAILHOME, our cwd) or die as the original."""
    try:
        os.execve(prog, argv, env)
    except (OSError, ValueError):
        pass
    die(111, "sendmail: fatal: unable to run ", os.path.basename(prog))


def mailq(env: dict) -> None:
    _exec("bin/qmail-qread", ["bin/qmail-qread"], env)


def smtpd(env: dict) -> None:
    if "PROTO" not in env:
        env.update(SMTPD_ENV)
    _exec("bin/qmail-smtpd", ["bin/qmail-smtpd"], env)


def options(argv: list[str], env: dict) -> tuple[bool, str | None, list[str]]:
    """Parse as sendmail.c's getopt loop: ``(flagh, sender, rest)``; acts on -F, -b."""
    prog = progname(argv)
    flagh = False
    sender = None
    ind, pos = 1, 0
    while ind < len(argv):
        if pos and pos >= len(argv[ind]):
            ind, pos = ind + 1, 0
            if ind >= len(argv):
                break
        if not pos:
            arg = argv[ind]
            if arg[:1] != "-":
                break
            pos = 1
            if arg[1:2] in ("-", ""):
                if arg[1:2]:
                    ind += 1
                pos = 0
                break
        c = argv[ind][pos]
        pos += 1
        where = OPTS.find(c) if c != ":" else -1
        if where < 0:
            write2(f"{prog}: illegal option -- {c}\n")
            usage(USAGE)
        value = ""
        if OPTS[where + 1:where + 2] == ":":
            value = argv[ind][pos:]
            ind, pos = ind + 1, 0
            if not value:
                if ind >= len(argv):
                    write2(f"{prog}: option requires an argument -- {c}\n")
                    usage(USAGE)
                value = argv[ind]
                ind += 1
        if c == "t":
            flagh = True
        elif c == "f":
            sender = value
        elif c == "F":
            env["MAILNAME"] = value
        elif c in "EJ":  # Sony NEWS-OS: an optional argument, in the same word
            pos = len(argv[ind])
        elif c == "b":
            what = value[:1]
            if what == "p":
                mailq(env)
            elif what == "s":
                smtpd(env)
            elif what != "m":
                usage(USAGE)
    return flagh, sender, argv[ind:]


def main(argv: list[str]) -> int:
    try:
        os.chdir(control.qmail_home())
    except OSError:
        die(111, "sendmail: fatal: unable to switch to qmail home directory")
    env = dict(os.environ)
    flagh, sender, args = options(argv, env)
    prog = progname(argv)
    if prog == "mailq":
        mailq(env)
    if prog == "newaliases":
        die(100, "sendmail: fatal: please use fastforward/newaliases instead")
    qiargv = ["bin/qmail-inject", "-H" if flagh else "-a"]
    if sender is not None:
        qiargv += ["-f", sender]
    qiargv += ["--", *args]
    _exec("bin/qmail-inject", qiargv, env)
    return 111


def cli() -> None:
    run(main)


if __name__ == "__main__":
    cli()
