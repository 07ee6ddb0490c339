"""qmail-showctl: describe qmail's configuration (qmail-showctl(8)).

Usage: ``qmail-showctl``.  Prints the qmail home (``$QMAILHOME``), the
compiled-in settings, the qmail user and group ids, then every control file
with its value or its default, in qmail 1.03's words, and a line for each
file in control/ that qmail does not know.  User and group ids are looked up
in the system's accounts: one that does not exist shows as ``?``.  Exits 0;
111 (after an ``Oops!`` line on stdout) if it cannot get into control/.
"""
from __future__ import annotations

import grp
import os
import pwd
import sys

from mta.dotqmail import PATRN
from pyqmail import control
from pyqmail.strerr import run

BREAK = "-"   # conf-break: the user-ext delimiter
SPAWN = 120   # conf-spawn: the silent concurrency limit
SPLIT = 23    # conf-split: queue subdirectory split
#: conf-users and conf-groups, in qmail-showctl's order
USERS = ("alias", "qmaild", "qmaill", "root", "qmailp", "qmailq", "qmailr", "qmails")
GROUPS = ("nofiles", "qmail")

KNOWN = {
    "badmailfrom", "bouncefrom", "bouncehost", "concurrencylocal", "concurrencyremote",
    "databytes", "defaultdomain", "defaulthost", "doublebouncehost", "doublebounceto",
    "envnoathost", "helohost", "idhost", "localiphost", "locals", "me", "morercpthosts",
    "morercpthosts.cdb", "percenthack", "plusdomain", "qmqpservers", "queuelifetime",
    "rcpthosts", "smtpgreeting", "smtproutes", "timeoutconnect", "timeoutremote",
    "timeoutsmtpd", "virtualdomains",
}
OOPS = "Oops! Trouble reading this file.\n"


def safe(text: str) -> str:
    """qmail's safeput: bytes outside 32..126 shown as ``?``."""
    return "".join(ch if " " <= ch <= "~" else "?" for ch in text.encode("utf-8", "surrogateescape").decode("latin-1"))


def _uid(name: str) -> str:
    try:
        return str(pwd.getpwnam(name).pw_uid)
    except KeyError:
        return "?"


def _gid(name: str) -> str:
    try:
        return str(grp.getgrnam(name).gr_gid)
    except KeyError:
        return "?"


class Show:
    """The report, built up as qmail-showctl writes it."""

    def __init__(self, me: str | None) -> None:
        self.me = me
        self.out: list[str] = []

    def int_(self, fn: str, default: str, pre: str, post: str) -> None:
        self.out.append(f"\n{fn}: ")
        try:
            text = control.readline(fn)
        except OSError:
            self.out.append(OOPS)
            return
        digits = ""
        for ch in text or "":
            if not "0" <= ch <= "9":
                break
            digits += ch
        if not digits:  # missing, or no number: control_readint leaves the default
            self.out.append(f"(Default.) {pre}{default}{post}.\n")
            return
        i = int(digits) & 0xFFFFFFFF  # as C's int i = unsigned long u
        if i >= 1 << 31:
            i = 0  # negative: "if (i < 0) i = 0"
        self.out.append(f"{pre}{i}{post}.\n")

    def str_(self, fn: str, flagme: bool, default: str, pre: str) -> None:
        self.out.append(f"\n{fn}: ")
        try:
            text = control.readline(fn)
        except OSError:
            self.out.append(OOPS)
            return
        if text is None:
            self.out.append("(Default.) ")
            text = self.me if flagme and self.me is not None else default
        self.out.append(f"{pre}{safe(text)}.\n")

    def lst(self, fn: str, default: str, pre: str, post: str) -> int:
        self.out.append(f"\n{fn}: ")
        try:
            lines = control.readlines(fn)
        except OSError:
            self.out.append(OOPS)
            return -1
        if not lines and not os.path.exists(control.path("control", fn)):
            self.out.append(f"(Default.) {default}\n")
            return 0
        self.out.append("\n")
        for line in lines:
            self.out.append(f"{pre}{safe(line)}{post}\n")
        return 1


def main(argv: list[str]) -> int:
    home = control.qmail_home()
    w = sys.stdout.write
    w(f"qmail home directory: {home}.\n")
    w(f"user-ext delimiter: {BREAK}.\n")
    w(f"paternalism (in decimal): {PATRN}.\n")
    w(f"silent concurrency limit: {SPAWN}.\n")
    w(f"subdirectory split: {SPLIT}.\n")
    w(f"user ids: {', '.join(_uid(u) for u in USERS)}.\n")
    w(f"group ids: {', '.join(_gid(g) for g in GROUPS)}.\n")
    cdir = os.path.join(home, "control")
    if not os.path.isdir(home):
        w(f"Oops! Unable to chdir to {home}.\n")
        return 111
    if not os.path.isdir(cdir):
        w("Oops! Unable to chdir to control.\n")
        return 111
    try:
        names = os.listdir(cdir)
    except OSError:
        w("Oops! Unable to open current directory.\n")
        return 111
    try:
        me = control.readline("me")
    except OSError:
        w("Oops! Trouble reading control/me.")
        return 111

    s = Show(me)
    s.lst("badmailfrom", "Any MAIL FROM is allowed.", "", " not accepted in MAIL FROM.")
    s.str_("bouncefrom", False, "MAILER-DAEMON", "Bounce user name is ")
    s.str_("bouncehost", True, "bouncehost", "Bounce host name is ")
    s.int_("concurrencylocal", "10", "Local concurrency is ", "")
    s.int_("concurrencyremote", "20", "Remote concurrency is ", "")
    s.int_("databytes", "0", "SMTP DATA limit is ", " bytes")
    s.str_("defaultdomain", True, "defaultdomain", "Default domain name is ")
    s.str_("defaulthost", True, "defaulthost", "Default host name is ")
    s.str_("doublebouncehost", True, "doublebouncehost", "2B recipient host: ")
    s.str_("doublebounceto", False, "postmaster", "2B recipient user: ")
    s.str_("envnoathost", True, "envnoathost", "Presumed domain name is ")
    s.str_("helohost", True, "helohost", "SMTP client HELO host name is ")
    s.str_("idhost", True, "idhost", "Message-ID host name is ")
    s.str_("localiphost", True, "localiphost", "Local IP address becomes ")
    s.lst("locals", "Messages for me are delivered locally.", "Messages for ", " are delivered locally.")
    s.str_("me", False, "undefined! Uh-oh", "My name is ")
    s.lst("percenthack", "The percent hack is not allowed.",
          "The percent hack is allowed for user%host@", ".")
    s.str_("plusdomain", True, "plusdomain", "Plus domain name is ")
    s.lst("qmqpservers", "No QMQP servers.", "QMQP server: ", ".")
    s.int_("queuelifetime", "604800", "Message lifetime in the queue is ", " seconds")
    if s.lst("rcpthosts", "SMTP clients may send messages to any recipient.",
             "SMTP clients may send messages to recipients at ", "."):
        s.lst("morercpthosts", "No effect.", "SMTP clients may send messages to recipients at ", ".")
    else:
        s.lst("morercpthosts", "No rcpthosts; morercpthosts is irrelevant.",
              "No rcpthosts; doesn't matter that morercpthosts has ", ".")
    s.out.append("\nmorercpthosts.cdb: " + _mrh_cdb(cdir))
    s.str_("smtpgreeting", True, "smtpgreeting", "SMTP greeting: 220 ")
    s.lst("smtproutes", "No artificial SMTP routes.", "SMTP route: ", "")
    s.int_("timeoutconnect", "60", "SMTP client connection timeout is ", " seconds")
    s.int_("timeoutremote", "1200", "SMTP client data timeout is ", " seconds")
    s.int_("timeoutsmtpd", "1200", "SMTP server data timeout is ", " seconds")
    s.lst("virtualdomains", "No virtual domains.", "Virtual domain: ", "")
    for name in names:
        if name not in KNOWN:
            s.out.append(f"\n{name}: I have no idea what this file does.\n")
    w("".join(s.out))
    return 0


def _mrh_cdb(cdir: str) -> str:
    try:
        mrh = os.stat(os.path.join(cdir, "morercpthosts"))
    except OSError:
        mrh = None
    try:
        cdb = os.stat(os.path.join(cdir, "morercpthosts.cdb"))
    except OSError:
        cdb = None
    if mrh is None:
        return "(Default.) No effect.\n" if cdb is None else \
            "Oops! morercpthosts.cdb exists but morercpthosts doesn't.\n"
    if cdb is None:
        return "Oops! morercpthosts exists but morercpthosts.cdb doesn't.\n"
    if int(mrh.st_mtime) > int(cdb.st_mtime):
        return "Oops! morercpthosts.cdb is older than morercpthosts.\n"
    return "Modified recently enough; hopefully up to date.\n"


def cli() -> None:
    run(main)


if __name__ == "__main__":
    cli()
