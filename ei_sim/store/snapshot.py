"""The snapshot layout: one epoch's (or one sweep step's) response to a fixed test trial.

After every epoch of ``ei-sim train --video`` the training hook stores one :class:`Snapshot`
in the run file (and a grid store copies its cells' snapshots); ``ei-sim video`` and the
exports read them back. HDF5 layout of one snapshot, group ``snapshots/epoch_NNNN`` of a run
file or of a grid cell:

- attributes: epoch, label, dt_ms, drop_ms, v_th_mV, v_reset_mV, model, w_ei, w_ie, budget,
  step_label, step_text
- datasets: image, v_trace_mV, accuracy, rate_e_Hz, rate_i_Hz
- ``spikes_e/``, ``spikes_i/``: event lists ``step`` and ``cell`` (int32), with attributes
  ``n_steps`` and ``n_cells`` (a raster is never stored as a dense float array)
- ``weights/<name>/counts`` and ``weights/<name>/bin_edges`` for w_in, w_out, w_ei, w_ie
- the attribute ``checksum`` (:mod:`ei_sim.store.checksum`): each snapshot is a part of its
  own, verified when it is read (a damaged one is refused in one line naming its epoch)
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np

from ei_sim.store.attrs import read_attrs, write_attrs
from ei_sim.store.checksum import Damaged, ensure_sound, seal

SNAPSHOT_GROUP = "snapshots"
WEIGHT_NAMES = ("w_in", "w_out", "w_ei", "w_ie")
NO_SNAPSHOTS = "run has no snapshots; train with --video to record them"
ATTR_FIELDS = ("epoch", "label", "dt_ms", "drop_ms", "v_th_mV", "v_reset_mV", "model", "w_ei",
               "w_ie", "budget", "step_label", "step_text")  # fmt: skip
ARRAY_FIELDS = ("image", "v_trace_mV", "accuracy", "rate_e_Hz", "rate_i_Hz")


def snapshot_name(epoch: int) -> str:
    """The path of epoch ``epoch``'s snapshot below a run file or a grid cell."""
    return f"{SNAPSHOT_GROUP}/epoch_{int(epoch):04d}"


@dataclasses.dataclass(frozen=True, eq=False)
class Snapshot:
    """One epoch's response to one fixed test trial; the first ``drop_ms`` are already dropped,
    so step k of the rasters and of the trace is at ``drop_ms + k * dt_ms`` in the trial."""

    epoch: int
    image: np.ndarray  # (784,) pixel intensities in [0, 1]
    label: int
    dt_ms: float
    drop_ms: float
    spikes_e: np.ndarray  # (T, N_E) bool
    spikes_i: np.ndarray  # (T, N_I) bool
    v_trace_mV: np.ndarray  # (T,) membrane potential of one E cell
    v_th_mV: float
    v_reset_mV: float
    weight_hists: dict  # name -> (counts (n_bins,), bin_edges (n_bins + 1,))
    accuracy: np.ndarray  # (epochs so far,) test accuracy as a fraction in [0, 1]
    rate_e_Hz: np.ndarray  # (epochs so far,) mean E rate on the test set
    rate_i_Hz: np.ndarray  # (epochs so far,) mean I rate on the test set
    model: str
    w_ei: float
    w_ie: float
    budget: str  # spike budget theta: "off" or a number such as "0.2"
    step_label: str = "epoch"  # what one frame is ("epoch", or "W_in scale" in sweeps)
    step_text: str = ""  # title text of this frame's step; default "<step_label> <epoch>"

    def __post_init__(self):
        for name in ("spikes_e", "spikes_i"):
            object.__setattr__(self, name, np.asarray(getattr(self, name), dtype=bool))
        n_steps = self.v_trace_mV.shape[0]
        if self.spikes_e.ndim != 2 or self.spikes_i.ndim != 2:
            raise ValueError("spikes_e and spikes_i must be (T, N) rasters")
        if not self.spikes_e.shape[0] == self.spikes_i.shape[0] == n_steps:
            raise ValueError("spikes_e, spikes_i and v_trace_mV must have the same length T")
        if not len(self.accuracy) == len(self.rate_e_Hz) == len(self.rate_i_Hz):
            raise ValueError("accuracy, rate_e_Hz and rate_i_Hz histories must have one length")
        if not self.dt_ms > 0:
            raise ValueError(f"dt_ms must be positive, got {self.dt_ms}")


def weight_histograms(weights: dict, n_bins: int = 40) -> dict:
    """Histograms name -> (counts, bin_edges) of weight arrays, for ``Snapshot.weight_hists``."""
    return {name: np.histogram(np.asarray(w).ravel(), bins=n_bins) for name, w in weights.items()}


def _write_events(group, spikes: np.ndarray) -> None:
    steps, cells = np.nonzero(spikes)
    for key, data in (("step", steps), ("cell", cells)):
        group.create_dataset(
            key, data=data.astype(np.int32), compression="gzip" if data.size else None
        )
    group.attrs["n_steps"], group.attrs["n_cells"] = spikes.shape


def _read_events(group) -> np.ndarray:
    spikes = np.zeros((int(group.attrs["n_steps"]), int(group.attrs["n_cells"])), dtype=bool)
    spikes[group["step"][()], group["cell"][()]] = True
    return spikes


def write_snapshot(h5_group, snapshot: Snapshot) -> None:
    """Store ``snapshot`` as ``snapshots/epoch_NNNN`` under ``h5_group`` (a file or a group);
    an existing snapshot of the same epoch is replaced."""
    name = snapshot_name(snapshot.epoch)
    if name in h5_group:
        del h5_group[name]
    group = h5_group.create_group(name)
    write_attrs(group, {key: getattr(snapshot, key) for key in ATTR_FIELDS})
    for key in ARRAY_FIELDS:
        group.create_dataset(key, data=np.asarray(getattr(snapshot, key)))
    _write_events(group.create_group("spikes_e"), snapshot.spikes_e)
    _write_events(group.create_group("spikes_i"), snapshot.spikes_i)
    weights = group.create_group("weights")
    for wname, (counts, edges) in snapshot.weight_hists.items():
        weights.create_dataset(f"{wname}/counts", data=np.asarray(counts))
        weights.create_dataset(f"{wname}/bin_edges", data=np.asarray(edges))
    seal(group)


def _read_snapshot(group) -> Snapshot:
    ensure_sound(group, group.file.filename)
    fields = read_attrs(group)
    fields = {key: fields[key] for key in ATTR_FIELDS if key in fields}
    fields.update({key: group[key][()] for key in ARRAY_FIELDS})
    fields["spikes_e"] = _read_events(group["spikes_e"])
    fields["spikes_i"] = _read_events(group["spikes_i"])
    hists = group["weights"]
    fields["weight_hists"] = {
        name: (hists[name]["counts"][()], hists[name]["bin_edges"][()]) for name in hists
    }
    return Snapshot(**fields)


def read_snapshots(h5_file_or_group) -> list[Snapshot]:
    """All snapshots under a file, a group or a path (opened read-only), sorted by epoch."""
    if isinstance(h5_file_or_group, str | os.PathLike):
        import h5py

        with h5py.File(h5_file_or_group, "r") as fh:
            return read_snapshots(fh)
    group = h5_file_or_group.get(SNAPSHOT_GROUP)
    if group is None or len(group) == 0:
        raise ValueError(NO_SNAPSHOTS)
    return sorted((_read_checked(group, name) for name in group), key=lambda s: s.epoch)


def _read_checked(group, name: str) -> Snapshot:
    """One snapshot; :class:`~ei_sim.store.checksum.Damaged` (one line) when it does not
    match its checksum or lacks a part (one written before checksums)."""
    try:
        return _read_snapshot(group[name])
    except Damaged:
        raise
    except (KeyError, OSError, RuntimeError, TypeError) as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise Damaged(group.file.filename, f"{group.name.lstrip('/')}/{name}",
                      f"unreadable: {reason}") from None
