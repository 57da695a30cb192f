"""The run file of a training run: one HDF5 file per run directory, rewritten atomically.

Layout of ``RUN_DIR/run.h5``:

| path | content |
|---|---|
| ``/`` attributes | ``model.*``, ``train.*`` (the full configuration), ``provenance.*``, ``epochs_done``, ``best_epoch``, ``best_accuracy``, ``status`` ("running", "complete", or "failed" with ``failure``, the likely cause, when the weights became non-finite) |
| ``/metrics/<name>`` | one value per completed epoch (see :data:`METRICS`) |
| ``/weights/best/<block>``, ``/weights/last/<block>`` | all weight blocks (uS per spike) |
| ``/optimizer/leaf_NNNN`` | the optimiser state's leaves, for ``--resume`` |
| ``/snapshots/epoch_NNNN`` | per-epoch probe of the reference trial (``--video``) |
"""

from __future__ import annotations

import os

import h5py
import jax
import numpy as np

from ei_sim.engine import Weights
from ei_sim.storage import atomic_h5, open_readable, read_attrs, write_attrs

RUN_FILE = "run.h5"
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
    "model.config.propagation",
    "model.config.cell_kernel",
    "model.config.event_fraction",
)

# Attributes added after files were written: a file without one holds this value.
LEGACY_DEFAULTS = {"model.setting": "canonical"}


def run_path(run_dir: str) -> str:
    return os.path.join(run_dir, RUN_FILE)


def save_run(run_dir, attrs, metrics, best, last, opt_state, status, snapshot_writer=None):
    """Write the whole run file anew (atomically): the old file stays valid until the rename."""
    path = run_path(run_dir)
    with atomic_h5(path) as fh:
        write_attrs(fh, attrs)
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
        if "snapshots" in old:
            old.copy(old["snapshots"], fh, "snapshots")


def open_run(run_dir: str) -> h5py.File:
    """Open a run file read-only; ValueError (one line) when it is missing or unreadable."""
    path = run_dir if run_dir.endswith(".h5") else run_path(run_dir)
    if not os.path.exists(path):
        raise ValueError(
            f"{run_dir} is not an ei-sim run (no {RUN_FILE}); train one with ei-sim train"
        )
    fh = open_readable(path, "train one with ei-sim train")
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
