"""qmail-qstat: count the messages in the queue.

Usage: ``qmail-qstat`` (arguments are ignored).  Prints::

    messages in queue: N
    messages in queue but not yet preprocessed: M

N counts what lies under the subdirectories of ``QMAILHOME/queue/mess`` and M
what lies under ``queue/todo``, as qmail's shell script counts them with
``find`` (every entry, at any depth, without following symbolic links; the
top-level entries of ``mess/`` whose names start with a dot are not looked
into, as the shell's ``*`` skips them).

Exit 0.  Unlike the script, which goes on in the wrong directory and prints
nonsense, a queue it cannot enter is fatal: ``qmail-qstat: fatal: unable to
chdir to QMAILHOME/queue: reason``, exit 111.  A directory below it that
cannot be read gets ``qmail-qstat: warning: unable to read DIR: reason`` on
stderr; the counts are still printed, and the exit code is 111.
"""
from __future__ import annotations

import os

from pyqmail import control
from pyqmail.strerr import die, run, warn

PROG = "qmail-qstat"


class Counter:
    """Counts entries below directories, remembering whether any could not be read."""

    def __init__(self) -> None:
        self.trouble = False

    def below(self, path: str) -> int:
        """The number of entries under directory ``path``, at any depth."""
        total = 0
        stack = [path]
        while stack:
            d = stack.pop()
            try:
                with os.scandir(d) as it:
                    for entry in it:
                        total += 1
                        if entry.is_dir(follow_symlinks=False):
                            stack.append(entry.path)
            except OSError as e:
                warn(f"{PROG}: warning: unable to read {d}: ", exc=e)
                self.trouble = True
        return total

    def mess(self) -> int:
        """What lies under each subdirectory of mess/ (the subdirectories not counted)."""
        total = 0
        try:
            with os.scandir("mess") as it:
                subdirs = [e.path for e in it
                           if not e.name.startswith(".") and e.is_dir(follow_symlinks=False)]
        except OSError as e:
            warn(f"{PROG}: warning: unable to read mess: ", exc=e)
            self.trouble = True
            return 0
        for sub in subdirs:
            total += self.below(sub)
        return total


def main(argv: list[str]) -> int:
    """Print the two counts; 0, or 111 if the queue could not all be read."""
    queue = control.path("queue")
    try:
        os.chdir(queue)
    except OSError as e:
        die(111, f"{PROG}: fatal: unable to chdir to {queue}: ", exc=e)
    counter = Counter()
    messages = counter.mess()
    todo = counter.below("todo")
    text = (f"messages in queue: {messages}\n"
            f"messages in queue but not yet preprocessed: {todo}\n").encode()
    view = memoryview(text)
    while view:
        view = view[os.write(1, view):]
    return 111 if counter.trouble else 0


def cli() -> None:
    run(main)


if __name__ == "__main__":
    cli()
