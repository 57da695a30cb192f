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

The root carries the checksum of the file as of its last completed epoch (its attributes,
metrics, weights and optimiser state; each snapshot has its own: :mod:`ei_sim.store.checksum`),
verified by :func:`load_run`: a damaged run file, or one without a group that reading needs,
is refused in one line naming it. Whoever writes a run holds its lock
(:func:`holding_run`, ``RUN_DIR/run.h5.lock``), so two trainings never write one run.

A run file without ``kind`` (written before the attribute existed) is recognised by its
``/weights`` group and ``model.*`` attributes and read as this layout.

JAX is imported by the functions that save or load weights and optimiser states, so that a
process that only compares settings (a grid's main process) starts without it.

The run layout stores and loads the network configuration and weights; the model of a run
comes back from its attributes through :func:`ei_sim.sim.model.model_from_attrs`.
"""

from __future__ import annotations

import contextlib
import os

import h5py
import numpy as np

from ei_sim.store.atomic import atomic_h5
from ei_sim.store.attrs import read_attrs, write_attrs
from ei_sim.store.checksum import ATTR as CHECKSUM
from ei_sim.store.checksum import ensure_sound, seal
from ei_sim.store.kinds import missing_items, open_kind
from ei_sim.store.lock import exclusive
from ei_sim.store.paths import RUN_FILE, run_path
from ei_sim.store.snapshot import SNAPSHOT_GROUP

KIND = "run"
METRICS = (
    "train_loss", "train_cross_entropy", "train_budget_penalty", "train_accuracy",
    "test_accuracy", "test_rate_e_Hz", "test_rate_i_Hz", "ref_rate_e_Hz", "ref_rate_i_Hz",
    "gamma_peak_Hz", "gamma_significance", "skipped_steps", "epoch_wall_s",
    "gamma_rhythmic", "gamma_p_value", "gamma_depth", "ref_gamma_peak_Hz",
)  # fmt: skip
# The gamma verdict of the reference trial (ei_sim.sim.spectrum.gamma_verdict) per epoch:
# gamma_rhythmic 1 (rhythm) or 0 (no rhythm, a trial too short to tell, or silence); its p
# (NaN when too short or silent), modulation depth and the peak it tested (ref_gamma_peak_Hz,
# NaN when silent): ei_sim.sim.spectrum.verdict_word turns them into words. Files written
# before these metrics existed read them as NaN: "no verdict stored".
VERDICT_METRICS = ("gamma_rhythmic", "gamma_p_value", "gamma_depth", "ref_gamma_peak_Hz")
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
LEGACY_DEFAULTS = {"model.setting": "canonical", "model.config.out_reset_gradient": "detached"}
# What reading a run needs: the weight groups and the blocks every network has
NEEDED = ("metrics", "weights/best", "weights/last", "weights/best/w_in", "weights/best/w_out",
          "weights/last/w_in", "weights/last/w_out")  # fmt: skip
OPTIMIZER = "optimizer"


def _made_dirs(run_dir: str) -> list[str]:
    """The folders ``os.makedirs(run_dir)`` will create, deepest first."""
    made, path = [], os.path.abspath(run_dir)
    while not os.path.exists(path) and os.path.dirname(path) != path:
        made.append(path)
        path = os.path.dirname(path)
    return made


@contextlib.contextmanager
def holding_run(run_dir: str):
    """Make ``run_dir`` (when missing) and hold the lock on its run file
    (:func:`ei_sim.store.lock.exclusive`; :class:`~ei_sim.store.lock.Busy` at once when
    another process writes the run). On exit the lock is released and the folders this call
    made are removed again if they stayed empty."""
    made = _made_dirs(run_dir)
    try:
        os.makedirs(run_dir, exist_ok=True)
    except OSError as err:
        raise ValueError(f"cannot create the run directory {run_dir}: {err.strerror}") from None
    try:
        with exclusive(run_path(run_dir)):
            yield
    finally:
        for folder in made:  # deepest first; only those still empty
            try:
                os.rmdir(folder)
            except OSError:
                break


def save_run(run_dir, attrs, metrics, best, last, opt_state, status, snapshot_writer=None):
    """Write the whole run file anew (atomically): the old file stays valid until the rename.
    The old file's snapshots are kept; ``snapshot_writer(fh)`` may add this epoch's."""
    import jax

    path = run_path(run_dir)
    with atomic_h5(path, kind=KIND, seal=True) as fh:
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
    for group in fh[SNAPSHOT_GROUP].values() if SNAPSHOT_GROUP in fh else ():
        if CHECKSUM not in group.attrs:  # written before checksums: a part of its own now
            seal(group)


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


def check_run_file(fh, path: str, optimizer: bool = False) -> None:
    """ValueError (one line) naming what a run file lacks of what reading it needs (and the
    optimiser state with ``optimizer``); :class:`~ei_sim.store.checksum.Damaged` when it does
    not match its checksum."""
    lacking = missing_items(fh, NEEDED)
    if lacking:
        raise ValueError(f"{path} is a training run without {lacking[0]} (incomplete or "
                         "damaged); it cannot be read")  # fmt: skip
    if optimizer and OPTIMIZER not in fh:
        raise ValueError(f"{path} is a training run without {OPTIMIZER} (the optimiser state "
                         "needed to continue training)")  # fmt: skip
    ensure_sound(fh, path, "its last epoch")


def load_run(run_dir: str, opt_template=None):
    """Return (attrs, metrics, best Weights, last Weights, optimiser state or None).
    ValueError (one line) for a run without what this needs (the optimiser state too when
    ``opt_template`` is given) or one that does not match its checksum."""
    import jax

    needs_optimizer = opt_template is not None and jax.tree.structure(opt_template).num_leaves > 0
    with open_run(run_dir) as fh:
        check_run_file(fh, fh.filename, optimizer=needs_optimizer)
        attrs = read_attrs(fh)
        n = int(attrs.get("epochs_done", 0))
        metrics = {
            m: list(np.asarray(fh[f"metrics/{m}"])[:n]) if f"metrics/{m}" in fh else [np.nan] * n
            for m in METRICS
        }  # a metric added after the file was written reads as NaN
        best, last = (_read_weights(fh[f"weights/{label}"]) for label in ("best", "last"))
        opt_state = None
        if opt_template is not None:
            group = fh[OPTIMIZER] if OPTIMIZER in fh else {}
            leaves = [np.asarray(group[k]) for k in sorted(group)]
            treedef = jax.tree.structure(opt_template)
            if treedef.num_leaves != len(leaves):
                raise ValueError(f"{run_dir}: optimiser state does not match this configuration")
            opt_state = jax.tree.unflatten(treedef, [jax.numpy.asarray(x) for x in leaves])
    return attrs, metrics, best, last, opt_state


def _read_weights(group):
    """The group's arrays as :class:`ei_sim.sim.engine.Weights` of JAX arrays."""
    import jax

    from ei_sim.sim.engine import Weights

    return Weights(**{name: jax.numpy.asarray(np.asarray(group[name])) for name in group})


def config_differences(stored: dict, requested: dict) -> list[str]:
    """Names of configuration attributes that differ (ignoring provenance and progress)."""
    stored = {**{k: v for k, v in LEGACY_DEFAULTS.items() if k in requested}, **stored}
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
