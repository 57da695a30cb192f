"""Bridge from the trainer's per-epoch reference trial to a video :class:`Snapshot`.

The reference trial is recorded by the monitors every run uses (:mod:`ei_sim.sim.monitors`:
spike events of both populations, the membrane trace of E cell 0); the snapshot stores the
spikes as event lists again (:func:`ei_sim.analysis.video.write_snapshot`).
"""

from __future__ import annotations

import numpy as np

from ei_sim.analysis.video import Snapshot, weight_histograms, write_snapshot


def snapshot_writer(fh, epoch, weights, metrics, ref, sample) -> None:
    """``on_epoch`` hook for :func:`ei_sim.training.spiking.train`: store this epoch's
    snapshot in ``fh``."""
    attrs = fh.attrs
    image, label = sample
    budget = attrs.get("train.budget", "off")
    blocks = {k: v for k, v in weights._asdict().items() if v is not None and k != "w_ee"}
    snapshot = Snapshot(
        epoch=epoch + 1, image=np.asarray(image), label=int(label),
        dt_ms=float(attrs["model.config.dt_ms"]), drop_ms=float(attrs["train.ref_drop_ms"]),
        spikes_e=ref.spikes_e, spikes_i=ref.spikes_i, v_trace_mV=ref.v_e_mV,
        v_th_mV=float(attrs["model.config.v_th_mV"]),
        v_reset_mV=float(attrs["model.config.v_reset_mV"]),
        weight_hists=weight_histograms(blocks),
        accuracy=np.asarray(metrics["test_accuracy"]),
        rate_e_Hz=np.asarray(metrics["test_rate_e_Hz"]),
        rate_i_Hz=np.asarray(metrics["test_rate_i_Hz"]),
        model=str(attrs["model.name"]), w_ei=_mean_setting(attrs, "w_ei"),
        w_ie=_mean_setting(attrs, "w_ie"), budget=str(budget),
    )  # fmt: skip
    write_snapshot(fh, snapshot)


def _mean_setting(attrs, block: str) -> float:
    explicit = attrs.get(f"model.{block}_mean", "none")
    if explicit != "none":
        return float(explicit)
    strength = float(attrs["model.ei_strength"])
    return strength if block == "w_ei" else strength * float(attrs["model.ei_ratio"])
