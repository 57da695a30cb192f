"""Checksums of stored parts: every part that a resume or a reader trusts carries a SHA-256
of its contents as the attribute ``checksum`` of its group.

A *part* is a group sealed with :func:`seal`: a grid cell (``cells/<name>``), a reproduction
stage (``stages/<name>``), a run file's root (its metrics, weights and optimiser state, as of
its last completed epoch), a snapshot (``snapshots/epoch_NNNN``), a sweep file's root, a
rate-model run's root and a simulate file's root. Its checksum covers, in a fixed order:

- the group's own attributes (name, type and value of each, ``checksum`` itself excepted);
- every dataset below it (relative path, dtype, shape and the SHA-256 of its bytes), except
  those inside a nested group that carries a checksum of its own (a cell's snapshots are
  parts of their own, verified when they are read).

So a flipped byte in an array or in an attribute, a deleted dataset or group, a truncated
array and a part cut short all show as a mismatch (:func:`verdict`). A group without the
attribute was written before ei-sim recorded checksums: it is *unsealed*, read as before and
reported as not verified (``ei-sim verify``), never as damaged.

:class:`StreamDigest` computes the same checksum for arrays written in pieces (the chunks
of a streamed simulate file) without reading them back.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

ATTR = "checksum"
ALGORITHM = "sha256"
BLOCK_BYTES = 16 << 20  # datasets are hashed in slabs of about this size
SOUND, UNSEALED, DAMAGED = "sound", "unsealed", "damaged"


@dataclass(frozen=True)
class Verdict:
    """What :func:`verdict` found: ``status`` is :data:`SOUND`, :data:`UNSEALED` (no checksum:
    written before checksums existed) or :data:`DAMAGED` (``reason`` says how)."""

    status: str
    reason: str = ""

    @property
    def damaged(self) -> bool:
        return self.status == DAMAGED


class Damaged(ValueError):
    """A stored part does not match its checksum or cannot be read: one line naming the file
    and the part."""

    def __init__(self, path: str, part: str, reason: str):
        self.path, self.part, self.reason = path, part, reason
        where = f"{path}: {part}" if part not in ("", "/") else path
        super().__init__(f"{where} is damaged ({reason})")


def _text_bytes(value) -> bytes:
    if isinstance(value, bytes | np.bytes_):
        value = bytes(value).decode("utf-8", "replace")
    return str(value).encode("utf-8")


def _value_bytes(value) -> bytes:
    """A canonical byte form of an attribute value or of an array of any dtype."""
    if isinstance(value, str | bytes | np.str_ | np.bytes_):
        return b"s:" + _text_bytes(value)
    array = np.asarray(value)
    if array.dtype.kind in "OSU":
        items = [_text_bytes(v) for v in array.ravel()]
        return b"t:" + repr(array.shape).encode() + b"".join(
            len(item).to_bytes(8, "little") + item for item in items
        )
    array = np.ascontiguousarray(array)
    return f"a:{array.dtype.str}:{array.shape}:".encode() + array.tobytes()


def attrs_digest(obj) -> str:
    """SHA-256 of a group's attributes (``checksum`` excepted), sorted by name."""
    h = hashlib.sha256()
    for key in sorted(k for k in obj.attrs.keys() if k != ATTR):
        h.update(key.encode("utf-8") + b"\0" + _value_bytes(obj.attrs[key]) + b"\n")
    return h.hexdigest()


def array_bytes(array) -> bytes:
    """The bytes of an array as the checksum counts them (text element-wise)."""
    array = np.asarray(array)
    if array.dtype.kind in "OSU":
        return _value_bytes(array)
    return np.ascontiguousarray(array).tobytes()


def dataset_digest(dataset) -> str:
    """SHA-256 of a dataset's values, read in slabs along its first axis."""
    h = hashlib.sha256()
    shape = dataset.shape
    if shape is None:  # an empty (null) dataspace
        return h.hexdigest()
    if len(shape) == 0 or dataset.dtype.kind in "OSU":
        h.update(array_bytes(dataset[()]))
        return h.hexdigest()
    row_bytes = max(1, int(np.prod(shape[1:], dtype=np.int64)) * dataset.dtype.itemsize)
    step = max(1, BLOCK_BYTES // row_bytes)
    for start in range(0, shape[0], step):
        h.update(array_bytes(dataset[start : start + step]))
    return h.hexdigest()


def _entry(relpath: str, dtype, shape, hexdigest: str) -> bytes:
    return f"{relpath}\0{np.dtype(dtype).str}\0{tuple(shape or ())}\0{hexdigest}\n".encode()


def _combine(attrs_hex: str, entries: list[bytes]) -> str:
    h = hashlib.sha256(f"attrs\0{attrs_hex}\n".encode())
    for entry in sorted(entries):
        h.update(entry)
    return f"{ALGORITHM}:{h.hexdigest()}"


def _datasets(group) -> list:
    """``(relative path, dataset)`` of every dataset below ``group``, not descending into
    nested groups that carry a checksum of their own."""
    import h5py

    found = []

    def walk(node, prefix: str) -> None:
        for name in node:
            item = node[name]
            rel = f"{prefix}{name}"
            if isinstance(item, h5py.Dataset):
                found.append((rel, item))
            elif isinstance(item, h5py.Group) and ATTR not in item.attrs:
                walk(item, rel + "/")

    walk(group, "")
    return found


def digest(group) -> str:
    """The checksum of a group as :func:`seal` stores it (``sha256:<hex>``)."""
    entries = [_entry(rel, ds.dtype, ds.shape, dataset_digest(ds)) for rel, ds in _datasets(group)]
    return _combine(attrs_digest(group), entries)


def seal(group) -> str:
    """Store the checksum of ``group`` (its attributes and arrays as they are now) in its
    ``checksum`` attribute; return it."""
    value = digest(group)
    group.attrs[ATTR] = value
    return value


def stored(group) -> str | None:
    """The checksum a group carries (None: unsealed)."""
    value = group.attrs.get(ATTR)
    if value is None:
        return None
    return value.decode() if isinstance(value, bytes) else str(value)


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0][:200] if text else type(err).__name__


def verdict(group) -> Verdict:
    """Whether ``group`` matches its checksum (never raises: an unreadable part is damaged)."""
    try:
        expected = stored(group)
        if expected is None:
            return Verdict(UNSEALED)
        found = digest(group)
    except Exception as err:  # noqa: BLE001 - any read error of h5py means a damaged part
        return Verdict(DAMAGED, f"unreadable: {_first_line(err)}")
    if found != expected:
        return Verdict(DAMAGED, "its contents do not match their checksum")
    return Verdict(SOUND)


def ensure_sound(group, path: str, part: str | None = None) -> Verdict:
    """:class:`Damaged` unless ``group`` is sound or unsealed; return its verdict."""
    result = verdict(group)
    if result.damaged:
        raise Damaged(path, group.name.lstrip("/") if part is None else part, result.reason)
    return result


class StreamDigest:
    """The checksum of a group whose datasets grow piece by piece (:func:`update` with each
    piece in order); equal to :func:`digest` of the written group."""

    def __init__(self):
        self._hashes: dict[str, hashlib._Hash] = {}
        self._meta: dict[str, tuple] = {}

    def update(self, relpath: str, values: np.ndarray, dtype, shape) -> None:
        """Count ``values`` (already of the dataset's dtype) as appended to ``relpath``, whose
        shape is now ``shape``."""
        self._hashes.setdefault(relpath, hashlib.sha256()).update(array_bytes(values))
        self._meta[relpath] = (np.dtype(dtype), tuple(shape))

    def truncate(self, relpath: str) -> None:
        """Forget ``relpath`` (before it is written again from the start)."""
        self._hashes.pop(relpath, None)
        self._meta.pop(relpath, None)

    def copy(self) -> StreamDigest:
        other = StreamDigest()
        other._hashes = {k: h.copy() for k, h in self._hashes.items()}
        other._meta = dict(self._meta)
        return other

    def value(self, group) -> str:
        """The checksum of ``group`` (its attributes as they are now, the counted arrays)."""
        entries = [_entry(rel, *self._meta[rel][:1], self._meta[rel][1], h.hexdigest())
                   for rel, h in self._hashes.items()]  # fmt: skip
        return _combine(attrs_digest(group), entries)

    def seal(self, group) -> str:
        value = self.value(group)
        group.attrs[ATTR] = value
        return value
