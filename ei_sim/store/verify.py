"""Checking any file ei-sim writes: :func:`verify_path` says whether it is whole and sound.

- HDF5 files of a registered kind (:mod:`ei_sim.store.kinds`): readable, of a schema this
  ei-sim reads, holding what every file of the kind holds (``Kind.requires``); every group
  that carries a checksum (:mod:`ei_sim.store.checksum`: a run's last epoch, a simulate
  file, a sweep file, each grid cell, reproduction stage and snapshot) matches it; every
  part of a store holds what each part holds (``Kind.part_requires``). Files or parts
  written before checksums existed are reported as *not verified*, never as damaged; a
  simulate file cut short (``.partial``) as incomplete; a file that another process is
  writing right now (its lock is held) as such.
- Figures, videos and pages (PNG, MP4, GIF, HTML): whole (:mod:`ei_sim.store.media`).
- HDF5 files ei-sim did not write (its NWB, NIX and netCDF exports among them): readable.

Nothing is modified; the files are opened read-only and no lock is taken.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from ei_sim.store.checksum import ATTR, verdict
from ei_sim.store.kinds import (
    KINDS,
    describe,
    kind_of,
    missing_items,
    schema_version,
)
from ei_sim.store.lock import holder_of
from ei_sim.store.media import file_problem, media_kind

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
PARTIAL_SUFFIX = ".partial"
TEXT_SUFFIXES = (".md", ".txt", ".json", ".csv")
MEDIA_NOUNS = {"png": "a PNG figure", "mp4": "an MP4 video", "gif": "a GIF video",
               "html": "an HTML page"}  # fmt: skip


@dataclass(frozen=True)
class Finding:
    """One thing wrong with a file: the part it concerns ("" for the whole file) and what."""

    part: str
    problem: str

    def line(self) -> str:
        return f"{self.part}: {self.problem}" if self.part else self.problem


@dataclass(frozen=True)
class Report:
    """What :func:`verify_path` found in one file."""

    path: str
    what: str  # "a grid store", "a PNG figure", ...
    problems: tuple = ()  # Findings: damaged, missing or unreadable parts
    notes: tuple = ()  # what was not verified, or is incomplete or in progress
    verified: int = 0  # checksums verified
    parts: int | None = None  # finished parts of a store (None: not a store of parts)
    parts_name: str = "parts"  # what they are called ("cells", "stages")
    media: bool = False  # a figure, video or page (checked for being whole)

    @property
    def sound(self) -> bool:
        return not self.problems


@dataclass
class _Scan:
    problems: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    verified: int = 0
    unsealed: int = 0


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0][:200] if text else type(err).__name__


def resolve(path: str) -> str:
    """A run directory stands for its ``run.h5``; ValueError (one line) for a missing path
    or a folder that holds no run."""
    if os.path.isdir(path):
        inner = os.path.join(path, "run.h5")
        if not os.path.isfile(inner):
            raise ValueError(f"{path} is a folder without a run.h5; give a file ei-sim wrote "
                             "or a run directory")  # fmt: skip
        return inner
    if not os.path.exists(path):
        raise ValueError(f"{path} does not exist; give a file ei-sim wrote")
    return path


def _head(path: str) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read(8)
    except OSError as err:
        raise ValueError(f"{path} cannot be read ({err.strerror})") from None


def _sealed_groups(fh, scan: _Scan) -> None:
    """Verify every group of the file that carries a checksum."""
    import h5py

    found = [fh] if ATTR in fh.attrs else []

    def visit(name, obj):
        if isinstance(obj, h5py.Group) and ATTR in obj.attrs:
            found.append(obj)

    try:
        fh.visititems(visit)
    except Exception as err:  # noqa: BLE001 - damaged metadata stops the walk
        scan.problems.append(Finding("", f"unreadable structure: {_first_line(err)}"))
    for group in found:
        result = verdict(group)
        name = group.name.lstrip("/")
        if result.damaged:
            scan.problems.append(Finding(name, result.reason))
        else:
            scan.verified += 1


def _parts(fh, kind, scan: _Scan) -> int | None:
    """Check every part of a store of parts; return how many it holds."""
    if kind.parts is None:
        return None
    if kind.parts not in fh:
        return 0
    group = fh[kind.parts]
    names = list(group)
    for name in names:
        try:
            part = group[name]
            lacking = missing_items(part, kind.part_requires)
            sealed = ATTR in part.attrs
        except Exception as err:  # noqa: BLE001
            scan.problems.append(Finding(f"{kind.parts}/{name}", f"unreadable: "
                                         f"{_first_line(err)}"))  # fmt: skip
            continue
        if lacking:
            scan.problems.append(Finding(f"{kind.parts}/{name}", f"lacks its {lacking[0]}"))
        if not sealed:
            scan.unsealed += 1
    return len(names)


def _simulate_notes(attrs: dict, path: str, scan: _Scan) -> None:
    if attrs.get("complete") in (False, 0) or path.endswith(PARTIAL_SUFFIX):
        done, total = attrs.get("chunks_done", "?"), attrs.get("n_steps")
        steps = attrs.get("steps_done", "?")
        status = attrs.get("status", "?")
        why = f", {attrs['stopped_by']}" if "stopped_by" in attrs else ""
        scan.notes.append(f"incomplete: {done} chunks ({steps} of {total} steps) finished, "
                          f"status {status}{why}")  # fmt: skip


def _verify_h5(path: str) -> Report:
    import h5py

    from ei_sim.store.attrs import read_attrs

    owner = path[: -len(PARTIAL_SUFFIX)] if path.endswith(PARTIAL_SUFFIX) else path
    holder = holder_of(owner)
    if holder is not None:
        return Report(path, "an ei-sim file in progress",
                      notes=(f"being written now ({holder.describe()}); verify it when that "
                             "ends",))  # fmt: skip
    try:
        fh = h5py.File(path, "r")
    except OSError as err:
        return Report(path, "an HDF5 file", (Finding("", "unreadable (truncated or corrupt): "
                                                     f"{_first_line(err)}"),))  # fmt: skip
    with fh:
        scan = _Scan()
        try:
            name = kind_of(fh)
            attrs = read_attrs(fh)
        except Exception as err:  # noqa: BLE001
            return Report(path, "an HDF5 file", (Finding("", f"unreadable root attributes: "
                                                         f"{_first_line(err)}"),))  # fmt: skip
        if name not in KINDS:
            what = describe(name, attrs.get("kind"))
            return Report(path, what, notes=("not a file of an ei-sim kind (an export, or "
                                             "another program's): readable, no checksums "
                                             "to verify",))  # fmt: skip
        kind = KINDS[name]
        version = schema_version(fh)
        if version > kind.schema_version:
            return Report(path, kind.noun, (Finding("", f"schema_version {version} is newer "
                          f"than this ei-sim reads ({kind.schema_version}): upgrade ei-sim"),))
        for item in missing_items(fh, kind.requires):
            scan.problems.append(Finding("", f"lacks its {item}"))
        _sealed_groups(fh, scan)
        n_parts = _parts(fh, kind, scan)
        if name == "simulate":
            _simulate_notes(attrs, path, scan)
        if name == "run" and attrs.get("status") == "failed":
            scan.notes.append(f"marked failed: {attrs.get('failure', 'non-finite weights')}")
        if n_parts is None and ATTR not in fh.attrs:
            scan.notes.append("no checksum (written before ei-sim recorded checksums): its "
                              "contents are not verified")  # fmt: skip
        elif scan.unsealed:
            scan.notes.append(f"{scan.unsealed} of its {n_parts} {kind.parts} have no "
                              "checksum (written before ei-sim recorded checksums): not "
                              "verified")  # fmt: skip
        return Report(path, kind.noun, tuple(scan.problems), tuple(scan.notes), scan.verified,
                      n_parts, kind.parts or "parts")  # fmt: skip


def verify_path(path: str) -> Report:
    """Check the file at ``path`` (a run directory: its ``run.h5``); ValueError (one line)
    for a missing path or a file that is none of those ei-sim writes."""
    path = resolve(path)
    head = _head(path)
    if head.startswith(HDF5_SIGNATURE):
        return _verify_h5(path)
    media = media_kind(path)
    if media is not None:
        problem = file_problem(path, media)
        found = (Finding("", problem),) if problem else ()
        return Report(path, MEDIA_NOUNS[media], found, media=True)
    if path.endswith(TEXT_SUFFIXES):
        return Report(path, "a text file", notes=("text: nothing to verify",))
    if not head:
        return Report(path, "an empty file", (Finding("", "empty (0 bytes)"),))
    if path.endswith((".h5", PARTIAL_SUFFIX)):
        return Report(path, "an HDF5 file", (Finding("", "not an HDF5 file (no HDF5 "
                                                     "signature): truncated or overwritten"),))
    raise ValueError(f"{path} is not a file ei-sim writes (HDF5, PNG, MP4, GIF or HTML)")
