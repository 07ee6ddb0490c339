"""qmail's own accounts (alias, qmaild ... qmails; groups qmail and nofiles) for a
test run as root: made at the start of the session when missing, removed at its
end.  Under pytest-xdist only the controlling process makes and removes them,
so every worker sees them for the whole run."""
from __future__ import annotations

import grp
import os
import pwd
import shutil
import subprocess
import tempfile

from tests.helpers import account_cmd

GROUPS = ("qmail", "nofiles")
#: account -> group, as the guide's useradd lines make them
USERS = {"alias": "nofiles", "qmaild": "nofiles", "qmaill": "nofiles", "qmailp": "nofiles",
         "qmailq": "qmail", "qmailr": "qmail", "qmails": "qmail"}


def make() -> dict:
    """Create what is missing; what was made, for :func:`remove`."""
    made: dict = {"groups": [], "users": [], "dirs": []}
    if os.geteuid() != 0:
        return made
    for g in GROUPS:
        try:
            grp.getgrnam(g)
        except KeyError:
            account_cmd(["groupadd", "-r", g])
            made["groups"].append(g)
    for user, group in USERS.items():
        try:
            pwd.getpwnam(user)
            continue
        except KeyError:
            pass
        home = tempfile.mkdtemp(prefix=f"pyqmail-{user}-")
        account_cmd(["useradd", "-r", "-M", "-g", group, "-d", home, "-s", "/bin/false", user])
        made["users"].append(user)
        made["dirs"].append(home)
        pw = pwd.getpwnam(user)
        os.chown(home, pw.pw_uid, pw.pw_gid)
        os.chmod(home, 0o755)
    return made


def remove(made: dict) -> None:
    for user in made["users"]:
        subprocess.run(["userdel", user], capture_output=True)
    for g in made["groups"]:
        subprocess.run(["groupdel", g], capture_output=True)
    for d in made["dirs"]:
        shutil.rmtree(d, ignore_errors=True)
