"""Rebuild a stored training run (model, split, weights) and evaluate it, optionally scaled.

The model comes back from the run's ``model.*`` attributes
(:func:`ei_sim.sim.model.model_from_attrs`).
"""

from __future__ import annotations

import numpy as np

from ei_sim.data.mnist import load_pool, sample_and_split
from ei_sim.sim.model import model_from_attrs
from ei_sim.store.run import load_run
from ei_sim.training.evaluate import evaluate, reference_trial

__all__ = ["evaluate_run", "load_stored", "scale_weights"]


def load_stored(run_dir: str, which: str = "best"):
    """(model, split, weights, attrs) of a run directory; ValueError for a run marked failed
    or whose weights are not finite (nothing can be evaluated with them)."""
    attrs, _, best, last, _ = load_run(run_dir)
    if attrs.get("status") == "failed":
        reason = attrs.get("failure", "non-finite weights")
        raise ValueError(f"{run_dir} is a failed run ({reason}); train it again")
    weights = best if which == "best" else last
    bad = [k for k, w in weights._asdict().items() if w is not None and not np.isfinite(w).all()]
    if bad:
        raise ValueError(f"{run_dir}: the {which} weights {', '.join(bad)} are not finite; "
                         "train the run again (e.g. with a lower --lr)")  # fmt: skip
    model = model_from_attrs(attrs)
    split = sample_and_split(
        load_pool(attrs["train.data_source"]), int(attrs["train.n_samples"]),
        float(attrs["train.test_fraction"]), int(attrs["train.data_seed"]),
    )  # fmt: skip
    return model, split, weights, attrs


def scale_weights(weights, w_in=1.0, w_ei=1.0, w_ie=1.0):
    """Multiply W_in, W_EI and W_IE (inference-time sweeps); other blocks unchanged."""
    for name, s in (("w_in", w_in), ("w_ei", w_ei), ("w_ie", w_ie)):
        if not (np.isfinite(s) and s >= 0):
            raise ValueError(f"{name} scale must be a finite number >= 0, got {s}")
    return weights._replace(
        w_in=weights.w_in * w_in,
        w_ei=None if weights.w_ei is None else weights.w_ei * w_ei,
        w_ie=None if weights.w_ie is None else weights.w_ie * w_ie,
    )


def evaluate_run(
    run_dir, w_in_scale=1.0, w_ei_scale=1.0, w_ie_scale=1.0, which="best", devices: int = 1
):
    """Evaluate a run's stored weights on its test split (``devices``: as in
    :func:`ei_sim.training.evaluate.evaluate`)."""
    return evaluate_run_and_reference(run_dir, w_in_scale, w_ei_scale, w_ie_scale, which,
                                      devices, reference=False)[0]  # fmt: skip


def evaluate_run_and_reference(
    run_dir, w_in_scale=1.0, w_ei_scale=1.0, w_ie_scale=1.0, which="best", devices: int = 1,
    reference: bool = True,
):  # fmt: skip
    """``(Evaluation, ReferenceTrial or None)``: :func:`evaluate_run` and, with ``reference``,
    the run's reference trial under the same weights (its rates, rasters and gamma verdict,
    :func:`ei_sim.training.evaluate.reference_trial`)."""
    model, split, weights, attrs = load_stored(run_dir, which)
    scaled = scale_weights(weights, w_in_scale, w_ei_scale, w_ie_scale)
    seed = int(attrs["train.seed"])
    ev = evaluate(scaled, model, split.x_test, split.y_test, seed, devices=devices)
    if not reference:
        return ev, None
    drop_ms = float(attrs.get("train.ref_drop_ms", 20.0))
    return ev, reference_trial(scaled, model, split.x_test[0], seed, drop_ms)
