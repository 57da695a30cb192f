"""The grid and sweep layouts: the HDF5 files of :mod:`sweeps`, written atomically.

A grid store is written one finished cell at a time (:mod:`ei_sim.store.parts`). Layout:
root attributes ``kind = "grid"``, ``schema_version``, the sweep's settings (``grid.*``) and
provenance; one group ``cells/<name>`` per finished cell (``name = wei<X>__wie<Y>__seed<S>``)
with attributes ``w_ei, w_ie, seed, best_accuracy, final_accuracy, best_epoch, rate_e_Hz,
rate_i_Hz, gamma_peak_Hz, gamma_rhythmic, gamma_verdict, label`` (the gamma verdict of the
reference trial at the best epoch: ``gamma_rhythmic`` 1 rhythm, 0 none; ``gamma_verdict`` in
words, :func:`ei_sim.sim.spectrum.verdict_word`; stores written before them lack both),
datasets ``metrics/<name>`` (per epoch) and the best weights ``weights/<block>`` (and the
snapshots of its run, ``snapshots/epoch_NNNN``, when it trained with ``--video``:
:mod:`ei_sim.store.snapshot`). Each cell carries its checksum (:mod:`ei_sim.store.checksum`):
a resume recomputes a damaged cell (or one without its ``metrics`` or ``weights``),
:func:`read_grid` refuses one in one line.

A sweep file (``ei-sim sweep``, :func:`write_sweep`): root attributes
``kind`` = "scale_sweep" (W_in scales only) or "coupling_sweep", ``schema_version``,
``coupling_target`` ("none", "w_ei" or "w_ie"), ``run_dir`` and provenance; datasets
``scales`` (S,), ``coupling_scales`` (C,) and ``accuracy``, ``rate_e_Hz``, ``rate_i_Hz``,
``gamma_peak_Hz``, ``gamma_significance`` (C, S; the last two absent from older files); its
root carries its checksum, verified by :func:`read_sweep`.
"""

from __future__ import annotations

import ast
import functools
import glob
import math
import os

import h5py
import numpy as np

from ei_sim.store.atomic import atomic_h5
from ei_sim.store.attrs import provenance, read_attrs, write_attrs
from ei_sim.store.checksum import ATTR as CHECKSUM
from ei_sim.store.checksum import ensure_sound
from ei_sim.store.kinds import Kind, open_kind, register_kind
from ei_sim.store.lock import exclusive
from ei_sim.store.parts import (
    SettingsDiffer,
    adding_part,
    note_damaged,
    read_part,
    same_settings,
    scan_parts,
)
from ei_sim.store.paths import RUN_FILE, cells_dir, run_path
from ei_sim.store.snapshot import SNAPSHOT_GROUP
from ei_sim.sweeps.ranges import format_value

CELLS = "cells"
KIND = register_kind(Kind("grid", "a grid store", 1, "make one with ei-sim grid --out",
                          requires=(CELLS,), parts=CELLS,
                          part_requires=("metrics", "weights"))).name  # fmt: skip
SWEEP_KINDS = tuple(register_kind(k).name for k in (
    Kind("scale_sweep", "a scale-sweep file", 1, "make one with ei-sim sweep scale",
         requires=("scales",)),
    Kind("coupling_sweep", "a coupling-sweep file", 1, "make one with ei-sim sweep coupling",
         requires=("scales",)),
))  # fmt: skip
SWEEP_ARRAYS = ("scales", "coupling_scales", "accuracy", "rate_e_Hz", "rate_i_Hz")
SWEEP_OPTIONAL = ("gamma_peak_Hz", "gamma_significance")  # sweeps written since they existed


def cell_name(w_ei: float, w_ie: float, seed: int) -> str:
    return f"wei{format_value(w_ei)}__wie{format_value(w_ie)}__seed{seed}"


def holding_store(fn):
    """Run ``fn(spec, store, ...)`` (a grid's run) holding the lock on ``store``: one grid per
    store, a second refused at once (:func:`ei_sim.store.lock.exclusive`), taken before
    anything of the store or its cells is opened for writing."""

    @functools.wraps(fn)
    def locked(spec, store, *args, **kwargs):
        with exclusive(store):
            return fn(spec, store, *args, **kwargs)

    return locked


def resumable_cells(path: str, settings: dict, force: bool,
                    on_damaged=None) -> set[str] | None:  # fmt: skip
    """The finished, sound cells of an existing store made with ``settings`` (None: no store,
    one that ``force`` starts anew, or an empty store of an earlier release); ValueError for
    another kind of file, or other settings without ``force``. Reads only.

    A store of an earlier release (no ``grid.settings_version``) kept its settings as the
    flags that differed from the defaults; its settings are read instead from a run file of
    one of its cells (which holds the whole network and recipe), with its axes and seeds."""
    if not os.path.exists(path):
        return None
    attrs, done, damaged = scan_parts(path, KIND, CELLS)
    if "grid.settings_version" not in attrs:
        attrs = legacy_settings(path, attrs)
        if attrs is None:  # nothing was kept in it: made anew
            return None
    if not same_settings(path, attrs, settings, force):
        return None
    for name, reason in sorted(damaged.items()):  # left out: computed again
        if on_damaged is not None:
            on_damaged(name, reason)
    return done


def legacy_settings(path: str, attrs: dict) -> dict | None:
    """The settings (as :meth:`ei_sim.sweeps.grid.GridSpec.settings` writes them) of a store
    of an earlier release, from any of its cells' run files; None when it holds no cell.
    ValueError (one line) when it holds cells but none of their run files: its settings
    cannot be checked, so it is never continued (nor replaced) without ``--force``."""
    from ei_sim.store.run import LEGACY_DEFAULTS
    from ei_sim.sweeps.grid import SETTINGS_VERSION, shared_keys

    runs = sorted(glob.glob(os.path.join(glob.escape(cells_dir(path)), "*", RUN_FILE)))
    if not runs:
        with h5py.File(path, "r") as fh:
            if len(fh.get(CELLS, ())) == 0:
                return None
        raise SettingsDiffer(f"{path} was made by an earlier release of ei-sim and its "
                             "cells' run files, which hold its settings, are gone: its "
                             "settings cannot be checked")  # fmt: skip
    with h5py.File(runs[0], "r") as fh:
        run = {**LEGACY_DEFAULTS, **read_attrs(fh)}
    out = {f"grid.{k}": v for k, v in run.items() if k in shared_keys(run)}
    out.update({k: attrs[k] for k in ("grid.seeds", "grid.w_ei", "grid.w_ie",
                                      "grid.diagonal_ratio") if k in attrs})  # fmt: skip
    out["grid.settings_version"] = SETTINGS_VERSION
    return out


def open_or_create(path: str, settings: dict, force: bool, on_damaged=None) -> set[str]:
    """Create the store, or check that an existing one has the same settings; return the
    names of its finished, sound cells (damaged ones are named on stderr, or passed to
    ``on_damaged(name, reason)``, and computed again)."""
    report = on_damaged if on_damaged is not None else note_damaged(path, CELLS)
    done = resumable_cells(path, settings, force, report)
    if done is not None:
        return done
    with atomic_h5(path, kind=KIND) as fh:
        write_attrs(fh, {**settings, **provenance()})
        fh.create_group(CELLS)
    return set()


def cell_epochs(path: str, names) -> dict[str, int]:
    """The epochs each finished cell of the store was trained for."""
    out = {}
    with open_kind(path, KIND) as fh:
        for name in names:
            group = fh[CELLS][name]
            epochs = read_attrs(group).get("epochs")
            if epochs is None and "metrics/test_accuracy" in group:
                epochs = len(group["metrics/test_accuracy"])
            out[name] = int(epochs or 0)
    return out


def add_cell(path, name, summary, metrics, weights, run_dir=None) -> None:
    """Copy the store with one more cell and rename it into place; the cell's video
    snapshots (if its run recorded them) come along."""
    with adding_part(path, CELLS, name) as group:
        write_attrs(group, summary)
        for key, values in metrics.items():
            group.create_dataset(f"metrics/{key}", data=np.asarray(values, np.float64))
        for key, array in weights.items():
            group.create_dataset(f"weights/{key}", data=np.asarray(array), compression="gzip")
        run_file = None if run_dir in (None, "none") else run_path(run_dir)
        if run_file and os.path.exists(run_file):
            with h5py.File(run_file, "r") as run:
                if SNAPSHOT_GROUP in run:
                    run.copy(run[SNAPSHOT_GROUP], group, SNAPSHOT_GROUP)


def read_cells(path: str) -> list[dict]:
    """Each finished cell's attributes (its summary) and ``name``, sorted by name."""
    return [c["attrs"] | {"name": c["name"]} for c in read_grid(path, metrics=False)["cells"]]


def read_grid(path: str, metrics: bool = True) -> dict:
    """A grid store's root ``attrs`` and its ``cells``: per finished cell, sorted by name,
    ``name``, ``attrs`` and (with ``metrics``) its per-epoch ``metrics`` as float arrays.
    ValueError (one line) unless ``path`` is a grid store."""
    with open_kind(path, KIND) as fh:
        if CELLS not in fh:
            raise ValueError(f"{path} is a grid store without its {CELLS} group (corrupt)")
        cells = []
        for name in sorted(fh[CELLS]):
            group = read_part(fh, path, CELLS, name)  # Damaged when it fails its checksum
            attrs = {k: v for k, v in read_attrs(group).items() if k != CHECKSUM}
            cell = {"name": name, "attrs": attrs}
            if metrics:
                values = group.get("metrics", {})
                cell["metrics"] = {k: np.asarray(values[k][()], float) for k in values}
            cells.append(cell)
        return {"attrs": read_attrs(fh), "cells": cells}


def planned_cells(attrs: dict) -> list[tuple[float, float, int]]:
    """The ``(w_ei, w_ie, seed)`` cells that a grid store's settings (its root attributes)
    name, seed by seed as :meth:`ei_sim.sweeps.grid.GridSpec.cells` orders them; [] when the
    store does not say (an earlier release's)."""
    try:
        w_ei = [float(v) for v in ast.literal_eval(str(attrs["grid.w_ei"]))]
        w_ie = [float(v) for v in ast.literal_eval(str(attrs["grid.w_ie"]))]
        seeds = [int(v) for v in ast.literal_eval(str(attrs["grid.seeds"]))]
    except (KeyError, ValueError, SyntaxError, TypeError):
        return []
    ratio = str(attrs.get("grid.diagonal_ratio", "none"))
    if ratio != "none":
        pairs = [(a, float(ratio) * a) for a in w_ei]
    else:
        pairs = [(a, b) for a in w_ei for b in w_ie]
    return [(a, b, s) for s in seeds for a, b in pairs]


def unfinished_cells(path: str) -> list[dict]:
    """The cells a grid store names but does not hold yet, or holds with fewer epochs than
    their run is being continued to, each with how far its run has got: ``name``, ``w_ei``,
    ``w_ie``, ``seed``, ``epochs_done`` (0: not started), ``epochs`` (the run's target; for a
    cell not started, the store's where an earlier release wrote it, else None) and, once an
    epoch is stored, from the run file's per-epoch test metrics: ``best_accuracy`` so far,
    the last epoch's ``rate_e_Hz`` and ``rate_i_Hz``, and every epoch's, ``e_history`` and
    ``i_history`` (lists, empty before the first epoch). Reads the run files only (written
    whole, then renamed), so it can run while a campaign trains; a run file that cannot be
    read counts as not started."""
    data = read_grid(path, metrics=False)
    attrs = data["attrs"]
    stored = cell_epochs(path, [c["name"] for c in data["cells"]])
    try:
        target = int(attrs["grid.train.epochs"])  # stores of earlier releases
    except (KeyError, TypeError, ValueError):
        target = None
    out = []
    for w_ei, w_ie, seed in planned_cells(attrs):
        name = cell_name(w_ei, w_ie, seed)
        cell = {"name": name, "w_ei": w_ei, "w_ie": w_ie, "seed": seed, "epochs_done": 0,
                "epochs": target, "best_accuracy": math.nan, "rate_e_Hz": math.nan,
                "rate_i_Hz": math.nan, "e_history": [], "i_history": []}  # fmt: skip
        run = _run_progress(run_path(os.path.join(cells_dir(path), name)))
        if name in stored and not run.get("epochs", 0) > stored[name]:
            continue  # finished (a stored cell counts unless its run is being continued)
        out.append({**cell, **run})
    return out


def _run_progress(run_file: str) -> dict:
    """From a cell's run file: its target ``epochs``, ``epochs_done`` and the metrics of
    :func:`unfinished_cells`; {} when there is none or it cannot be read."""
    out = {}
    try:
        with h5py.File(run_file, "r") as fh:
            if "train.epochs" in fh.attrs:
                out["epochs"] = int(fh.attrs["train.epochs"])
            n = int(fh.attrs.get("epochs_done", 0))
            if n and "metrics" in fh:
                m = fh["metrics"]
                acc = np.asarray(m["test_accuracy"][:n], float)
                e = [float(x) for x in m["test_rate_e_Hz"][:n]]
                i = [float(x) for x in m["test_rate_i_Hz"][:n]]
                out.update(epochs_done=n, best_accuracy=float(np.nanmax(acc)),
                           rate_e_Hz=e[-1], rate_i_Hz=i[-1], e_history=e,
                           i_history=i)  # fmt: skip
    except (OSError, KeyError, ValueError, IndexError, TypeError):
        return {}
    return out


def write_sweep(path: str, result: dict) -> None:
    """Write the sweep ``result`` (:func:`ei_sim.sweeps.inference.sweep_scales`) as a sweep file."""
    kind = "scale_sweep" if result["coupling_target"] == "none" else "coupling_sweep"
    with atomic_h5(path, kind=kind, seal=True) as fh:
        write_attrs(fh, {"coupling_target": result["coupling_target"],
                         "run_dir": result["run_dir"], **provenance()})  # fmt: skip
        for key in SWEEP_ARRAYS:
            fh.create_dataset(key, data=result[key])
        for key in SWEEP_OPTIONAL:
            if key in result:
                fh.create_dataset(key, data=result[key])


def read_sweep(path: str, kinds=SWEEP_KINDS) -> dict:
    """A sweep file's root attributes (``attrs``) and its arrays, as stored. ValueError (one
    line) unless ``path`` is a sweep file of one of ``kinds``."""
    with open_kind(path, kinds) as fh:
        if "scales" not in fh:
            raise ValueError(f"{path} is a sweep file without its scales dataset (corrupt)")
        ensure_sound(fh, path)
        arrays = {k: np.asarray(fh[k][()]) for k in fh if isinstance(fh[k], h5py.Dataset)}
        attrs = {k: v for k, v in read_attrs(fh).items() if k != CHECKSUM}
        return {"attrs": attrs, **arrays}
