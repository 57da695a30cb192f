"""The HDF5 store of one reproduction (``kind = "reproduce"``), written one stage at a time.

Layout: root attributes ``kind``, ``schema_version`` (``schema`` in stores written before
it), ``experiment``, ``scale``, ``setting`` and the plan's settings (``plan.*``), provenance;
one group ``stages/<name>`` per finished stage with its numbers as attributes and arrays as
datasets. Each finished stage is added atomically (copy, add, rename:
:mod:`ei_sim.store.parts`), so a run killed at any moment keeps every finished stage and a
rerun recomputes none of them. Each stage carries its checksum: a rerun recomputes a damaged
stage (named in one line), :func:`load_stage` refuses one.
"""

from __future__ import annotations

import numpy as np

from ei_sim.store.attrs import read_attrs, write_attrs
from ei_sim.store.checksum import ATTR as CHECKSUM
from ei_sim.store.kinds import Kind, open_kind, register_kind
from ei_sim.store.parts import adding_part, read_part
from ei_sim.store.parts import open_or_create as open_or_create_parts

STAGES = "stages"
KIND = register_kind(
    Kind("reproduce", "a reproduction store", 1, "make one with ei-sim reproduce",
         requires=(STAGES,), parts=STAGES)
).name


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


def _entry(group) -> dict:
    attrs = {k: (None if v == "none" else v) for k, v in read_attrs(group).items()
             if k != CHECKSUM}  # fmt: skip
    return {"attrs": attrs, **{k: np.asarray(group[k][()]) for k in group}}


def load_stage(path: str, name: str) -> dict:
    """``{"attrs": {...}, **arrays}`` of one finished stage; ValueError (one line) when the
    store lacks it or it is damaged."""
    with open_kind(path, KIND) as fh:
        if STAGES not in fh or name not in fh[STAGES]:
            raise ValueError(f"{path} holds no stage {name!r}")
        return _entry(read_part(fh, path, STAGES, name))


def load_stages(path: str) -> dict:
    """``{stage: {"attrs": {...}, **arrays}}`` of every finished stage (one line naming a
    damaged one)."""
    with open_kind(path, KIND) as fh:
        return {name: _entry(read_part(fh, path, STAGES, name)) for name in fh[STAGES]}
