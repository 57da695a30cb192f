"""The HDF5 store of one reproduction (``kind = "reproduce"``), written one stage at a time.

Layout: root attributes ``kind``, ``schema``, ``experiment``, ``scale``, ``setting`` and the
plan's settings (``plan.*``), provenance; one group ``stages/<name>`` per finished stage with
its numbers as attributes and arrays as datasets. Each finished stage is added atomically
(copy, add, rename), so a run killed at any moment keeps every finished stage and a rerun
recomputes none of them.
"""

from __future__ import annotations

import os

import h5py
import numpy as np

from ei_sim.storage import atomic_h5, provenance, read_attrs, write_attrs

KIND = "reproduce"
SCHEMA = 1


def open_or_create(path: str, meta: dict, force: bool = False) -> set[str]:
    """Create the store or check that an existing one was made by the same experiment, scale
    and plan; return the names of its finished stages."""
    if os.path.exists(path):
        try:
            with h5py.File(path, "r") as fh:
                attrs = read_attrs(fh)
                done = set(fh["stages"]) if "stages" in fh else set()
        except OSError as err:
            raise ValueError(f"{path} is not a readable HDF5 store: {err}") from None
        if attrs.get("kind") != KIND:
            raise ValueError(
                f"{path} is not a reproduction store (kind={attrs.get('kind')!r}); "
                "choose another --out"
            )
        diffs = [k for k, v in meta.items() if str(attrs.get(k)) != str(v)]
        if not diffs:
            return done
        if not force:
            shown = ", ".join(f"{k}={attrs.get(k)!r}" for k in diffs[:3])
            raise ValueError(
                f"{path} was made by another experiment, scale or plan ({shown}); "
                "use another --out or --force to start it anew"
            )
    with atomic_h5(path) as fh:
        write_attrs(fh, {"kind": KIND, "schema": SCHEMA, **meta, **provenance()})
        fh.create_group("stages")
    return set()


def save_stage(path: str, name: str, attrs: dict, arrays: dict | None = None) -> None:
    """Add (or replace) one finished stage."""
    with atomic_h5(path, mode_copy_from=path) as fh:
        if name in fh["stages"]:
            del fh["stages"][name]
        group = fh["stages"].create_group(name)
        write_attrs(group, {k: ("none" if v is None else v) for k, v in attrs.items()})
        for key, value in (arrays or {}).items():
            group.create_dataset(key, data=np.asarray(value))


def load_stages(path: str) -> dict:
    """``{stage: {"attrs": {...}, **arrays}}`` of every finished stage."""
    out = {}
    with h5py.File(path, "r") as fh:
        for name, group in fh["stages"].items():
            entry = {
                "attrs": {k: (None if v == "none" else v) for k, v in read_attrs(group).items()}
            }
            entry.update({k: np.asarray(group[k][()]) for k in group})
            out[name] = entry
    return out
