"""Inference-time sweeps on a trained run: W_in scale, and W_EI / W_IE coupling scales, all
other weights frozen.

All scales of one coupling value are evaluated in one compiled program: the weights are
stacked along a leading axis and the run's one evaluator
(:func:`ei_sim.training.evaluate.evaluate_stacked`,
``jax.vmap`` over that axis) sees the same test trials (fixed encoder seed and initial
state) for every scale, as every evaluation of the run does.

The result is written as a sweep file (``kind = "scale_sweep"`` or ``"coupling_sweep"``;
the layout and :func:`write_sweep` are in :mod:`ei_sim.sweeps.store`). Its figure is drawn by
:func:`ei_sim.analysis.sweep_plots.plot_sweep`: sweeps produces numbers and stores, never figures.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ei_sim.sweeps.store import write_sweep  # noqa: F401  (the sweep layout; kept importable here)
from ei_sim.training.evaluate import evaluate_stacked
from ei_sim.training.stored import load_stored, scale_weights

CANONICAL_SCALES = tuple(
    [round(0.05 * k, 2) for k in range(1, 15)]
    + [0.80, 0.90, 1.00, 1.15, 1.30, 1.50, 1.75, 2.00, 2.50, 3.00]
)  # the 24 W_in scales of a sweep: 0.05 to 0.70 in steps of 0.05, then 0.80 to 3.00


def sweep_scales(
    run_dir: str,
    scales=CANONICAL_SCALES,
    coupling_target=None,
    coupling_scales=(1.0,),
    batch_size: int = 400,
    progress: bool = True,
    model=None,
) -> dict:
    """Accuracy and E/I rates (C, S) over W_in scales, for each coupling scale: every scale of
    a coupling value evaluated at once by the run's evaluator
    (:func:`ei_sim.training.evaluate.evaluate_stacked`, the trials of every evaluation of the
    run). ``model``: evaluate the run's weights in this network instead of the stored one
    (e.g. the stored network with another tau_GABA: same shapes, other constants)."""
    from tqdm.auto import tqdm

    stored, split, weights, attrs = load_stored(run_dir)
    if model is None:
        model = stored
    elif model.config.n_e != stored.config.n_e or model.config.n_i != stored.config.n_i:
        raise ValueError("the network of a sweep must keep the run's sizes (n_e, n_i)")
    seed = int(attrs["train.seed"])
    shape = (len(coupling_scales), len(scales))
    acc, rate_e, rate_i = np.zeros(shape), np.zeros(shape), np.zeros(shape)
    gamma, significance = np.zeros(shape), np.zeros(shape)
    n_batches = -(-len(split.y_test) // batch_size)
    desc = "scale sweep" if coupling_target is None else f"{coupling_target} coupling sweep"
    bar = tqdm(total=shape[0] * n_batches, desc=desc, unit="batch", disable=not progress)
    for ci, c in enumerate(coupling_scales):
        coupling = {"w_ei": 1.0, "w_ie": 1.0}
        if coupling_target is not None:
            coupling[coupling_target] = c
        stacked = jax.tree.map(
            lambda *xs: jnp.stack(xs),
            *[scale_weights(weights, s, coupling["w_ei"], coupling["w_ie"]) for s in scales],
        )
        evaluations = evaluate_stacked(stacked, model, split.x_test, split.y_test, seed,
                                       batch_size, on_batch=lambda: bar.update(1))  # fmt: skip
        acc[ci] = [ev.accuracy for ev in evaluations]
        rate_e[ci] = [ev.rate_e_Hz for ev in evaluations]
        rate_i[ci] = [ev.rate_i_Hz for ev in evaluations]
        gamma[ci] = [ev.gamma_peak_Hz for ev in evaluations]
        significance[ci] = [ev.gamma_significance for ev in evaluations]
    bar.close()
    return {"scales": np.asarray(scales, float),
            "coupling_scales": np.asarray(coupling_scales, float),
            "accuracy": acc, "rate_e_Hz": rate_e, "rate_i_Hz": rate_i,
            "gamma_peak_Hz": gamma, "gamma_significance": significance,
            "coupling_target": coupling_target or "none", "run_dir": run_dir}  # fmt: skip
