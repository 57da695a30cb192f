"""Stores built of finished parts: one group per finished part, each added atomically.

A grid store (``cells/<cell>``, :mod:`ei_sim.sweeps.store`) and a reproduction store
(``stages/<stage>``, :mod:`ei_sim.analysis.reproduce.store`) grow one finished part at a time, so a
run killed at any moment keeps every finished part and a rerun computes none of them again.
Both share this life cycle:

- :func:`open_or_create`: an existing store of the same kind made with the same settings
  (root attributes) is continued, its finished parts returned; one made with other settings
  is refused unless ``force`` starts it anew; a file of another kind is always refused;
  otherwise a new store is written (``kind``, ``schema_version``, the settings, provenance
  and an empty parts group).
- :func:`adding_part`: copy the store, replace or add one part, seal it (its checksum:
  :mod:`ei_sim.store.checksum`), rename into place.

Every part carries a checksum. A part that does not match it, that cannot be read, or that
lacks what every part of its kind holds (``Kind.part_requires``) is *damaged*: a resume
names it in one line and computes it again (it is never kept as finished), and readers
(:func:`part_problem`) refuse it in one line. Parts written before checksums existed are
read as before.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable

from ei_sim.store.atomic import atomic_h5
from ei_sim.store.attrs import provenance, read_attrs, write_attrs
from ei_sim.store.checksum import Damaged, seal, verdict
from ei_sim.store.kinds import KINDS, missing_items, open_kind

SHOWN_DIFFERENCES = 4


class SettingsDiffer(ValueError):
    """A store exists at the path with other settings (the command line adds how to proceed:
    :attr:`cli_hint`)."""

    cli_hint = "use another --out, or --force to start it anew"


SHOWN_VALUE_CHARS = 40


def _shown(key: str, value) -> str:
    text = repr(value)
    return f"{key}={text[:SHOWN_VALUE_CHARS] + '...' if len(text) > SHOWN_VALUE_CHARS else text}"


def part_requires(kind: str) -> tuple:
    """What every part of a store of ``kind`` holds (``Kind.part_requires``)."""
    return KINDS[kind].part_requires if kind in KINDS else ()


def part_problem(group, requires: tuple = ()) -> str | None:
    """What is wrong with one stored part (None: sound, or unsealed and whole): which of
    ``requires`` it lacks, or how it fails its checksum."""
    lacking = missing_items(group, requires)
    if lacking:
        return f"it lacks its {lacking[0]}"
    found = verdict(group)
    return found.reason if found.damaged else None


def damaged_parts(fh, parts: str, requires: tuple = ()) -> dict[str, str]:
    """``{name: what is wrong}`` of the damaged parts in group ``parts`` of an open store
    (:func:`part_problem`)."""
    group = fh[parts] if parts in fh else {}
    out = {}
    for name in list(group):
        try:
            problem = part_problem(group[name], requires)
        except Exception as err:  # noqa: BLE001 - a part whose very group cannot be opened
            problem = f"unreadable: {str(err).splitlines()[0] if str(err) else err!r}"
        if problem:
            out[name] = problem
    return out


def read_part(fh, path: str, parts: str, name: str, requires: tuple = ()):
    """The group of part ``name``; :class:`~ei_sim.store.checksum.Damaged` (one line naming
    the file and the part) when it is damaged or lacks one of ``requires``."""
    try:
        group = fh[parts][name]
        problem = part_problem(group, requires)
    except Exception as err:  # noqa: BLE001 - h5py's errors for damaged metadata vary
        problem = f"unreadable: {str(err).splitlines()[0] if str(err) else err!r}"
    if problem:
        raise Damaged(path, f"{parts}/{name}", problem)
    return group


def scan_parts(path: str, kind: str, parts: str):
    """The store's root attributes, its sound parts and its damaged ones (reads only)."""
    with open_kind(path, kind, hint="choose another --out") as fh:
        attrs = read_attrs(fh)
        names = set(fh[parts]) if parts in fh else set()
        damaged = damaged_parts(fh, parts, part_requires(kind))
    return attrs, names - set(damaged), damaged


def resumable_parts(path: str, kind: str, settings: dict, force: bool, parts: str,
                    made_by: str = "with different settings",
                    on_damaged: Callable[[str, str], None] | None = None,
                    ) -> set[str] | None:  # fmt: skip
    """The finished, sound parts (names in group ``parts``) of an existing store of ``kind``
    made with ``settings``; None when there is no store, or one that ``force`` starts anew.
    Damaged parts are left out (they are computed again), each passed to
    ``on_damaged(name, reason)`` when given. ValueError (one line) for a file of another
    kind, or other settings without ``force`` (``made_by`` says how they differ: "was made
    with different settings (...)"). Reads only.
    """
    if not os.path.exists(path):
        return None
    attrs, done, damaged = scan_parts(path, kind, parts)
    if not same_settings(path, attrs, settings, force, made_by):
        return None
    for name, reason in sorted(damaged.items()):
        if on_damaged is not None:
            on_damaged(name, reason)
    return done


def same_settings(path: str, stored: dict, settings: dict, force: bool,
                  made_by: str = "with different settings") -> bool:  # fmt: skip
    """Whether the ``stored`` settings are ``settings``; False when they differ and ``force``
    allows starting anew, :class:`SettingsDiffer` (one line, the first differences) when they
    differ without it."""
    diffs = [k for k, v in settings.items() if str(stored.get(k)) != str(v)]
    if not diffs:
        return True
    if not force:
        shown = ", ".join(_shown(k, stored.get(k)) for k in diffs[:SHOWN_DIFFERENCES])
        raise SettingsDiffer(f"{path} was made {made_by} ({shown})")
    return False


def note_damaged(path: str, parts: str) -> Callable[[str, str], None]:
    """The default report of a damaged part on resume: one line on stderr."""

    def note(name: str, reason: str) -> None:
        print(f"note: {path}: {parts}/{name} is damaged ({reason}); computing it again",
              file=sys.stderr)  # fmt: skip

    return note


def open_or_create(path: str, kind: str, settings: dict, force: bool, parts: str,
                   made_by: str = "with different settings",
                   on_damaged: Callable[[str, str], None] | None = None) -> set[str]:  # fmt: skip
    """Continue the store at ``path`` (:func:`resumable_parts`) or create it; return the names
    of its finished, sound parts. Damaged parts are reported with ``on_damaged`` (default:
    :func:`note_damaged`) and left to be computed again."""
    report = on_damaged if on_damaged is not None else note_damaged(path, parts)
    done = resumable_parts(path, kind, settings, force, parts, made_by, report)
    if done is not None:
        return done
    with atomic_h5(path, kind=kind) as fh:
        write_attrs(fh, {**settings, **provenance()})
        fh.create_group(parts)
    return set()


@contextlib.contextmanager
def adding_part(path: str, parts: str, name: str):
    """Yield the new, empty group ``parts/name`` of a copy of the store that replaces it on
    success (an existing part of that name, a damaged one included, is replaced); the part
    is sealed with its checksum when the caller's block ends."""
    with atomic_h5(path, mode_copy_from=path) as fh:
        group = fh.require_group(parts)
        try:
            if name in group:
                del group[name]
        except Exception as err:  # noqa: BLE001 - metadata too damaged to unlink the part
            raise ValueError(f"cannot replace the damaged part {parts}/{name} of {path} "
                             f"({str(err).splitlines()[0]}); remove the store to start it "
                             "anew") from None  # fmt: skip
        part = group.create_group(name)
        yield part
        seal(part)
