"""Atomic writing: every file is written to a temporary name in its destination folder and
renamed into place (``os.replace``), so a run killed at any moment, a full disk or a failing
encoder leaves either the old file or the new one, never a half-written one.

- :func:`atomic_file` yields a temporary path for any writer (figures, videos, exports,
  text); :func:`write_bytes` and :func:`write_text` write bytes and text through it;
- :func:`atomic_h5` yields an ``h5py.File`` for ei-sim's own HDF5 files. It is built **in
  memory** (HDF5's core driver) and its image written out with plain file writes at the
  end: HDF5 never meets a full disk (where its library aborts or crashes the process), and
  a full disk is one :class:`OSError` like any other.

Every write holds the output's lock (:func:`ei_sim.store.lock.exclusive`) while it writes,
and every failure (a short write, an encoder's error, no space left) raises one-line
``ValueError`` naming the output (not the temporary), the previous file untouched. Before
writing, the free space of the folder is checked against what the write needs where that is
known (:func:`check_free_space`).

Temporaries are named ``.tmp-HOST-PID-xxxx<suffix>`` after their writer; those a killed
writer left behind (its process is gone), of any kind, are removed before the next write
into the folder (:func:`remove_stale_temporaries`), with the lock files of killed holders.
A file written with ``kind`` carries the root attributes ``kind`` and ``schema_version``
(:mod:`ei_sim.store.kinds`); a writer that sets ``kind`` itself gets its ``schema_version``
added when the write completes.
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import os
import platform
import shutil
import tempfile

from ei_sim.store.checksum import seal as seal_group
from ei_sim.store.kinds import stamp, stamp_version
from ei_sim.store.lock import LOCK_SUFFIX, exclusive, remove_stale_lock
from ei_sim.validate import format_bytes

TMP_PREFIX = ".tmp-"
STALE_AFTER_S = 3600.0  # temporaries without a writer id (older versions): removed when older
FREE_MARGIN_BYTES = 64 << 10  # beyond what a write needs: the file system's own bookkeeping
MEMORY_BLOCK_BYTES = 1 << 20  # growth step of an HDF5 file built in memory


def check_output_path(path: str) -> None:
    """ValueError (one line) when the folder of ``path`` is missing or not writable."""
    folder = os.path.dirname(os.path.abspath(path)) or "."
    if not os.path.isdir(folder):
        raise ValueError(f"output directory {folder} does not exist; create it first")
    if not os.access(folder, os.W_OK):
        raise ValueError(f"output directory {folder} is not writable")


def readable_mode() -> int:
    """The mode a new file gets from the umask (``0o666 & ~umask``; 0o644 under umask 022)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


def _writer_id() -> str:
    return f"{platform.node() or 'host'}-{os.getpid()}-"


def _is_stale(name: str, path: str) -> bool:
    """Whether the temporary ``name`` belongs to no live writer. Its name holds the writer's
    host and pid (``.tmp-HOST-PID-xxxx.h5``): stale when that process of this host is gone;
    a temporary of another host, or without a writer id (older versions), when it is older
    than :data:`STALE_AFTER_S` (a day for another host)."""
    rest = name[len(TMP_PREFIX) :]
    host = f"{platform.node() or 'host'}-"
    if rest.startswith(host) and rest[len(host) :].split("-", 1)[0].isdigit():
        try:
            os.kill(int(rest[len(host) :].split("-", 1)[0]), 0)
        except ProcessLookupError:
            return True
        except OSError:  # alive, owned by another user
            return False
        return False
    try:
        age_s = datetime.datetime.now().timestamp() - os.path.getmtime(path)
    except OSError:
        return False
    return age_s > (STALE_AFTER_S if "-" not in rest else 24 * STALE_AFTER_S)


def remove_stale_temporaries(folder: str) -> list[str]:
    """Remove the temporaries (``.tmp-*``, any suffix: HDF5 files, videos, exports, figures)
    that killed writes left in ``folder`` (see :func:`_is_stale`) and the lock files that
    killed holders left (:func:`ei_sim.store.lock.remove_stale_lock`); return their paths."""
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        try:
            is_file = entry.is_file(follow_symlinks=False)
        except OSError:
            continue
        if not is_file:
            continue
        if entry.name.startswith(TMP_PREFIX) and _is_stale(entry.name, entry.path):
            with contextlib.suppress(OSError):
                os.unlink(entry.path)
                removed.append(entry.path)
        elif entry.name.endswith(LOCK_SUFFIX) and remove_stale_lock(entry.path):
            removed.append(entry.path)
    return removed


def temporary_path(path: str, suffix: str | None = None) -> str:
    """A new, empty temporary file beside ``path`` (named after this writer, with the suffix
    of ``path`` unless ``suffix`` is given); ValueError naming ``path`` if it cannot be made."""
    folder = os.path.dirname(os.path.abspath(path))
    suffix = os.path.splitext(path)[1] if suffix is None else suffix
    try:
        fd, tmp = tempfile.mkstemp(prefix=TMP_PREFIX + _writer_id(), suffix=suffix, dir=folder)
    except OSError as err:
        raise write_error(path, err) from None
    os.close(fd)
    return tmp


def is_disk_full(err: BaseException) -> bool:
    """Whether an error is a full disk or quota (an OSError, or HDF5's text of one)."""
    if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    text = str(err)
    return "errno = 28" in text or "No space left on device" in text


def no_space(path: str, needed_bytes: float | None = None) -> ValueError:
    """The one-line error of a full disk under ``path``."""
    folder = os.path.dirname(os.path.abspath(path))
    try:
        free = f"{format_bytes(shutil.disk_usage(folder).free)} free in {folder}"
    except OSError:
        free = f"in {folder}"
    need = "" if needed_bytes is None else f", about {format_bytes(needed_bytes)} needed"
    return ValueError(f"cannot write {path}: no space left on device ({free}{need}); free some "
                      "space or write elsewhere")  # fmt: skip


def check_free_space(path: str, needed_bytes: float) -> None:
    """ValueError (:func:`no_space`) when the folder of ``path`` has less free space than
    ``needed_bytes`` plus a small margin (unknown free space passes)."""
    folder = os.path.dirname(os.path.abspath(path))
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return
    if free < needed_bytes + FREE_MARGIN_BYTES:
        raise no_space(path, needed_bytes)


def write_error(path: str, err: BaseException) -> ValueError:
    """A one-line error about ``path`` (not the temporary) for a failed write."""
    if is_disk_full(err):
        return no_space(path)
    text = str(err)
    if "error message = '" in text:
        reason = text.split("error message = '", 1)[1].split("'", 1)[0]
    else:
        reason = getattr(err, "strerror", None) or text.split(" (")[0] or type(err).__name__
    return ValueError(f"cannot write {path}: {reason}")


_write_error = write_error  # the name earlier releases used


def _fsync(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_file(path: str, check=None, suffix: str | None = None):
    """Yield a temporary path beside ``path`` for a writer to fill; on success it replaces
    ``path`` (synced first), on any error it is removed and ``path`` is left as it was.

    ``check(tmp) -> str | None``: what is wrong with the written file (e.g.
    :func:`ei_sim.store.media.file_problem`), a failure when not None. The output's lock is
    held throughout; stale temporaries in the folder are removed first. The temporary exists
    (empty) when yielded; writers that create their file themselves may replace it."""
    check_output_path(path)
    folder = os.path.dirname(os.path.abspath(path))
    with exclusive(path):
        remove_stale_temporaries(folder)
        tmp = temporary_path(path, suffix)
        try:
            try:
                yield tmp
                if not os.path.isfile(tmp):
                    raise ValueError(f"cannot write {path}: the writer left no file")
                problem = check(tmp) if check is not None else None
                if problem:
                    raise ValueError(f"cannot write {path}: the file came out {problem}")
                os.chmod(tmp, readable_mode())
                _fsync(tmp)
                os.replace(tmp, path)
            except OSError as err:
                raise write_error(path, err) from None
            except RuntimeError as err:  # HDF5's words for a failed write
                if is_disk_full(err):
                    raise no_space(path) from None
                raise
        finally:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


def _write_all(tmp: str, data) -> None:
    """Write ``data`` to ``tmp`` completely (a short write is an error)."""
    view = memoryview(data).cast("B")
    with open(tmp, "wb") as fh:
        written = fh.write(view)
        fh.flush()
        if written != len(view) or os.fstat(fh.fileno()).st_size != len(view):
            raise OSError(errno.EIO, f"short write: {written} of {len(view)} bytes")


def write_bytes(path: str, data, check=None) -> None:
    """Write ``data`` (bytes or a buffer) to ``path`` atomically (:func:`atomic_file`), after
    checking that the folder has room for it."""
    check_output_path(path)
    check_free_space(path, memoryview(data).nbytes)
    with atomic_file(path, check) as tmp:
        _write_all(tmp, data)


def write_text(path: str, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    write_bytes(path, text.encode("utf-8"))


def memory_h5(name: str, image: bytes | None = None):
    """An ``h5py.File`` that lives in memory only (never touches the disk): empty, or opened
    read-write from the bytes of an existing file (``image``)."""
    import h5py

    if image is None:
        return h5py.File(name, "w", driver="core", backing_store=False,
                         block_size=MEMORY_BLOCK_BYTES)  # fmt: skip
    fapl = h5py.h5p.create(h5py.h5p.FILE_ACCESS)
    fapl.set_fapl_core(MEMORY_BLOCK_BYTES, False)
    fapl.set_file_image(image)
    fid = h5py.h5f.open(os.fsencode(name), h5py.h5f.ACC_RDWR, fapl=fapl)
    return h5py.File(fid)


def h5_image(fh) -> bytes:
    """The bytes of an in-memory HDF5 file (:func:`memory_h5`) as they are now."""
    fh.flush()
    return fh.id.get_file_image()


def _read_image(source: str, path: str) -> bytes:
    try:
        with open(source, "rb") as fh:
            return fh.read()
    except OSError as err:
        raise ValueError(f"cannot read {source} to update {path}: {err.strerror}") from None


@contextlib.contextmanager
def atomic_h5(path: str, mode_copy_from: str | None = None, kind: str | None = None,
              seal: bool = False):  # fmt: skip
    """Yield an ``h5py.File``, built in memory, that replaces ``path`` on success.

    With ``mode_copy_from`` it starts as a copy of that file (append-like updates). With
    ``kind`` the file is stamped with ``kind`` and ``schema_version`` first; with ``seal``
    its root gets its checksum last (:func:`ei_sim.store.checksum.seal`). The file gets
    the mode the umask allows (as any new file); temporaries that killed writes left in the
    folder are removed first. A failed write names ``path``; the output's lock is held from
    before the copy is read until the new file is in place."""
    check_output_path(path)
    with exclusive(path):
        image = None
        if mode_copy_from and os.path.exists(mode_copy_from):
            image = _read_image(mode_copy_from, path)
        try:
            fh = memory_h5(path + ".in-memory", image)
        except OSError as err:
            raise ValueError(f"cannot update {path}: {mode_copy_from} is unreadable "
                             f"({str(err).splitlines()[0]})") from None  # fmt: skip
        try:
            if kind is not None:
                stamp(fh, kind)
            yield fh
            stamp_version(fh)
            if seal:
                seal_group(fh)
            image = h5_image(fh)
        except OSError as err:
            raise write_error(path, err) from err
        finally:
            fh.close()
        write_bytes(path, image)


@contextlib.contextmanager
def staged_files():
    """Yield ``stage(path, check=None) -> temporary path``: files staged in the block are
    checked (``check(tmp) -> problem or None``) and renamed into place together when the
    block ends without error; on any error every temporary is removed and every earlier
    file stays (a report's page and its figures are replaced all at once, or not at all).
    The lock of each staged output is held until the block ends."""
    staged: list[tuple[str, str, object]] = []
    cleaned: set[str] = set()
    with contextlib.ExitStack() as locks:

        def stage(path: str, check=None) -> str:
            check_output_path(path)
            locks.enter_context(exclusive(path))
            folder = os.path.dirname(os.path.abspath(path))
            if folder not in cleaned:
                remove_stale_temporaries(folder)
                cleaned.add(folder)
            tmp = temporary_path(path)
            staged.append((tmp, path, check))
            return tmp

        try:
            try:
                yield stage
                for tmp, path, check in staged:
                    problem = check(tmp) if check is not None else None
                    if problem:
                        raise ValueError(f"cannot write {path}: the file came out {problem}")
                    os.chmod(tmp, readable_mode())
                    _fsync(tmp)
                for tmp, path, _ in staged:
                    os.replace(tmp, path)
            except OSError as err:
                failed = next((p for t, p, _ in staged if os.path.exists(t)), "the outputs")
                raise write_error(failed, err) from None
        finally:
            for tmp, _, _ in staged:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
