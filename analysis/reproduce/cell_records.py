"""Cell records: a grid experiment's finished cells as data, so that a campaign outlives its
machine.

A grid campaign (``ei-sim reproduce grid --scale full``: 25 trainings of about 20 minutes
each here) outlasts one session, and a later session may start on a fresh machine without the
grid store or the cells' runs. The cell records keep, per finished cell, what the grid stage
needs of it (:data:`~ei_sim.analysis.reproduce.grids.CELL_METRICS`, per epoch; no weights),
with its provenance (the commit of its last epoch, the machine, when), in one JSON file per
experiment, scale and setting: ``<root>/<experiment>/<scale>_<setting>_cells.json``.

* ``ei-sim reproduce ... --save-results DIR`` records each cell of the grid in
  ``DIR`` as soon as it is stored, and every stored cell once the grid has finished.
* Before its grid trains, a reproduction reads the records of the shipped results
  (:func:`~ei_sim.analysis.reproduce.results.shipped_root`): a cell recorded with at least the
  plan's epochs is not trained again, and the grid stage reads its metrics up to the plan's
  epochs. A cell the grid store holds with enough epochs is read from the store instead.
* A file is used only when it matches: the same layout (:data:`LAYOUT`), the same setting
  name, and the same network and recipe of its cells: ``settings``, every attribute of the
  model and the training recipe that the grid's cells share, as the grid store compares them
  (:func:`ei_sim.sweeps.grid.shared_settings`; not the couplings and the seed, which name the
  cell, nor the epoch count, which is the cell's own). A cell is named by its own (W_EI,
  W_IE, seed), so the ``grid`` and ``diagonal`` experiments read each other's records too:
  the diagonal's seed-42 points at W_EI 0, 0.25, 0.5 and 1 are the grid's cells (0, 0),
  (0.25, 0.5), (0.5, 1) and (1, 2), trained with the same settings.
* A malformed file, or one that does not match, is named in one line and not used; nor is it
  written over (the cells stay in the grid store).

A cell's record is replaced only by one with more epochs; the file is rewritten whole and
renamed into place, under a lock that a second writer waits for.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
from dataclasses import dataclass

import numpy as np

from ei_sim.analysis.reproduce.results import _array, _jsonable, machine

LAYOUT = 2  # 1: matched on four plan values, not on the cells' settings
KIND = "grid_cells"
GRID_EXPERIMENTS = ("grid", "diagonal")  # they train their cells alike (grids.grid_spec)
METRICS = ("test_accuracy", "test_rate_e_Hz", "test_rate_i_Hz", "gamma_peak_Hz",
           "epoch_wall_s")  # per epoch, what a grid stage keeps of a cell  # fmt: skip


def cells_path(root: str, experiment: str, scale: str, setting: str) -> str:
    return os.path.join(root, experiment, f"{scale}_{setting}_cells.json")


def read_cell_records(path: str, *, setting: str, settings: dict) -> dict:
    """``{cell name: {"w_ei", "w_ie", "seed", "epochs", "metrics": {name: array},
    "provenance": {...}}}`` of a cells file; {} when there is none; ValueError (one line) when
    it cannot be read or is malformed, is of another layout, holds no grid experiment, or was
    made with another setting or other ``settings`` of its cells (see the module doc)."""
    if not os.path.isfile(path):
        return {}
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"cell records {path} cannot be read: {err}") from None
    if not isinstance(data, dict) or data.get("kind") != KIND or data.get("layout") != LAYOUT:
        layout = data.get("layout") if isinstance(data, dict) else None
        raise ValueError(f"cell records {path} are of layout {layout!r}; this ei-sim reads "
                         f"{KIND} layout {LAYOUT} (written by another release)")  # fmt: skip
    if data.get("experiment") not in GRID_EXPERIMENTS or data.get("setting") != setting:
        raise ValueError(f"cell records {path} hold {data.get('experiment')} with setting "
                         f"{data.get('setting')}, not a grid experiment with "
                         f"{setting}")  # fmt: skip
    want = {k: str(v) for k, v in settings.items()}
    have = data.get("settings") if isinstance(data.get("settings"), dict) else {}
    diffs = sorted(k for k in set(want) | set(have) if want.get(k) != have.get(k))
    if diffs:
        raise ValueError(f"cell records {path} were made with other settings of their cells "
                         f"({', '.join(diffs[:4])} differ)")  # fmt: skip
    try:
        return {name: _parsed(cell) for name, cell in data.get("cells", {}).items()}
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise ValueError(f"cell records {path} are malformed: {type(err).__name__} "
                         f"{err}") from None  # fmt: skip


def _parsed(cell: dict) -> dict:
    """One cell's record with its metrics as float arrays, every one of :data:`METRICS`, one
    value per epoch (KeyError / ValueError otherwise)."""
    epochs = int(cell["epochs"])
    metrics = {k: _array(cell["metrics"][k]).astype(float) for k in METRICS}
    if epochs < 1 or any(v.shape != (epochs,) for v in metrics.values()):
        raise ValueError(f"a cell's metrics are not {epochs} values each")
    return {"w_ei": float(cell["w_ei"]), "w_ie": float(cell["w_ie"]), "seed": int(cell["seed"]),
            "epochs": epochs, "metrics": metrics, "provenance": dict(cell.get("provenance", {}))}


def write_cell_records(path: str, *, experiment: str, scale: str, setting: str,
                       settings: dict, cells: dict) -> None:  # fmt: skip
    """Add ``cells`` (``{name: {"w_ei", "w_ie", "seed", "metrics", "provenance"}}``) to the
    cells file at ``path``, keeping a recorded cell unless the new one has more epochs;
    written whole, then renamed into place, holding a lock on ``<path>.writers.lock`` (a
    second writer waits). ValueError (one line) when the file there cannot be used (it is
    then left as it is)."""
    from ei_sim.store.atomic import write_text
    from ei_sim.store.lock import waiting

    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with waiting(path + ".writers.lock"):  # not <path>.lock: the atomic write's own
        kept = read_cell_records(path, setting=setting, settings=settings)
        for name, cell in cells.items():
            epochs = len(cell["metrics"]["test_accuracy"])
            if name in kept and kept[name]["epochs"] >= epochs:
                continue
            kept[name] = {"w_ei": float(cell["w_ei"]), "w_ie": float(cell["w_ie"]),
                          "seed": int(cell["seed"]), "epochs": epochs,
                          "metrics": {k: np.asarray(cell["metrics"][k], float) for k in METRICS},
                          "provenance": dict(cell["provenance"])}  # fmt: skip
        data = {
            "kind": KIND, "layout": LAYOUT, "experiment": experiment, "scale": scale,
            "setting": setting, "settings": {k: str(v) for k, v in settings.items()},
            "cells": dict(sorted(kept.items())),
        }  # fmt: skip
        write_text(path, json.dumps(_jsonable(data), indent=1) + "\n")


def cell_provenance(run_dir: str | None) -> dict:
    """Where a cell's numbers come from: the commit and time its run file records (those of
    the process that wrote its last epoch: ``run_git_commit``, ``run_created_utc``), and the
    commit, machine and time of the process that records it."""
    from ei_sim.store.attrs import git_commit

    now = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    out = {"recorded_by_commit": git_commit(), "machine": machine(), "recorded_utc": now}
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
    first, then the other grid experiment's) and writes (``write_path``); ``settings``: the
    shared settings of its grid's cells (:func:`ei_sim.sweeps.grid.shared_settings`)."""

    experiment: str
    scale: str
    setting: str
    settings: dict
    read_paths: tuple = ()
    write_path: str | None = None

    @classmethod
    def under(cls, experiment, scale, setting, read_root=None, write_root=None, settings=None):
        """The records of ``experiment`` read from the grid experiments' files under
        ``read_root`` and written under ``write_root`` (None: not read, not written); its
        cells' ``settings`` are given, or bound later (:meth:`for_grid`)."""
        order = (experiment, *(e for e in GRID_EXPERIMENTS if e != experiment))
        reads = tuple(cells_path(read_root, e, scale, setting) for e in order) if read_root else ()
        write = cells_path(write_root, experiment, scale, setting) if write_root else None
        return cls(experiment, scale, setting, dict(settings or {}), reads, write)

    def for_grid(self, spec) -> CellRecords:
        """These records with the settings of the cells of ``spec`` (a
        :class:`ei_sim.sweeps.grid.GridSpec`)."""
        from ei_sim.sweeps.grid import shared_settings

        return dataclasses.replace(self, settings=shared_settings(spec.model, spec.train))

    def finished(self, epochs: int, names, say=print) -> dict:
        """The recorded cells among ``names`` with at least ``epochs`` epochs (their metrics
        cut to ``epochs``), each with ``source`` (the file it was read from); a file that
        cannot be used is said in one line and skipped."""
        out = {}
        for path in self.read_paths:
            try:
                cells = read_cell_records(path, setting=self.setting, settings=self.settings)
            except ValueError as err:
                say(f"cell records not used: {err}")
                continue
            for name in names:
                cell = cells.get(name)
                if name not in out and cell is not None and cell["epochs"] >= epochs:
                    metrics = {k: v[:epochs] for k, v in cell["metrics"].items()}
                    out[name] = {**cell, "metrics": metrics, "source": path}
        return out

    def add(self, cells: dict, say=print) -> None:
        """Record ``cells`` (see :func:`write_cell_records`) when this reproduction saves its
        results; nothing otherwise. A file there that cannot be used is said in one line and
        left as it is (the cells stay in the grid store)."""
        if self.write_path and cells:
            try:
                write_cell_records(self.write_path, experiment=self.experiment,
                                   scale=self.scale, setting=self.setting,
                                   settings=self.settings, cells=cells)  # fmt: skip
            except ValueError as err:
                say(f"cells not recorded: {err}")
