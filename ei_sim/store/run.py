"""The run layout: one HDF5 file per training run (``RUN_DIR/run.h5``), rewritten atomically.

- ``/`` attributes: ``kind = "run"``, ``schema_version``, ``model.*`` and ``train.*`` (the
  full configuration), ``provenance.*``, ``epochs_done``, ``best_epoch``, ``best_accuracy``,
  ``status`` ("running", "complete", or "failed" with ``failure``, the likely cause, when
  the weights became non-finite);
- ``/metrics/<name>``: one value per completed epoch (see :data:`METRICS`);
- ``/weights/best/<block>``, ``/weights/last/<block>``: all weight blocks (uS per spike);
- ``/optimizer/leaf_NNNN``: the optimiser state's leaves, for ``--resume``;
- ``/snapshots/epoch_NNNN``: per-epoch probe of the reference trial (``--video``; the
  layout of :mod:`ei_sim.store.snapshot`).

A run file without ``kind`` (written before the attribute existed) is recognised by its
``/weights`` group and ``model.*`` attributes and read as this layout.

The run layout stores and loads the network configuration and weights; the model of a run
comes back from its attributes through :func:`ei_sim.sim.model.model_from_attrs`.
"""

from __future__ import annotations

import os

import h5py
import jax
import numpy as np

from ei_sim.sim.engine import Weights
from ei_sim.store.atomic import atomic_h5
from ei_sim.store.attrs import read_attrs, write_attrs
from ei_sim.store.kinds import open_kind
from ei_sim.store.paths import RUN_FILE, run_path
from ei_sim.store.snapshot import SNAPSHOT_GROUP

KIND = "run"
METRICS = (
    "train_loss", "train_cross_entropy", "train_budget_penalty", "train_accuracy",
    "test_accuracy", "test_rate_e_Hz", "test_rate_i_Hz", "ref_rate_e_Hz", "ref_rate_i_Hz",
    "gamma_peak_Hz", "gamma_significance", "skipped_steps", "epoch_wall_s",
)  # fmt: skip
# Attributes that may differ between a run and its resumption: the epoch count and how spikes
# are propagated and cells updated (implementation choices with the same results up to float
# rounding; event_fraction is legacy).
RESUMABLE_CHANGES = (
    "train.epochs",
    "train.devices",
    "train.checkpoint_every",  # memory against time only: the same numbers
    "model.config.propagation",
    "model.config.cell_kernel",
    "model.config.event_fraction",
)
# Attributes that say what a file is rather than how the run was configured.
FILE_ATTRS = ("kind", "schema_version")

# Attributes added after files were written: a file without one holds this value.
LEGACY_DEFAULTS = {"model.setting": "canonical"}


def save_run(run_dir, attrs, metrics, best, last, opt_state, status, snapshot_writer=None):
    """Write the whole run file anew (atomically): the old file stays valid until the rename.
    The old file's snapshots are kept; ``snapshot_writer(fh)`` may add this epoch's."""
    path = run_path(run_dir)
    with atomic_h5(path, kind=KIND) as fh:
        write_attrs(fh, {k: v for k, v in attrs.items() if k not in FILE_ATTRS})
        fh.attrs["status"] = status
        for name in METRICS:
            fh.create_dataset(f"metrics/{name}", data=np.asarray(metrics[name], np.float64))
        for label, weights in (("best", best), ("last", last)):
            for name, value in weights._asdict().items():
                if value is not None:
                    fh.create_dataset(f"weights/{label}/{name}", data=np.asarray(value))
        for k, leaf in enumerate(jax.tree.leaves(opt_state)):
            fh.create_dataset(f"optimizer/leaf_{k:04d}", data=np.asarray(leaf))
        _copy_snapshots(path, fh)
        if snapshot_writer is not None:
            snapshot_writer(fh)


def _copy_snapshots(old_path: str, fh) -> None:
    if not os.path.exists(old_path):
        return
    with h5py.File(old_path, "r") as old:
        if SNAPSHOT_GROUP in old:
            old.copy(old[SNAPSHOT_GROUP], fh, SNAPSHOT_GROUP)


def open_run(run_dir: str) -> h5py.File:
    """Open a run file (or the one of a run directory) read-only; ValueError (one line) when
    it is missing, unreadable or of another kind."""
    path = run_dir if run_dir.endswith(".h5") else run_path(run_dir)
    if not os.path.exists(path):
        raise ValueError(
            f"{run_dir} is not an ei-sim run (no {RUN_FILE}); train one with ei-sim train"
        )
    fh = open_kind(path, KIND, missing="train one with ei-sim train")
    if "weights" not in fh or "model.name" not in fh.attrs:
        fh.close()
        raise ValueError(f"{path} is not an ei-sim training run (no weights/model attributes)")
    return fh


def load_run(run_dir: str, opt_template=None):
    """Return (attrs, metrics, best Weights, last Weights, optimiser state or None)."""
    with open_run(run_dir) as fh:
        attrs = read_attrs(fh)
        n = int(attrs.get("epochs_done", 0))
        metrics = {
            m: list(np.asarray(fh[f"metrics/{m}"])[:n]) if f"metrics/{m}" in fh else [np.nan] * n
            for m in METRICS
        }  # a metric added after the file was written reads as NaN
        best, last = (_read_weights(fh[f"weights/{label}"]) for label in ("best", "last"))
        opt_state = None
        if opt_template is not None and "optimizer" in fh:
            group = fh["optimizer"]
            leaves = [np.asarray(group[k]) for k in sorted(group)]
            treedef = jax.tree.structure(opt_template)
            if treedef.num_leaves != len(leaves):
                raise ValueError(f"{run_dir}: optimiser state does not match this configuration")
            opt_state = jax.tree.unflatten(treedef, [jax.numpy.asarray(x) for x in leaves])
    return attrs, metrics, best, last, opt_state


def _read_weights(group) -> Weights:
    return Weights(**{name: jax.numpy.asarray(np.asarray(group[name])) for name in group})


def config_differences(stored: dict, requested: dict) -> list[str]:
    """Names of configuration attributes that differ (ignoring provenance and progress)."""
    stored = {**LEGACY_DEFAULTS, **stored}
    keys = {k for k in set(stored) | set(requested) if k.startswith(("model.", "train."))}
    diffs = []
    for key in sorted(keys - set(RESUMABLE_CHANGES)):
        a, b = stored.get(key), requested.get(key)
        if isinstance(a, float | int) and isinstance(b, float | int):
            if not np.isclose(a, b, rtol=1e-9, atol=0):
                diffs.append(key)
        elif str(a) != str(b):
            diffs.append(key)
    return diffs
