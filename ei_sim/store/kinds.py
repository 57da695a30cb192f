"""The kinds of file ei-sim writes, and one opener for all of them.

Every HDF5 file ei-sim writes carries two root attributes: ``kind`` (what it holds: a name
in :data:`KINDS`) and ``schema_version`` (an int, the version of that kind's layout; 1 for
every layout of this release but the rate-model run's, 2 since its ``best_epoch`` counts
from 1; :func:`ei_sim.rate.store.load_rate_run` reads version 1 too). :func:`open_kind` is
the one way to open a file of a kind: it refuses a missing file, an unreadable one and one
of another kind with one line, e.g.

    runs/g.h5 is a grid store, not a training run (kind='grid', expected 'run')

A file without ``kind`` was written before the attribute existed: it is read as its kind's
layout of today (schema_version 1) when its groups say which kind it is (a simulate file
has ``/spikes``, a training run ``/weights`` and ``model.*`` attributes; :func:`kind_of`).
A file whose ``schema_version`` is newer than this ei-sim reads is refused (upgrade ei-sim).

The core registers its own kinds here (training runs, simulate files, the Brian2 reference
trains the tests compare with); every other package registers the kinds it writes where it
defines their layout, with :func:`register_kind` (the rate-model run in
:mod:`ei_sim.rate.store`, grid and sweep files in :mod:`ei_sim.sweeps.store`, the reproduction
store in :mod:`ei_sim.analysis.reproduce.store`), so importing that module is what makes a
kind known.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ei_sim.store.attrs import read_attrs

if TYPE_CHECKING:
    import h5py

KIND_ATTR = "kind"
VERSION_ATTR = "schema_version"
NETCDF_ATTR = "_NCProperties"  # written by netCDF-4 libraries (h5netcdf, netCDF-C) on every file
NETCDF = "a netCDF file (an ei-sim export --to xarray, or another program's)"
LEGACY_VERSION = 1  # what a file without schema_version holds: the layout of this release


def _legacy_simulate(fh) -> bool:
    return "spikes" in fh


def _legacy_run(fh) -> bool:
    return "weights" in fh and "model.name" in fh.attrs


@dataclass(frozen=True)
class Kind:
    """One kind of ei-sim file: its name (the ``kind`` attribute), what it is in words, the
    version of its layout written today, how to make one, and, for kinds whose older files
    lack the attribute, how such a file is recognised; what every file of the kind holds
    (``requires``) and, for stores of finished parts, the group of the parts and what each
    part holds (checked by :mod:`ei_sim.store.verify` and the readers)."""

    name: str
    noun: str  # "a grid store": used in every message about a file of this kind
    schema_version: int
    made_by: str  # the hint for a missing file, e.g. "train one with ei-sim train"
    recognise: Callable[[h5py.File], bool] | None = None  # a kind-less file of this kind
    requires: tuple = ()  # groups or datasets every file of this kind holds
    parts: str | None = None  # the group of a store built of finished parts ("cells")
    part_requires: tuple = ()  # what each of those parts holds


KINDS: dict[str, Kind] = {k.name: k for k in (
    Kind("run", "a training run", 1, "train one with ei-sim train", _legacy_run,
         requires=("metrics", "weights/best", "weights/last", "optimizer")),
    Kind("simulate", "a simulate file", 1, "make one with ei-sim simulate --out",
         _legacy_simulate, requires=("spikes", "population")),
    Kind("brian2_reference", "a file of Brian2 reference spike trains", 1,
         "write one with data/make_golden.py"),
)}  # fmt: skip
ALIASES = {"train": "run"}  # kind values that older readers accepted for a kind
UNKNOWN = "a file of unknown kind"
FOREIGN = "an HDF5 file that ei-sim did not write"


def missing_items(group, names: Iterable[str]) -> list[str]:
    """Those of ``names`` (paths of groups or datasets) that ``group`` does not hold."""
    out = []
    for name in names:
        try:
            present = name in group
        except Exception:  # noqa: BLE001 - a damaged link reads as absent
            present = False
        if not present:
            out.append(name)
    return out


def register_kind(kind: Kind) -> Kind:
    """Add a kind (called by the module that defines its layout; idempotent)."""
    if kind.name in KINDS and KINDS[kind.name] != kind:
        raise ValueError(f"kind {kind.name!r} is registered already with other properties")
    KINDS[kind.name] = kind
    return kind


def stamp(fh, kind: str) -> None:
    """Write the root attributes ``kind`` and ``schema_version`` of a new file of ``kind``."""
    fh.attrs[KIND_ATTR] = kind
    fh.attrs[VERSION_ATTR] = KINDS[kind].schema_version


def stamp_version(fh) -> None:
    """Add ``schema_version`` to a file that declares a registered ``kind`` without one."""
    kind = stored_kind(fh)
    if kind in KINDS and VERSION_ATTR not in fh.attrs:
        fh.attrs[VERSION_ATTR] = KINDS[kind].schema_version


def stored_kind(fh) -> str | None:
    """The root attribute ``kind`` as written (None when absent)."""
    return read_attrs(fh).get(KIND_ATTR)


def is_netcdf(fh) -> bool:
    """Whether an open HDF5 file is a netCDF-4 file (ei-sim writes netCDF only as exports)."""
    return NETCDF_ATTR in fh.attrs


def kind_of(fh) -> str | None:
    """The kind of an open file: its ``kind`` attribute (old aliases mapped), or, for a
    kind-less file, the kind its groups show; None when neither says, and for a netCDF file
    whatever it declares (an xarray export of ei-sim 0.1 copied its source's ``kind``; it is
    an export, not the store it came from)."""
    if is_netcdf(fh):
        return None
    kind = stored_kind(fh)
    if kind is not None:
        return ALIASES.get(kind, kind)
    for candidate in KINDS.values():
        if candidate.recognise is not None and candidate.recognise(fh):
            return candidate.name
    return None


def schema_version(fh) -> int:
    """The file's ``schema_version`` (``schema`` in the few files that wrote it under that
    name; :data:`LEGACY_VERSION` when absent)."""
    attrs = read_attrs(fh)
    return int(attrs.get(VERSION_ATTR, attrs.get("schema", LEGACY_VERSION)))


def describe(kind: str | None, stored: str | None = None) -> str:
    """What a file of ``kind`` is, in words ("a grid store")."""
    if kind in KINDS:
        return KINDS[kind].noun
    return FOREIGN if stored is None and kind is None else UNKNOWN


def _either(words: list[str], last: str = "or") -> str:
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} {last} {words[-1]}"


def wrong_kind(path: str, fh, wanted: Iterable[str]) -> ValueError:
    """The one-line error for a file of another kind than ``wanted``."""
    wanted = list(wanted)
    stored = stored_kind(fh)
    found = describe(kind_of(fh), stored)
    nouns = _either([KINDS[k].noun if k in KINDS else repr(k) for k in wanted])
    names = _either([repr(k) for k in wanted])
    if is_netcdf(fh):
        source = read_attrs(fh).get("source")
        hint = f"; give the file it was exported from ({source})" if source else ""
        return ValueError(f"{path} is {NETCDF}, not {nouns}{hint}")
    return ValueError(f"{path} is {found}, not {nouns} (kind={stored!r}, expected {names})")


def open_readable(path: str, missing_hint: str) -> h5py.File:
    """Open an HDF5 file read-only; ValueError (one line) if it is missing or unreadable."""
    import h5py

    if not os.path.isfile(path):
        raise ValueError(f"{path} does not exist; {missing_hint}")
    try:
        return h5py.File(path, "r")
    except OSError as err:
        raise ValueError(f"{path} is unreadable (truncated or corrupt): {err}") from None


def open_kind(path, kind: str | Iterable[str], hint: str | None = None, *,
              missing: str | None = None) -> h5py.File:  # fmt: skip
    """Open ``path`` read-only as a file of ``kind`` (a name, or several accepted names).

    ValueError (one line) when it is missing (then ``missing``, else ``hint``, else the
    kind's ``made_by`` says what to do), unreadable, of another kind (:func:`wrong_kind`,
    ``hint`` appended when given) or of a newer ``schema_version`` than this ei-sim reads."""
    path = os.fspath(path)
    wanted = (kind,) if isinstance(kind, str) else tuple(kind)
    fh = open_readable(path, missing or hint or KINDS[wanted[0]].made_by)
    try:
        found = kind_of(fh)
        if found not in wanted:
            err = wrong_kind(path, fh, wanted)
            raise ValueError(f"{err}; {hint}" if hint else str(err))
        version, known = schema_version(fh), KINDS[found].schema_version if found in KINDS else 1
        if version > known:
            raise ValueError(f"{path} is {KINDS[found].noun} of schema_version {version}; this "
                             f"ei-sim reads up to {known}: upgrade ei-sim")  # fmt: skip
    except BaseException:
        fh.close()
        raise
    return fh


def file_kind(path, kinds: Iterable[str] | None = None, hint: str | None = None, *,
              missing: str | None = None) -> str:  # fmt: skip
    """The kind of the file at ``path`` (one of ``kinds``, default any registered kind),
    through :func:`open_kind`'s checks."""
    kinds = tuple(KINDS) if kinds is None else tuple(kinds)
    with open_kind(path, kinds, hint, missing=missing) as fh:
        return kind_of(fh)
