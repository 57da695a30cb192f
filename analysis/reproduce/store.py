"""The HDF5 store of one reproduction (``kind = "reproduce"``), written one stage at a time.

Layout: root attributes ``kind``, ``schema_version`` (``schema`` in stores written before
it), ``experiment``, ``scale``, ``setting`` and the plan's settings (``plan.*``), provenance;
one group ``stages/<name>`` per finished stage with its numbers as attributes and arrays as
datasets. Each finished stage is added atomically (copy, add, rename:
:mod:`ei_sim.store.parts`), so a run killed at any moment keeps every finished stage and a
rerun recomputes none of them.
"""

from __future__ import annotations

import numpy as np

from ei_sim.store.attrs import read_attrs, write_attrs
from ei_sim.store.kinds import Kind, open_kind, register_kind
from ei_sim.store.parts import adding_part
from ei_sim.store.parts import open_or_create as open_or_create_parts

KIND = register_kind(
    Kind("reproduce", "a reproduction store", 1, "make one with ei-sim reproduce")
).name
STAGES = "stages"


def open_or_create(path: str, meta: dict, force: bool = False) -> set[str]:
    """Create the store or check that an existing one was made by the same experiment, scale
    and plan; return the names of its finished stages."""
    return open_or_create_parts(path, KIND, meta, force, STAGES,
                                made_by="by another experiment, scale or plan")  # fmt: skip


def save_stage(path: str, name: str, attrs: dict, arrays: dict | None = None) -> None:
    """Add (or replace) one finished stage."""
    with adding_part(path, STAGES, name) as group:
        write_attrs(group, {k: ("none" if v is None else v) for k, v in attrs.items()})
        for key, value in (arrays or {}).items():
            group.create_dataset(key, data=np.asarray(value))


def load_stages(path: str) -> dict:
    """``{stage: {"attrs": {...}, **arrays}}`` of every finished stage."""
    out = {}
    with open_kind(path, KIND) as fh:
        for name, group in fh[STAGES].items():
            entry = {
                "attrs": {k: (None if v == "none" else v) for k, v in read_attrs(group).items()}
            }
            entry.update({k: np.asarray(group[k][()]) for k in group})
            out[name] = entry
    return out
