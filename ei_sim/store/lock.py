"""One writer per output: an exclusive OS file lock on a lock file beside each output.

Whatever writes ``PATH`` (a run file, a store, a simulate file, an export, a report, a
video) holds :func:`exclusive` on it for as long as it writes: an ``fcntl.flock`` on
``PATH.lock``, taken before anything of the output is opened for writing. A second writer
of the same output is refused at once with :class:`Busy`, one line naming the holder (its
pid, host, command line and start time, which the holder writes into the lock file):

    runs/s.h5 is being written by another process (pid 4242: ei-sim simulate --out
    runs/s.h5, since 2026-01-05 14:02:11); wait for it to end

The lock is released on any exit of the ``with`` block, and by the operating system when
the holder dies in any way (a ``kill -9`` included), so a lock is never stale: the lock file
a killed holder leaves behind is taken over by the next writer. The holder removes the lock
file when it releases the lock (while still holding it; a writer that opened the old file
meanwhile notices and retries on the new one). Readers never take the lock and never wait.

Locks are re-entrant within a process: a command that holds the lock on its output may call
library functions that take the same lock again (the run file of ``train`` is locked by the
command and by the trainer). Lock files are opened close-on-exec, so a child process (ffmpeg,
a Dask worker) never inherits one.
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import fcntl
import os
import platform
import shlex
import sys
import threading
import time
from dataclasses import dataclass

LOCK_SUFFIX = ".lock"
MARK = "ei-sim lock"
ACQUIRE_TRIES = 20  # retries when the holder released (and removed) the file meanwhile
BUSY_TRIES = 4  # a lock found taken this often in a row is held (not probed for an instant)
BUSY_PAUSE_S = 0.02
UNSUPPORTED = (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EINVAL)
READ_TRIES = 10  # a holder writes its identity right after taking the lock
READ_PAUSE_S = 0.02
SHOWN_COMMAND_CHARS = 400

_held: dict[str, list] = {}  # lock file -> [file descriptor, depth]
_guard = threading.Lock()
_command: list[str] = []


@dataclass(frozen=True)
class Holder:
    """The process that holds a lock, as it wrote itself into the lock file."""

    pid: int | None
    host: str
    command: str
    since: str

    def describe(self) -> str:
        """``pid 4242: ei-sim simulate --out s.h5, since 2026-01-05 14:02:11``."""
        here = platform.node() or "host"
        where = "" if self.host in ("", here) else f" on {self.host}"
        command = self.command
        if len(command) > SHOWN_COMMAND_CHARS:
            command = command[: SHOWN_COMMAND_CHARS - 3] + "..."
        pid = "pid ?" if self.pid is None else f"pid {self.pid}"
        return f"{pid}{where}: {command or 'unknown command'}, since {self.since or '?'}"


class Busy(ValueError):
    """Another process holds the lock on ``path``; ``holder`` is who (None if unknown)."""

    def __init__(self, path: str, holder: Holder | None):
        self.path, self.holder = path, holder
        who = holder.describe() if holder is not None else "a process that did not say which"
        super().__init__(f"{path} is being written by another process ({who}); wait for it "
                         "to end")  # fmt: skip


class Unlockable(ValueError):
    """The lock file of ``path`` cannot be made (a missing or read-only folder)."""


def set_command(text: str) -> None:
    """Say what this process is (e.g. ``ei-sim simulate --out s.h5``), for its lock files;
    default: its command line."""
    _command[:] = [text]


def command_text(argv: list[str] | None = None) -> str:
    """A command line as one shell-quoted string."""
    return " ".join(shlex.quote(str(a)) for a in (sys.argv if argv is None else argv))


def lock_path(path: str) -> str:
    """The lock file of an output: ``PATH.lock`` (absolute)."""
    return os.path.abspath(os.fspath(path)) + LOCK_SUFFIX


def _identity() -> str:
    since = datetime.datetime.now().isoformat(sep=" ", timespec="seconds")
    command = _command[0] if _command else command_text()
    return (f"{MARK}\npid={os.getpid()}\nhost={platform.node() or 'host'}\nsince={since}\n"
            f"command={command.replace(chr(10), ' ')}\n")  # fmt: skip


def parse_holder(text: str) -> Holder | None:
    """The :class:`Holder` written in a lock file's text; None unless it is an ei-sim lock."""
    if not text.startswith(MARK):
        return None
    fields = dict(line.split("=", 1) for line in text.splitlines()[1:] if "=" in line)
    pid = fields.get("pid", "")
    return Holder(int(pid) if pid.isdigit() else None, fields.get("host", ""),
                  fields.get("command", ""), fields.get("since", ""))  # fmt: skip


def _read_holder(fd: int) -> Holder | None:
    for _ in range(READ_TRIES):
        try:
            text = os.pread(fd, 4096, 0).decode("utf-8", "replace")
        except OSError:
            return None
        holder = parse_holder(text)
        if holder is not None:
            return holder
        time.sleep(READ_PAUSE_S)
    return None


def holder_of(path: str) -> Holder | None:
    """Who holds the lock on the output ``path`` now; None when nobody does (reads only:
    tests the lock without taking it for longer than the test)."""
    key = lock_path(path)
    try:
        fd = os.open(key, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read_holder(fd) or Holder(None, "", "", "")
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def _same_file(fd: int, key: str) -> bool:
    try:
        st = os.stat(key)
    except FileNotFoundError:
        return False
    own = os.fstat(fd)
    return (st.st_dev, st.st_ino) == (own.st_dev, own.st_ino)


def _open_lock(path: str, key: str) -> int:
    try:
        return os.open(key, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as err:
        reason = err.strerror or type(err).__name__
        raise Unlockable(f"cannot lock {path} ({key}: {reason})") from None


def _acquire(path: str, key: str) -> int | None:
    """Open and lock ``key``; :class:`Busy` when another process holds it. A lock found
    taken is tried again a few times first: :func:`holder_of` and the removal of stale lock
    files take it for an instant."""
    busy = 0
    for _ in range(ACQUIRE_TRIES):
        fd = _open_lock(path, key)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            if not isinstance(err, BlockingIOError):  # a file system without flock (some
                os.close(fd)  # network mounts): written unlocked, as before locks existed
                if err.errno in UNSUPPORTED:
                    with contextlib.suppress(OSError):
                        os.unlink(key)
                    return None
                raise Unlockable(f"cannot lock {path} ({key}: {err.strerror})") from None
            busy += 1
            if busy >= BUSY_TRIES:
                holder = _read_holder(fd)
                os.close(fd)
                raise Busy(path, holder) from None
            os.close(fd)
            time.sleep(BUSY_PAUSE_S)
            continue
        if not _same_file(fd, key):  # released and removed by its holder meanwhile: again
            os.close(fd)
            continue
        with contextlib.suppress(OSError):  # a full disk: the lock holds, unnamed
            os.ftruncate(fd, 0)
            os.pwrite(fd, _identity().encode(), 0)
        return fd
    raise Busy(path, None)


def _release(key: str, fd: int | None) -> None:
    if fd is None:  # never locked (a file system without flock)
        return
    with contextlib.suppress(OSError):
        os.unlink(key)  # while still holding it: see the module docstring
    os.close(fd)


@contextlib.contextmanager
def waiting(lock_file: str):
    """Hold an exclusive ``flock`` on ``lock_file`` for a short critical section (a
    read-modify-write), waiting for any other holder: unlike :func:`exclusive`, which
    refuses a second writer at once. No lock where the file system has no flock. (The native
    build has its own, ``ei_sim.sim.native._build_lock``: ``sim`` may not import ``store``.)"""
    with open(lock_file, "a") as fh:
        with contextlib.suppress(OSError):
            fcntl.flock(fh, fcntl.LOCK_EX)
        yield


@contextlib.contextmanager
def exclusive(path):
    """Hold the exclusive lock on the output ``path`` (module docstring); :class:`Busy` at
    once when another process holds it; re-entrant within this process."""
    path = os.fspath(path)
    key = lock_path(path)
    with _guard:
        entry = _held.get(key)
        if entry is not None:
            entry[1] += 1
        else:
            _held[key] = [_acquire(path, key), 1]
    try:
        yield
    finally:
        with _guard:
            entry = _held[key]
            entry[1] -= 1
            if entry[1] == 0:
                del _held[key]
                _release(key, entry[0])


@contextlib.contextmanager
def exclusive_all(paths):
    """Hold the locks of several outputs (all or none)."""
    with contextlib.ExitStack() as stack:
        for path in dict.fromkeys(os.fspath(p) for p in paths):
            stack.enter_context(exclusive(path))
        yield


def held(path) -> bool:
    """Whether this process holds the lock on ``path``."""
    return lock_path(path) in _held


def remove_stale_lock(key: str) -> bool:
    """Remove the lock file ``key`` when it is an ei-sim lock that nobody holds (left by a
    holder that was killed); True if removed."""
    if key in _held:
        return False
    try:
        fd = os.open(key, os.O_RDWR | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        text = os.pread(fd, len(MARK), 0).decode("utf-8", "replace")
        if text != MARK or not _same_file(fd, key):
            return False
        os.unlink(key)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)
