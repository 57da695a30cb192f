"""The video of an inference-time W_in scale sweep (``ei-sim sweep scale --video``).

One frame per W_in scale: the reference trial (test sample 0 of the run's split, the run's
seed, the first ``train.ref_drop_ms`` dropped) with all weights at that scale, beside the
accuracy and test-set rates over the scales so far (the sweep's first coupling value).
"""

from __future__ import annotations

from ei_sim.analysis.video.encode import check_video_args
from ei_sim.analysis.video.render import render_snapshots
from ei_sim.store.snapshot import Snapshot, weight_histograms


def scale_video(run_dir: str, result: dict, out_path: str, fps: float = 2.0, fmt: str = "mp4"):
    """Render the sweep ``result`` of :func:`ei_sim.sweeps.inference.sweep_scales` on the run in
    ``run_dir`` to ``out_path``; returns a :class:`~ei_sim.analysis.video.encode.VideoInfo`."""
    from ei_sim.training.evaluate import reference_trial
    from ei_sim.training.stored import load_stored, scale_weights

    check_video_args(out_path, fps, fmt)
    model, split, weights, attrs = load_stored(run_dir)
    seed, drop = int(attrs["train.seed"]), float(attrs["train.ref_drop_ms"])
    c = model.config
    snapshots = []
    for k, s in enumerate(result["scales"]):
        scaled = scale_weights(weights, float(s))
        ref = reference_trial(scaled, model, split.x_test[0], seed, drop)
        blocks = {n: v for n, v in scaled._asdict().items() if v is not None}
        snapshots.append(Snapshot(
            epoch=k + 1, image=split.x_test[0], label=int(split.y_test[0]), dt_ms=c.dt_ms,
            drop_ms=drop, spikes_e=ref.spikes_e, spikes_i=ref.spikes_i, v_trace_mV=ref.v_e_mV,
            v_th_mV=c.v_th_mV, v_reset_mV=c.v_reset_mV, weight_hists=weight_histograms(blocks),
            accuracy=result["accuracy"][0, : k + 1], rate_e_Hz=result["rate_e_Hz"][0, : k + 1],
            rate_i_Hz=result["rate_i_Hz"][0, : k + 1], model=model.name, w_ei=model.w_ei,
            w_ie=model.w_ie, budget=str(attrs.get("train.budget", "off")),
            step_label="W_in scale step", step_text=f"W_in x {float(s):g}",
        ))  # fmt: skip
    return render_snapshots(snapshots, out_path, fps, fmt)
