"""Error texts as djb's error_str() gives them, so messages match the originals.

daemontools, ucspi-tcp and qmail print their own wording for errno values
("file does not exist", "temporary failure"), not strerror()'s.  The order of
the table matters where two names share a number (EAGAIN and EWOULDBLOCK).
"""
import errno as _e

_TABLE = [
    (0, "no error"),
    ("EINTR", "interrupted system call"),
    ("ENOMEM", "out of memory"),
    ("ENOENT", "file does not exist"),
    ("ETXTBSY", "text busy"),
    ("EIO", "input/output error"),
    ("EEXIST", "file already exists"),
    ("ETIMEDOUT", "timed out"),
    ("EINPROGRESS", "operation in progress"),
    ("EAGAIN", "temporary failure"),
    ("EWOULDBLOCK", "input/output would block"),
    ("EPIPE", "broken pipe"),
    ("EPERM", "permission denied"),
    ("EACCES", "access denied"),
    ("ENXIO", "device not configured"),
    ("EPROTO", "protocol error"),
    ("EISDIR", "is a directory"),
    ("ECONNREFUSED", "connection refused"),
    ("ENOTDIR", "not a directory"),
    ("ESRCH", "no such process"),
    ("E2BIG", "argument list too long"),
    ("ENOEXEC", "exec format error"),
    ("EBADF", "file descriptor not open"),
    ("ECHILD", "no child processes"),
    ("EDEADLK", "operation would cause deadlock"),
    ("EFAULT", "bad address"),
    ("ENOTBLK", "not a block device"),
    ("EBUSY", "device busy"),
    ("EXDEV", "cross-device link"),
    ("ENODEV", "device does not support operation"),
    ("EINVAL", "invalid argument"),
    ("ENFILE", "system cannot open more files"),
    ("EMFILE", "process cannot open more files"),
    ("ENOTTY", "not a tty"),
    ("EFBIG", "file too big"),
    ("ENOSPC", "out of disk space"),
    ("ESPIPE", "unseekable descriptor"),
    ("EROFS", "read-only file system"),
    ("EMLINK", "too many links"),
    ("EDOM", "input out of range"),
    ("ERANGE", "output out of range"),
    ("EALREADY", "operation already in progress"),
    ("ENOTSOCK", "not a socket"),
    ("EDESTADDRREQ", "destination address required"),
    ("EMSGSIZE", "message too long"),
    ("EPROTOTYPE", "incorrect protocol type"),
    ("ENOPROTOOPT", "protocol not available"),
    ("EPROTONOSUPPORT", "protocol not supported"),
    ("ESOCKTNOSUPPORT", "socket type not supported"),
    ("EOPNOTSUPP", "operation not supported"),
    ("EPFNOSUPPORT", "protocol family not supported"),
    ("EAFNOSUPPORT", "address family not supported"),
    ("EADDRINUSE", "address already used"),
    ("EADDRNOTAVAIL", "address not available"),
    ("ENETDOWN", "network down"),
    ("ENETUNREACH", "network unreachable"),
    ("ENETRESET", "network reset"),
    ("ECONNABORTED", "connection aborted"),
    ("ECONNRESET", "connection reset"),
    ("ENOBUFS", "out of buffer space"),
    ("EISCONN", "already connected"),
    ("ENOTCONN", "not connected"),
    ("ESHUTDOWN", "socket shut down"),
    ("ETOOMANYREFS", "too many references"),
    ("ELOOP", "symbolic link loop"),
    ("ENAMETOOLONG", "file name too long"),
    ("EHOSTDOWN", "host down"),
    ("EHOSTUNREACH", "host unreachable"),
    ("ENOTEMPTY", "directory not empty"),
    ("EUSERS", "too many users"),
    ("EDQUOT", "disk quota exceeded"),
    ("ESTALE", "stale NFS file handle"),
    ("ENOLCK", "no locks available"),
    ("ENOSYS", "system call not available"),
    ("ENOSTR", "not a stream device"),
    ("ETIME", "timer expired"),
    ("ENOSR", "out of stream resources"),
    ("ENOMSG", "no message of desired type"),
    ("EBADMSG", "bad message type"),
    ("EIDRM", "identifier removed"),
    ("ENONET", "machine not on network"),
    ("ENOLINK", "link severed"),
    ("EADV", "advertise error"),
    ("ESRMNT", "srmount error"),
    ("ECOMM", "communication error"),
    ("EMULTIHOP", "multihop attempted"),
    ("EREMCHG", "remote address changed"),
]

_BY_NUMBER: dict[int, str] = {}
for _name, _text in _TABLE:
    _num = _name if isinstance(_name, int) else getattr(_e, _name, None)
    if _num is not None:
        _BY_NUMBER.setdefault(_num, _text)


def error_str(num: int | None) -> str:
    """The djb wording for errno value ``num``."""
    if num is None:
        return "unknown error"
    return _BY_NUMBER.get(num, "unknown error")


def exc_str(exc: BaseException) -> str:
    """The djb wording for an exception raised by a system call."""
    return error_str(getattr(exc, "errno", None))


# --- added for qmail's delivery programs (qmail-local, preline, condredirect, ...)
_TEMP_NAMES = ("EINTR", "ENOMEM", "ETXTBSY", "EIO", "ETIMEDOUT", "EWOULDBLOCK", "EAGAIN",
               "EDEADLK", "EBUSY", "ENFILE", "EMFILE", "EFBIG", "ENOSPC", "ENETDOWN",
               "ENETUNREACH", "ENETRESET", "ECONNABORTED", "ECONNRESET", "ENOBUFS",
               "ETOOMANYREFS", "ECONNREFUSED", "EHOSTDOWN", "EHOSTUNREACH", "EPROCLIM",
               "EUSERS", "EDQUOT", "ESTALE", "ENOLCK")
_TEMP = frozenset(getattr(_e, n) for n in _TEMP_NAMES if hasattr(_e, n))


def error_temp(num: int | None) -> bool:
    """True if errno ``num`` is a temporary error, as qmail's error_temp()."""
    return num in _TEMP
