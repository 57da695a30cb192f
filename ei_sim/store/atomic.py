"""Atomic writing: every file is written to a temporary name in its destination folder and
renamed into place (``os.replace``), so a run killed at any moment leaves either the old file
or the new one, never a half-written one.

Temporaries are named ``.tmp-HOST-PID-xxxx.h5`` after their writer; those a killed writer
left behind are removed before the next write into the folder (:func:`remove_stale_temporaries`).
A file written with ``kind`` carries the root attributes ``kind`` and ``schema_version``
(:mod:`ei_sim.store.kinds`); a writer that sets ``kind`` itself gets its ``schema_version``
added when the write completes.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import platform
import shutil
import tempfile

import h5py

from ei_sim.store.kinds import stamp, stamp_version

TMP_PREFIX = ".tmp-"
STALE_AFTER_S = 3600.0  # temporaries without a writer id (older versions): removed when older


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
    """Remove the ``.tmp-*.h5`` files in ``folder`` that a killed write left behind (see
    :func:`_is_stale`); return their paths."""
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        if entry.name.startswith(TMP_PREFIX) and entry.name.endswith(".h5") and entry.is_file():
            if _is_stale(entry.name, entry.path):
                try:
                    os.unlink(entry.path)
                    removed.append(entry.path)
                except OSError:
                    pass
    return removed


def _write_error(path: str, err: OSError) -> ValueError:
    """A one-line error about ``path`` (not the temporary) for a failed write."""
    text = str(err)
    if "error message = '" in text:
        reason = text.split("error message = '", 1)[1].split("'", 1)[0]
    else:
        reason = err.strerror or text.split(" (")[0] or type(err).__name__
    return ValueError(f"cannot write {path}: {reason}")


@contextlib.contextmanager
def atomic_h5(path: str, mode_copy_from: str | None = None, kind: str | None = None):
    """Yield an ``h5py.File`` opened on a temporary file that replaces ``path`` on success.

    With ``mode_copy_from`` the temporary starts as a copy of that file (append-like updates).
    With ``kind`` the file is stamped with ``kind`` and ``schema_version`` first. The file
    gets the mode the umask allows (as any new file); temporaries that killed writes left in
    the folder are removed first. A failed write names ``path``.
    """
    check_output_path(path)
    folder = os.path.dirname(os.path.abspath(path))
    remove_stale_temporaries(folder)
    try:
        fd, tmp = tempfile.mkstemp(prefix=TMP_PREFIX + _writer_id(), suffix=".h5", dir=folder)
    except OSError as err:
        raise _write_error(path, err) from None
    os.close(fd)
    try:
        os.chmod(tmp, readable_mode())
        if mode_copy_from and os.path.exists(mode_copy_from):
            shutil.copyfile(mode_copy_from, tmp)
            fh = h5py.File(tmp, "a")
        else:
            fh = h5py.File(tmp, "w")
        with fh:
            if kind is not None:
                stamp(fh, kind)
            yield fh
            stamp_version(fh)
        os.replace(tmp, path)
    except OSError as err:
        raise _write_error(path, err) from err
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
