"""Train several grid cells in one compiled program: ``jax.vmap`` over the coupling weights.

Cells that share a seed see the same batches, input spikes and initial states; only their
W_EI / W_IE (and so their trained weights) differ. Stacking them along a leading axis and
vmapping the training step turns C small programs into one, which on a laptop removes most
of the per-step overhead of tiny networks. The epochs, evaluation and bookkeeping are the
trainer's own (:func:`ei_sim.train.train_epoch`, :func:`ei_sim.evaluate.evaluate`).

Unlike the Dask executor, a group of vmapped cells has no per-epoch checkpoint: a killed
group restarts from its first epoch (finished groups are kept in the store).
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np

from ei_sim.data import load_pool, sample_and_split
from ei_sim.evaluate import evaluate, reference_trial
from ei_sim.objective import assemble, make_train_step
from ei_sim.optim import adam_with_dale
from ei_sim.runstore import METRICS
from ei_sim.train import (
    epoch_row,
    is_new_best,
    split_weights,
    tier_config,
    tier_model,
    train_epoch,
)


def _stack(trees):
    return jax.tree.map(lambda *xs: jnp.stack(xs), *trees)


def _unstack(tree, i):
    return jax.tree.map(lambda x: x[i], tree)


def train_cells_vmapped(spec, cells, progress: bool = False) -> list[dict]:
    """Train ``cells`` = [(w_ei, w_ie)] with one seed together; one result per cell, in the
    form of :func:`sweeps.grid.train_cell` (summary, metrics, weights)."""
    from models import get_model

    seed = cells[0][2]
    models = [
        tier_model(
            get_model(spec.model, w_ei_mean=a, w_ie_mean=b, **spec.model_changes),
            spec.tier, **spec.size,
        )
        for a, b, _ in cells
    ]  # fmt: skip
    model = models[0]  # same shapes and config for all cells
    cfg = tier_config(spec.tier, **{**spec.train, "seed": seed})
    split = sample_and_split(load_pool(cfg.data_source), cfg.n_samples, cfg.test_fraction,
                             cfg.data_seed)  # fmt: skip
    key = jax.random.PRNGKey(cfg.seed)
    parts = [split_weights(m.init_weights(jax.random.fold_in(key, 0)), cfg.trained) for m in models]
    trainable, frozen = _stack([p[0] for p in parts]), _stack([p[1] for p in parts])
    optimizer = adam_with_dale(cfg.learning_rate, cfg.clip_norm)
    opt_state = jax.vmap(optimizer.init)(trainable)
    step = make_train_step(optimizer, model.config, cfg.budget, cfg.budget_strength,
                           cfg.checkpoint_every)  # fmt: skip
    vstep = jax.jit(jax.vmap(step, in_axes=(0, 0, 0, None, None, None)))
    metrics = [{m: [] for m in METRICS} for _ in cells]
    best = [None] * len(cells)
    for epoch in range(cfg.epochs):
        t0 = time.perf_counter()
        trainable, opt_state, stats = train_epoch(vstep, trainable, opt_state, frozen, model,
                                                  cfg, split, epoch, key, progress)  # fmt: skip
        for c in range(len(cells)):
            weights = assemble(_unstack(trainable, c), _unstack(frozen, c))
            ev = evaluate(weights, models[c], split.x_test, split.y_test, cfg.seed)
            ref = reference_trial(weights, models[c], split.x_test[0], cfg.seed, cfg.ref_drop_ms)
            own = {k: float(np.asarray(v)[c]) for k, v in stats.items()}
            row = epoch_row(own, ev, ref, t0)
            for name in METRICS:
                metrics[c][name].append(row[name])
            if is_new_best(metrics[c]["test_accuracy"]):
                best[c] = weights
    return [_cell_result(cells[c], metrics[c], best[c]) for c in range(len(cells))]


def _cell_result(cell, metrics, best) -> dict:
    acc = np.asarray(metrics["test_accuracy"])
    b = int(np.argmax(acc))
    summary = {
        "w_ei": cell[0], "w_ie": cell[1], "seed": cell[2], "best_accuracy": float(acc[b]),
        "final_accuracy": float(acc[-1]), "best_epoch": b + 1,
        "rate_e_Hz": metrics["test_rate_e_Hz"][b], "rate_i_Hz": metrics["test_rate_i_Hz"][b],
        "gamma_peak_Hz": metrics["gamma_peak_Hz"][b], "run_dir": "none",
    }  # fmt: skip
    weights = {k: np.asarray(v) for k, v in best._asdict().items() if v is not None}
    return {"summary": summary, "metrics": {k: np.asarray(v) for k, v in metrics.items()},
            "weights": weights}  # fmt: skip
