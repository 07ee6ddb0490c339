"""Exec a child as djb's pathexec does: its PATH search and its environment edits.

The chain-loaders (envdir, setuidgid, softlimit, setlock, ...) end here.  djb's
search differs from ``os.execvp`` in ways a user can see: it gives up at the
first error other than "not found", "access denied", "permission denied" or
"is a directory" (``os.execvp`` goes on and may run another program), it reports
the last such error rather than the first, and it always looks the program up
in the PATH the process started with, even when the child gets a new one.
"""
from __future__ import annotations

import errno
import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import NoReturn

#: the search path when PATH is unset, as pathexec_run.c has it
DEFAULT_PATH = b"/bin:/usr/bin"
_GO_ON = (errno.EACCES, errno.EPERM, errno.EISDIR)
#: what Python's start-up sets LC_CTYPE to when it coerces the C locale (PEP 538)
_COERCED = (b"C.UTF-8", b"C.utf8", b"UTF-8")
#: set by restore_environ(): from then on os.environ is what exec gave us.
#: /proc/self/environ cannot be asked again: setproctitle overwrites it, and
#: in a forked child it is still the parent's
_restored = False


def environ() -> dict[bytes, bytes] | None:
    """The environment this process was given, if Python's start-up changed it.

    Under the C locale Python sets ``LC_CTYPE=C.UTF-8`` in its own environment
    (PEP 538), which every child would inherit; the C programs pass the
    environment on untouched.  ``/proc/self/environ`` still holds what exec
    gave us, so the variable is put back as it was (or taken out).  None when
    nothing needs undoing (and always once :func:`restore_environ` has run).
    """
    if _restored:
        return None
    env = os.environb
    now = env.get(b"LC_CTYPE")
    if now not in _COERCED:
        return None
    try:
        with open("/proc/self/environ", "rb") as f:
            given = f.read()
    except OSError:
        return None
    before = None
    for entry in given.split(b"\0"):
        if entry.startswith(b"LC_CTYPE="):
            before = entry[9:]
            break
    if before == now:
        return None
    fixed = dict(env)
    if before is None:
        del fixed[b"LC_CTYPE"]
    else:
        fixed[b"LC_CTYPE"] = before
    return fixed


def restore_environ() -> None:
    """Undo Python's start-up change to the environment in ``os.environ`` itself.

    Called by every program at start (:func:`pyqmail.strerr.run`), so children
    started any way at all (supervise's ./run, a chain-loader's child) get the
    environment as exec gave it to us.
    """
    global _restored
    fixed = environ()
    _restored = True
    if fixed is None:
        return
    if b"LC_CTYPE" in fixed:
        os.environb[b"LC_CTYPE"] = fixed[b"LC_CTYPE"]
    else:
        del os.environb[b"LC_CTYPE"]


def _execve(path: bytes, argv: list, env) -> OSError:
    try:
        if env is None:
            os.execv(path, argv)
        else:
            os.execve(path, argv, env)
    except OSError as e:
        return e
    except ValueError:
        if argv and argv[0] == "":
            return _execve_libc(path, argv, env)
        # something execve(2) would have refused too: a name with '='
        return OSError(errno.EINVAL, "invalid argument")
    raise AssertionError("exec returned")  # pragma: no cover


def _execve_libc(path: bytes, argv: list, env) -> OSError:
    """execve(2) through libc, for an empty ``argv[0]`` that ``os.execv`` refuses
    (``argv0 prog ''`` runs prog so with the C original)."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    args = [os.fsencode(a) for a in argv]
    if env is None:
        env = os.environb
    entries = [os.fsencode(k) + b"=" + os.fsencode(v) for k, v in env.items()]
    c_argv = (ctypes.c_char_p * (len(args) + 1))(*args, None)
    c_env = (ctypes.c_char_p * (len(entries) + 1))(*entries, None)
    libc.execve(path, c_argv, c_env)
    err = ctypes.get_errno()
    return OSError(err, os.strerror(err))


def run(argv: list[str], env: dict | None = None, *, file: str | None = None) -> OSError:
    """Exec ``argv`` (with ``env``, or the environment we were given); return why it failed.

    The program is ``file`` (by default ``argv[0]``), searched for in the
    original PATH unless it holds a ``/``.  Only returns if no exec succeeded.
    """
    if env is None:
        env = environ()
    file = os.fsencode(argv[0] if file is None else file)
    if not file and argv[0] == "":
        # Python refuses an empty argv[0]; every candidate ("dir/") is then a
        # directory or missing, so no exec can succeed: a stand-in name is safe
        argv = ["-", *argv[1:]]
    if b"/" in file:
        return _execve(file, argv, env)
    path = os.environb.get(b"PATH", DEFAULT_PATH)
    saved: OSError | None = None
    while True:
        d, sep, path = path.partition(b":")
        err = _execve((d or b".") + b"/" + file, argv, env)
        if err.errno != errno.ENOENT:
            saved = err
            if err.errno not in _GO_ON:
                return err
        if not sep:
            return saved or err


def chain(fatal: str, argv: list[str], env: dict | None = None, *,
          file: str | None = None) -> NoReturn:
    """Exec ``argv`` as a chain-loader does, or die 111 with ``fatal`` + why not.

    ``file`` is the program to run when it is not ``argv[0]`` (argv0's realname).
    """
    from pyqmail.strerr import die

    if file is None:
        file = argv[0]
    err = run(argv, env, file=file)
    die(111, fatal, "unable to run ", file, ": ", exc=err)


def environ_with(entries: list[bytes]) -> dict[bytes, bytes]:
    """The environment after djb's ``pathexec_env`` edits ``entries``, in C's order.

    Each entry is ``name=value`` (set) or ``name`` (unset); the name ends at the
    first ``=``.  As pathexec.c does, a replaced or removed variable's slot is
    filled with the last one, and new settings go at the end, so a child's
    ``env`` lists the variables in the same order as under the original.
    """
    base = environ()
    env = list((os.environb if base is None else base).items())
    for entry in entries:
        key, eq, value = entry.partition(b"=")
        for i, (k, _) in enumerate(env):
            if k == key:
                last = env.pop()
                if i < len(env):
                    env[i] = last
                break
        if eq:
            env.append((key, value))
    return dict(env)
