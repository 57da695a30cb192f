"""HDF5 result stores: atomic writes, config and provenance as attributes.

Every file is written to a temporary name in its destination folder and renamed into place
(``os.replace``), so a run killed at any moment leaves either the old file or the new one,
never a half-written one.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import platform
import subprocess
import tempfile

import h5py
import numpy as np

import ei_sim


def git_commit() -> str:
    """Commit of the ei-sim source tree, or "unknown" outside a git checkout."""
    here = os.path.dirname(os.path.abspath(ei_sim.__file__))
    try:
        out = subprocess.run(
            ["git", "-C", here, "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 else "unknown"


def provenance(seed=None) -> dict:
    import jax

    return {
        "provenance.ei_sim_version": ei_sim.__version__,
        "provenance.git_commit": git_commit(),
        "provenance.jax_version": jax.__version__,
        "provenance.numpy_version": np.__version__,
        "provenance.python": platform.python_version(),
        "provenance.created_utc": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "provenance.seed": "none" if seed is None else seed,
    }


def check_output_path(path: str) -> None:
    """ValueError (one line) when the folder of ``path`` is missing or not writable."""
    folder = os.path.dirname(os.path.abspath(path)) or "."
    if not os.path.isdir(folder):
        raise ValueError(f"output directory {folder} does not exist; create it first")
    if not os.access(folder, os.W_OK):
        raise ValueError(f"output directory {folder} is not writable")


TMP_PREFIX = ".tmp-"
STALE_AFTER_S = 3600.0  # temporaries without a writer id (older versions): removed when older


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
def atomic_h5(path: str, mode_copy_from: str | None = None):
    """Yield an ``h5py.File`` opened on a temporary file that replaces ``path`` on success.

    With ``mode_copy_from`` the temporary starts as a copy of that file (append-like updates).
    The file gets the mode the umask allows (as any new file); temporaries that killed
    writes left in the folder are removed first. A failed write names ``path``.
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
            import shutil

            shutil.copyfile(mode_copy_from, tmp)
            fh = h5py.File(tmp, "a")
        else:
            fh = h5py.File(tmp, "w")
        with fh:
            yield fh
        os.replace(tmp, path)
    except OSError as err:
        raise _write_error(path, err) from err
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def open_readable(path: str, missing_hint: str) -> h5py.File:
    """Open an HDF5 file read-only; ValueError (one line) if it is missing or unreadable."""
    if not os.path.isfile(path):
        raise ValueError(f"{path} does not exist; {missing_hint}")
    try:
        return h5py.File(path, "r")
    except OSError as err:
        raise ValueError(f"{path} is unreadable (truncated or corrupt): {err}") from None


def write_attrs(obj, attrs: dict) -> None:
    for key, value in attrs.items():
        obj.attrs[key] = "none" if value is None else value


def read_attrs(obj) -> dict:
    out = {}
    for key, value in obj.attrs.items():
        if isinstance(value, bytes):
            value = value.decode()
        elif hasattr(value, "item") and np.ndim(value) == 0:
            value = value.item()
        out[key] = value
    return out


def write_spike_lists(group, spikes: np.ndarray, dt_ms: float) -> None:
    """Store a (T, B, N) boolean raster as event lists: step (int64, exact), time_ms
    (float64, step * dt_ms), trial, index (the layout of ``ei-sim simulate``)."""
    t, b, n = np.nonzero(spikes)
    group.create_dataset("step", data=t.astype(np.int64), compression="gzip")
    group.create_dataset("time_ms", data=t * np.float64(dt_ms), compression="gzip")
    group.create_dataset("trial", data=b.astype(np.int32), compression="gzip")
    group.create_dataset("index", data=n.astype(np.int32), compression="gzip")
    group.attrs["n_cells"] = spikes.shape[2]
    group.attrs["n_trials"] = spikes.shape[1]
