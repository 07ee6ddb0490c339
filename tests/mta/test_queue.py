"""qmail-queue and the queue service (qmail-queued): the files a message leaves in
the queue, the exit codes of qmail-queue.c, the cleanup after a failure, and
pyqmail.qmailqueue's client side with qmail.c's texts.

As root, qmail-queue writes the queue itself (becoming qmailq, recording uid 0);
anyone else (``nobody`` here, through our setuidgid) goes through qmail-queued,
run as qmailq, which records the caller's uid and pid from the socket."""
from __future__ import annotations

import calendar
import os
import pwd
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from pyqmail import qmailqueue
from pyqmail.hier import make_queue
from tests.helpers import ours, wait_for

ROOT = os.geteuid() == 0
needs_root = pytest.mark.skipif(not ROOT, reason="switching to qmailq and nobody needs root")
MSG = b"Subject: queued\n\nline one\nline two\n"
ENV = b"Fsender@example.org\0Tone@example.org\0Ttwo@example.net\0\0"
RECEIVED = re.compile(rb"Received: \(qmail (\d+) invoked by uid (\d+)\); "
                      rb"([1-9]\d?) (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) (\d{4}) "
                      rb"(\d\d):(\d\d):(\d\d) -0000\n")
MONTHS = [b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct",
          b"Nov", b"Dec"]


class Home:
    """A scratch QMAILHOME with qmail's queue in it (made as hier.c does)."""

    def __init__(self) -> None:
        # under /tmp with mode 0755: qmailq and nobody must reach it
        self.home = Path(tempfile.mkdtemp(prefix="pyqmail-qq-"))
        self.home.chmod(0o755)
        (self.home / "bin").mkdir()
        (self.home / "bin" / "qmail-queue").symlink_to(ours("qmail-queue"))
        make_queue(str(self.home))
        self.queue = self.home / "queue"
        self.env = {**os.environ, "QMAILHOME": str(self.home)}
        self.env.pop("QMAILQUEUE", None)
        self.service: subprocess.Popen | None = None

    @property
    def socket(self) -> Path:
        return self.home / "run" / "qmail-queue.sock"

    def files(self, name: str) -> list[str]:
        """Files under queue/``name`` (relative to it)."""
        top = self.queue / name
        return sorted(str(p.relative_to(top)) for p in top.rglob("*") if p.is_file())

    def leftovers(self) -> dict[str, list[str]]:
        """What a message may leave in pid/, intd/, todo/, mess/."""
        return {d: self.files(d) for d in ("pid", "intd", "todo", "mess") if self.files(d)}

    def queued(self) -> list[int]:
        return [int(n) for n in self.files("todo")]

    def start_service(self, spawn) -> subprocess.Popen:
        """qmail-queued as qmailq (as qmail-start runs it), its stdin a pipe we hold."""
        args = [ours("qmail-queued")]
        if ROOT:
            args = [ours("setuidgid"), "qmailq", *args]
        self.service = spawn.start(args, env=self.env, stdin=subprocess.PIPE)
        wait_for(lambda: self.socket.exists() or self.service.poll() is not None,
                 what="qmail-queued's socket")
        assert self.service.poll() is None, self.service.stderr.read()
        return self.service

    def qq(self, message: bytes | int = MSG, envelope: bytes | int = ENV, *,
           user: str | None = None, env: dict | None = None) -> tuple[int, int, bytes]:
        """Run our qmail-queue: (exit code, its pid, stderr).  ``message`` and
        ``envelope`` are bytes or an open descriptor to give as fd 0 / fd 1."""
        closing = []
        if isinstance(message, bytes):
            f = tempfile.TemporaryFile()
            f.write(message)
            f.seek(0)
            closing.append(f)
            message = f.fileno()
        if isinstance(envelope, bytes):
            r, w = os.pipe()
            os.write(w, envelope)
            os.close(w)
            closing.append(r)
            envelope = r
        args = [ours("qmail-queue")]
        if user is not None:
            args = [ours("setuidgid"), user, *args]
        try:
            p = subprocess.Popen(args, stdin=message, stdout=envelope, stderr=subprocess.PIPE,
                                 env=env or self.env, cwd="/")
            _, err = p.communicate(timeout=60)
        finally:
            for c in closing:
                c.close() if hasattr(c, "close") else os.close(c)
        return p.returncode, p.pid, err

    def close(self) -> None:
        shutil.rmtree(self.home, ignore_errors=True)


@pytest.fixture
def home():
    h = Home()
    yield h
    h.close()


def check_message(h: Home, pid: int, uid: int, before: float, after: float,
                  envelope: bytes = ENV, message: bytes = MSG) -> int:
    """The one queued message is as qmail-queue.c writes it; its number."""
    [num] = h.queued()
    assert h.files("intd") == [str(num)]
    assert h.files("mess") == [f"{num % 23}/{num}"]
    assert h.files("pid") == []
    mess = h.queue / "mess" / str(num % 23) / str(num)
    intd = h.queue / "intd" / str(num)
    todo = h.queue / "todo" / str(num)
    # the message number is the mess file's inode; todo/N is a link to intd/N
    assert mess.stat().st_ino == num
    assert todo.stat().st_ino == intd.stat().st_ino
    record = b"u%d\0p%d\0" % (uid, pid) + envelope[:-1]
    assert todo.read_bytes() == record
    assert intd.read_bytes() == record
    data = mess.read_bytes()
    m = RECEIVED.match(data)
    assert m, data[:100]
    assert (int(m.group(1)), int(m.group(2))) == (pid, uid)
    assert data[m.end():] == message
    day, mon, year, hh, mm, ss = m.group(3, 4, 5, 6, 7, 8)
    stamp = calendar.timegm((int(year), MONTHS.index(mon) + 1, int(day), int(hh), int(mm),
                             int(ss)))
    assert int(before) <= stamp <= after
    qmailq = pwd.getpwnam("qmailq").pw_uid if ROOT else os.getuid()
    for path in (mess, intd):
        st = path.stat()
        assert st.st_uid == qmailq
        assert st.st_mode & 0o7777 == 0o644  # qmail-queue's umask 033
    return num


# -- direct mode (root, as qmail's setuid qmail-queue) ---------------------------------

@needs_root
def test_direct_as_root_writes_the_queue(home: Home) -> None:
    trigger = os.open(home.queue / "lock" / "trigger", os.O_RDONLY | os.O_NONBLOCK)
    try:
        before = time.time()
        rc, pid, err = home.qq()
        after = time.time()
        assert (rc, err) == (0, b"")
        check_message(home, pid, 0, before, after)
        assert os.read(trigger, 16) == b"\0"  # triggerpull: one byte for qmail-send
    finally:
        os.close(trigger)


@needs_root
def test_direct_second_message_gets_its_own_number(home: Home) -> None:
    rc1, pid1, _ = home.qq()
    rc2, pid2, _ = home.qq(b"other\n", b"F\0Tx@y\0\0")
    assert (rc1, rc2) == (0, 0)
    nums = home.queued()
    assert len(nums) == 2
    contents = {(home.queue / "todo" / str(n)).read_bytes() for n in nums}
    assert contents == {b"u0\0p%d\0" % pid1 + ENV[:-1], b"u0\0p%d\0F\0Tx@y\0" % pid2}
    assert sorted(home.files("mess")) == sorted(f"{n % 23}/{n}" for n in nums)


@needs_root
def test_direct_empty_sender_and_no_recipients(home: Home) -> None:
    before = time.time()
    rc, pid, _ = home.qq(b"", b"F\0\0")
    assert rc == 0
    check_message(home, pid, 0, before, time.time(), envelope=b"F\0\0", message=b"")


# -- the exit codes, in both modes -----------------------------------------------------

LONG = b"a" * 1003
EDGE = b"a" * 1002  # with its NUL, the longest address qmail-queue takes

FAILURES = [
    pytest.param(b"Tx@y\0\0", 91, id="91-envelope-not-F"),
    pytest.param(b"Fa@b\0Xx@y\0\0", 91, id="91-bad-record-type"),
    pytest.param(b"Fa@b\0Tx@y\0Fz\0\0", 91, id="91-F-after-T"),
    pytest.param(b"F" + LONG + b"\0Tx@y\0\0", 11, id="11-long-sender"),
    pytest.param(b"Fa@b\0Tx@y\0T" + LONG + b"\0\0", 11, id="11-long-recipient"),
    pytest.param(b"F" + LONG * 3, 11, id="11-unterminated-sender"),
    pytest.param(b"Fa@b\0Tx@y\0", 54, id="54-no-final-NUL"),
    pytest.param(b"Fa@b", 54, id="54-truncated-sender"),
    pytest.param(b"", 54, id="54-empty-envelope"),
]


def both_modes(f):
    return pytest.mark.parametrize("mode", ["direct", "service"])(f)


def caller(home: Home, mode: str, spawn) -> str | None:
    """The user to run qmail-queue as for ``mode`` (starting the service if needed)."""
    if mode == "service":
        home.start_service(spawn)
        return "nobody"
    return None


@needs_root
@both_modes
@pytest.mark.parametrize("envelope, code", FAILURES)
def test_bad_envelope_exit_codes_and_cleanup(home: Home, spawn, mode: str, envelope: bytes,
                                             code: int) -> None:
    user = caller(home, mode, spawn)
    rc, _, err = home.qq(MSG, envelope, user=user)
    assert (rc, err) == (code, b"")
    assert home.leftovers() == {}


@needs_root
@both_modes
def test_longest_addresses_are_taken(home: Home, spawn, mode: str) -> None:
    user = caller(home, mode, spawn)
    envelope = b"F" + EDGE + b"\0T" + EDGE + b"\0\0"
    before = time.time()
    rc, pid, _ = home.qq(MSG, envelope, user=user)
    assert rc == 0
    check_message(home, pid, 65534 if user else 0, before, time.time(), envelope=envelope)


@needs_root
@both_modes
def test_message_read_error_is_54(home: Home, spawn, mode: str) -> None:
    user = caller(home, mode, spawn)
    fd = os.open(home.home / "wronly", os.O_WRONLY | os.O_CREAT)  # read() fails: EBADF
    try:
        rc, _, err = home.qq(fd, ENV, user=user)
    finally:
        os.close(fd)
    assert (rc, err) == (54, b"")
    # the service cleans up when the connection ends, perhaps after the caller left
    wait_for(lambda: home.leftovers() == {}, what=f"a clean queue: {home.leftovers()}")


@needs_root
@both_modes
def test_envelope_read_error_is_54(home: Home, spawn, mode: str) -> None:
    user = caller(home, mode, spawn)
    fd = os.open(home.home / "wronly", os.O_WRONLY | os.O_CREAT)
    try:
        rc, _, _ = home.qq(MSG, fd, user=user)
    finally:
        os.close(fd)
    assert rc == 54
    wait_for(lambda: home.leftovers() == {}, what=f"a clean queue: {home.leftovers()}")


@needs_root
@pytest.mark.parametrize("user", [None, "nobody"])
def test_missing_home_is_61_and_missing_queue_62(home: Home, user: str | None) -> None:
    env = {**home.env, "QMAILHOME": str(home.home / "nonexistent")}
    assert home.qq(env=env, user=user)[0] == 61
    shutil.rmtree(home.queue)
    assert home.qq(user=user)[0] == 62


@needs_root
def test_no_service_is_56(home: Home) -> None:
    rc, _, err = home.qq(user="nobody")
    assert (rc, err) == (56, b"")
    # a socket nobody listens on any more (the service died) is the same
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(str(home.socket))
    s.close()
    os.chmod(home.socket, 0o666)
    assert home.qq(user="nobody")[0] == 56
    assert home.leftovers() == {}


# -- the service -----------------------------------------------------------------------

@needs_root
def test_service_records_the_callers_uid_and_pid(home: Home, spawn) -> None:
    home.start_service(spawn)
    assert oct(home.socket.stat().st_mode & 0o777) == oct(0o666)
    trigger = os.open(home.queue / "lock" / "trigger", os.O_RDONLY | os.O_NONBLOCK)
    try:
        before = time.time()
        rc, pid, err = home.qq(user="nobody")
        after = time.time()
        assert (rc, err) == (0, b"")
        check_message(home, pid, 65534, before, after)
        assert os.read(trigger, 16) == b"\0"
    finally:
        os.close(trigger)


@needs_root
def test_second_service_refuses_to_start(home: Home, spawn) -> None:
    home.start_service(spawn)
    p = subprocess.run([ours("setuidgid"), "qmailq", ours("qmail-queued")], env=home.env,
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
    assert p.returncode == 111
    assert p.stderr == b"qmail-queued: fatal: qmail-queued is already running\n"
    # the first goes on serving
    assert home.service.poll() is None
    assert home.qq(user="nobody")[0] == 0


def test_service_survives_callers_that_leave_early(home: Home, spawn) -> None:
    """A caller gone before its answer (killed qmail-smtpd, a client that hangs up)
    costs the service nothing: no SIGPIPE death, and the next caller is served."""
    from pyqmail import queueproto

    home.start_service(spawn)
    for _ in range(20):
        c = queueproto.Client(str(home.socket))
        c.put(MSG)
        c.end_message()
        c.envelope(ENV)
        c.sock.close()  # without reading the answer
        c = queueproto.Client(str(home.socket))
        c.put(MSG[:5])
        c.sock.close()  # in the middle of the message
    time.sleep(0.2)
    assert home.service.poll() is None
    assert home.qq(user="nobody" if ROOT else None)[0] == 0


@needs_root
def test_service_exits_when_its_stdin_pipe_ends(home: Home, spawn) -> None:
    p = home.start_service(spawn)
    assert home.qq(user="nobody")[0] == 0
    p.stdin.close()
    assert p.wait(timeout=20) == 0
    assert home.qq(user="nobody")[0] == 56  # nothing listens any more


# -- pyqmail.qmailqueue: qmail.c's side ------------------------------------------------

QMAIL_C = {  # qmail_close's answers, from qmail.c
    0: "",
    11: "Denvelope address too long for qq (#5.1.3)",
    115: "Denvelope address too long for qq (#5.1.3)",
    31: "Dmail server permanently rejected message (#5.3.0)",
    51: "Zqq out of memory (#4.3.0)",
    52: "Zqq timeout (#4.3.0)",
    53: "Zqq write error or disk full (#4.3.0)",
    54: "Zqq read error (#4.3.0)",
    55: "Zqq unable to read configuration (#4.3.0)",
    56: "Zqq trouble making network connection (#4.3.0)",
    61: "Zqq trouble in home directory (#4.3.0)",
    62: "Zqq trouble creating files in queue (#4.3.0)",
    63: "Zqq trouble creating files in queue (#4.3.0)",
    64: "Zqq trouble creating files in queue (#4.3.0)",
    65: "Zqq trouble creating files in queue (#4.3.0)",
    66: "Zqq trouble creating files in queue (#4.3.0)",
    71: "Zmail server temporarily rejected message (#4.3.0)",
    72: "Zconnection to mail server timed out (#4.4.1)",
    73: "Zconnection to mail server rejected (#4.4.1)",
    74: "Zcommunication with mail server failed (#4.4.2)",
    81: "Zqq internal bug (#4.3.0)",
    91: "Zqq internal bug (#4.3.0)",
    120: "Zunable to exec qq (#4.3.0)",
    12: "Dqq permanent problem (#5.3.0)",
    40: "Dqq permanent problem (#5.3.0)",
    10: "Zqq temporary problem (#4.3.0)",
    41: "Zqq temporary problem (#4.3.0)",
    100: "Zqq temporary problem (#4.3.0)",
    111: "Zqq temporary problem (#4.3.0)",
    255: "Zqq temporary problem (#4.3.0)",
}


@pytest.mark.parametrize("code", sorted(QMAIL_C))
def test_answer_texts_are_qmail_cs(code: int) -> None:
    assert qmailqueue.answer(code, False) == QMAIL_C[code]


def test_answer_success_after_a_failed_put_is_a_read_error() -> None:
    assert qmailqueue.answer(0, True) == "Zqq read error (#4.3.0)"
    assert qmailqueue.answer(91, True) == "Zqq internal bug (#4.3.0)"


CLIENT = r"""
import os, sys
from pyqmail.qmailqueue import Queue
q = Queue()
print(int(q.inproc), q.qp, os.getpid())
q.put(b"Subject: in-process\n\n")
q.put(b"body\n")
q.sender(sys.argv[1].encode())
for r in sys.argv[2:]:
    q.recipient(r.encode())
print(repr(q.close()))
"""


def run_client(h: Home, sender: str, *recips: str) -> tuple[bool, int, int, str]:
    args = [sys.executable, "-c", CLIENT, sender, *recips]
    if ROOT:
        args = [ours("setuidgid"), "nobody", *args]
    p = subprocess.run(args, env=h.env, cwd="/", capture_output=True, timeout=60)
    assert p.returncode == 0, p.stderr
    first, answer = p.stdout.decode().splitlines()
    inproc, qp, mypid = map(int, first.split())
    return bool(inproc), qp, mypid, eval(answer)  # noqa: S307 - our own repr()


@needs_root
def test_queue_class_talks_to_the_service_in_process(home: Home, spawn) -> None:
    home.start_service(spawn)
    before = time.time()
    inproc, qp, mypid, answer = run_client(home, "s@example.org", "r@example.org")
    assert (inproc, answer) == (True, "")
    assert qp == mypid  # no qmail-queue started: the caller is the qp
    check_message(home, mypid, 65534, before, time.time(),
                  envelope=b"Fs@example.org\0Tr@example.org\0\0",
                  message=b"Subject: in-process\n\nbody\n")


@needs_root
def test_queue_class_maps_service_codes_to_qmail_c_texts(home: Home, spawn) -> None:
    # no service: 56
    _, _, _, answer = run_client(home, "s@example.org", "r@example.org")
    assert answer == "Zqq trouble making network connection (#4.3.0)"
    home.start_service(spawn)
    _, _, _, answer = run_client(home, "s@example.org", "r" * 1003)
    assert answer == "Denvelope address too long for qq (#5.1.3)"
    assert home.leftovers() == {}


@needs_root
def test_queue_class_as_root_runs_bin_qmail_queue(home: Home, monkeypatch) -> None:
    monkeypatch.setenv("QMAILHOME", str(home.home))
    monkeypatch.delenv("QMAILQUEUE", raising=False)
    before = time.time()
    q = qmailqueue.Queue()
    assert not q.inproc
    q.put(MSG)
    q.sender(b"sender@example.org")
    q.recipient(b"one@example.org")
    q.recipient(b"two@example.net")
    assert q.close() == ""
    check_message(home, q.qp, 0, before, time.time())
    # and a bad envelope comes back as qmail.c words it
    q = qmailqueue.Queue()
    q.put(MSG)
    q.sender(b"s" * 1003)
    assert q.close() == "Denvelope address too long for qq (#5.1.3)"
    assert len(home.queued()) == 1
