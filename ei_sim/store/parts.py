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
- :func:`adding_part`: copy the store, replace or add one part, rename into place.
"""

from __future__ import annotations

import contextlib
import os

from ei_sim.store.atomic import atomic_h5
from ei_sim.store.attrs import provenance, read_attrs, write_attrs
from ei_sim.store.kinds import open_kind

SHOWN_DIFFERENCES = 4


class SettingsDiffer(ValueError):
    """A store exists at the path with other settings (the command line adds how to proceed:
    :attr:`cli_hint`)."""

    cli_hint = "use another --out, or --force to start it anew"


SHOWN_VALUE_CHARS = 40


def _shown(key: str, value) -> str:
    text = repr(value)
    return f"{key}={text[:SHOWN_VALUE_CHARS] + '...' if len(text) > SHOWN_VALUE_CHARS else text}"


def resumable_parts(path: str, kind: str, settings: dict, force: bool, parts: str,
                    made_by: str = "with different settings") -> set[str] | None:  # fmt: skip
    """The finished parts (names in group ``parts``) of an existing store of ``kind`` made
    with ``settings``; None when there is no store, or one that ``force`` starts anew.
    ValueError (one line) for a file of another kind, or other settings without ``force``
    (``made_by`` says how they differ: "was made with different settings (...)"). Reads only.
    """
    if not os.path.exists(path):
        return None
    with open_kind(path, kind, hint="choose another --out") as fh:
        attrs = read_attrs(fh)
        done = set(fh[parts]) if parts in fh else set()
    return done if same_settings(path, attrs, settings, force, made_by) else None


def same_settings(path: str, stored: dict, settings: dict, force: bool,
                  made_by: str = "with different settings") -> bool:  # fmt: skip
    """Whether the ``stored`` settings are ``settings``; False when they differ and ``force``
    allows starting anew, ValueError (one line, the first differences) when they differ
    without it."""
    diffs = [k for k, v in settings.items() if str(stored.get(k)) != str(v)]
    if not diffs:
        return True
    if not force:
        shown = ", ".join(_shown(k, stored.get(k)) for k in diffs[:SHOWN_DIFFERENCES])
        raise SettingsDiffer(f"{path} was made {made_by} ({shown})")
    return False


def open_or_create(path: str, kind: str, settings: dict, force: bool, parts: str,
                   made_by: str = "with different settings") -> set[str]:  # fmt: skip
    """Continue the store at ``path`` (:func:`resumable_parts`) or create it; return the names
    of its finished parts."""
    done = resumable_parts(path, kind, settings, force, parts, made_by)
    if done is not None:
        return done
    with atomic_h5(path, kind=kind) as fh:
        write_attrs(fh, {**settings, **provenance()})
        fh.create_group(parts)
    return set()


@contextlib.contextmanager
def adding_part(path: str, parts: str, name: str):
    """Yield the new, empty group ``parts/name`` of a copy of the store that replaces it on
    success (an existing part of that name is replaced)."""
    with atomic_h5(path, mode_copy_from=path) as fh:
        group = fh.require_group(parts)
        if name in group:
            del group[name]
        yield group.create_group(name)
