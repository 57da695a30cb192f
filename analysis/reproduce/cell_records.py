"""Cell records: a grid experiment's finished cells as data, so that a campaign outlives its
machine.

A grid campaign (``ei-sim reproduce grid --scale full``: 25 trainings of about 20 minutes
each here) outlasts one session, and a later session may start on a fresh machine without the
grid store or the cells' runs. The cell records keep, per finished cell, what the grid stage
needs of it (:data:`~ei_sim.analysis.reproduce.grids.CELL_METRICS`, per epoch; no weights),
with its provenance (the commit it trained with, the machine, when), in one JSON file per
experiment, scale and setting: ``<root>/<experiment>/<scale>_<setting>_cells.json``.

* ``ei-sim reproduce ... --save-results DIR`` records each cell of the grid in
  ``DIR`` as soon as it is stored, and every stored cell once the grid has finished.
* Before its grid trains, a reproduction reads the records of the shipped results
  (:func:`~ei_sim.analysis.reproduce.results.shipped_root`): a cell recorded with at least the
  plan's epochs is not trained again, and the grid stage reads its metrics up to the plan's
  epochs. A cell the grid store holds with enough epochs is read from the store instead.
* A file is used only when it matches: the same layout (:data:`LAYOUT`), the same setting and
  the same recipe for a cell (:data:`CELL_KEYS`: the plan's tier, network size, trial length
  and sample count; the epoch count is the cell's own). The plan's axes and seeds only say
  which cells exist, and a cell is named by its own (W_EI, W_IE, seed), so the ``grid`` and
  ``diagonal`` experiments read each other's records too: the diagonal's seed-42 points at
  W_EI 0, 0.25, 0.5 and 1 are the grid's cells (0, 0), (0.25, 0.5), (0.5, 1) and (1, 2),
  the same network and recipe (:func:`~ei_sim.analysis.reproduce.grids.grid_spec`).

A cell's record is replaced only by one with more epochs.
"""

from __future__ import annotations

import datetime
import json
import os
from dataclasses import dataclass

import numpy as np

from ei_sim.analysis.reproduce.results import _array, _jsonable, machine

LAYOUT = 1
KIND = "grid_cells"
GRID_EXPERIMENTS = ("grid", "diagonal")  # they train their cells alike (grids.grid_spec)
CELL_KEYS = ("plan.tier", "plan.n_e", "plan.t_ms", "plan.samples")  # what a cell trains with


def cells_path(root: str, experiment: str, scale: str, setting: str) -> str:
    return os.path.join(root, experiment, f"{scale}_{setting}_cells.json")


def read_cell_records(path: str, *, experiment: str, setting: str, plan_attrs: dict) -> dict:
    """``{cell name: {"w_ei", "w_ie", "seed", "epochs", "metrics": {name: array},
    "provenance": {...}}}`` of a cells file; {} when there is none; ValueError (one line) when
    it is of another layout, holds another experiment than ``experiment`` (one of
    :data:`GRID_EXPERIMENTS`) or another setting, or was made with another recipe for its
    cells (:data:`CELL_KEYS` of ``plan_attrs``)."""
    if not os.path.isfile(path):
        return {}
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"cell records {path} cannot be read: {err}") from None
    if data.get("kind") != KIND or data.get("layout") != LAYOUT:
        raise ValueError(f"cell records {path} are of layout {data.get('layout')!r}; this "
                         f"ei-sim reads {KIND} layout {LAYOUT} (written by another release)")  # fmt: skip
    if data.get("experiment") not in GRID_EXPERIMENTS or data.get("setting") != setting:
        raise ValueError(f"cell records {path} hold {data.get('experiment')} with setting "
                         f"{data.get('setting')}, not {experiment} with {setting}")  # fmt: skip
    want = {k: str(plan_attrs.get(k)) for k in CELL_KEYS}
    have = {k: str(data.get("plan", {}).get(k)) for k in CELL_KEYS}
    diffs = sorted(k for k in CELL_KEYS if want[k] != have[k])
    if diffs:
        raise ValueError(f"cell records {path} were made with another recipe "
                         f"({', '.join(diffs[:4])} differ)")  # fmt: skip
    cells = {}
    for name, cell in data.get("cells", {}).items():
        metrics = {k: _array(v).astype(float) for k, v in cell["metrics"].items()}
        cells[name] = {**cell, "metrics": metrics, "epochs": int(cell["epochs"])}
    return cells


def write_cell_records(path: str, *, experiment: str, scale: str, setting: str,
                       plan_attrs: dict, cells: dict) -> None:  # fmt: skip
    """Add ``cells`` (``{name: {"w_ei", "w_ie", "seed", "metrics", "provenance"}}``) to the
    cells file at ``path``, keeping a recorded cell unless the new one has more epochs;
    written whole, then renamed into place."""
    from ei_sim.store.atomic import write_text

    kept = read_cell_records(path, experiment=experiment, setting=setting,
                             plan_attrs=plan_attrs)  # fmt: skip
    for name, cell in cells.items():
        epochs = len(cell["metrics"]["test_accuracy"])
        if name in kept and kept[name]["epochs"] >= epochs:
            continue
        kept[name] = {"w_ei": float(cell["w_ei"]), "w_ie": float(cell["w_ie"]),
                      "seed": int(cell["seed"]), "epochs": epochs,
                      "metrics": {k: np.asarray(v, float) for k, v in cell["metrics"].items()},
                      "provenance": dict(cell["provenance"])}  # fmt: skip
    data = {
        "kind": KIND, "layout": LAYOUT, "experiment": experiment, "scale": scale,
        "setting": setting, "plan": {k: str(v) for k, v in plan_attrs.items()},
        "cells": dict(sorted(kept.items())),
    }  # fmt: skip
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    write_text(path, json.dumps(_jsonable(data), indent=1) + "\n")


def cell_provenance(run_dir: str | None) -> dict:
    """Where a cell's numbers come from: the commit and creation time its run file records
    (the commit its run started with), the commit and machine that record it, and its
    training wall time."""
    from ei_sim.store.attrs import git_commit

    out = {"recorded_by_commit": git_commit(), "machine": machine(),
           "recorded_utc": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")}  # fmt: skip
    if run_dir and run_dir != "none":
        from ei_sim.store.paths import run_path

        try:
            import h5py

            with h5py.File(run_path(run_dir), "r") as fh:
                for key in ("provenance.git_commit", "provenance.created_utc"):
                    if key in fh.attrs:
                        value = fh.attrs[key]
                        out["run_" + key.split(".", 1)[1]] = (
                            value.decode() if isinstance(value, bytes) else str(value))
        except OSError:
            pass
    return out


@dataclass
class CellRecords:
    """The cell records a reproduction reads (``read_paths``: its own experiment's file
    first, then the other grid experiment's) and writes (``write_path``)."""

    experiment: str
    scale: str
    setting: str
    plan_attrs: dict
    read_paths: tuple = ()
    write_path: str | None = None

    @classmethod
    def under(cls, experiment, scale, setting, plan_attrs, read_root=None, write_root=None):
        """The records of ``experiment`` read from the grid experiments' files under
        ``read_root`` and written under ``write_root`` (None: not read, not written)."""
        order = (experiment, *(e for e in GRID_EXPERIMENTS if e != experiment))
        reads = tuple(cells_path(read_root, e, scale, setting) for e in order) if read_root else ()
        write = cells_path(write_root, experiment, scale, setting) if write_root else None
        return cls(experiment, scale, setting, plan_attrs, reads, write)

    def finished(self, epochs: int, names, say=print) -> dict:
        """The recorded cells among ``names`` with at least ``epochs`` epochs (their metrics
        cut to ``epochs``), each with ``source`` (the file it was read from); a file that
        does not match is said in one line and not used."""
        out = {}
        for path in self.read_paths:
            try:
                cells = read_cell_records(path, experiment=self.experiment,
                                          setting=self.setting, plan_attrs=self.plan_attrs)  # fmt: skip
            except ValueError as err:
                say(f"cell records not used: {err}")
                continue
            for name in names:
                cell = cells.get(name)
                if name not in out and cell is not None and cell["epochs"] >= epochs:
                    metrics = {k: v[:epochs] for k, v in cell["metrics"].items()}
                    out[name] = {**cell, "metrics": metrics, "source": path}
        return out

    def add(self, cells: dict) -> None:
        """Record ``cells`` (see :func:`write_cell_records`) when this reproduction saves its
        results; nothing otherwise."""
        if self.write_path and cells:
            write_cell_records(self.write_path, experiment=self.experiment, scale=self.scale,
                               setting=self.setting, plan_attrs=self.plan_attrs,
                               cells=cells)  # fmt: skip
