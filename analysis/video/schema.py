"""The video snapshot: one epoch's (or one sweep step's) response to a fixed test trial.

After every epoch the training loop stores one :class:`Snapshot` in the run's HDF5 file
(:func:`analysis.video.store.write_snapshot`); :mod:`analysis.video.render` draws one frame
per snapshot and encodes the frames as a video.

HDF5 layout of one snapshot, group ``snapshots/epoch_NNNN``:

- attributes: epoch, label, dt_ms, drop_ms, v_th_mV, v_reset_mV, model, w_ei, w_ie, budget,
  step_label, step_text
- datasets: image, v_trace_mV, accuracy, rate_e_Hz, rate_i_Hz
- ``spikes_e/``, ``spikes_i/``: event lists ``step`` and ``cell`` (int32), with attributes
  ``n_steps`` and ``n_cells`` (a raster is never stored as a dense float array)
- ``weights/<name>/counts`` and ``weights/<name>/bin_edges`` for w_in, w_out, w_ei, w_ie
"""

from __future__ import annotations

import dataclasses

import numpy as np

SNAPSHOT_GROUP = "snapshots"
WEIGHT_NAMES = ("w_in", "w_out", "w_ei", "w_ie")
NO_SNAPSHOTS = "run has no snapshots; train with --video to record them"
ATTR_FIELDS = ("epoch", "label", "dt_ms", "drop_ms", "v_th_mV", "v_reset_mV", "model", "w_ei",
               "w_ie", "budget", "step_label", "step_text")  # fmt: skip
ARRAY_FIELDS = ("image", "v_trace_mV", "accuracy", "rate_e_Hz", "rate_i_Hz")


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
