"""Evaluation of stored or in-training weights on the test split, and the reference trial.

Every evaluation of a run sees the same input spikes (a fixed encoder seed) and the same
initial state, so epochs and weight scalings are compared on identical trials.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import numpy as np

from ei_sim.data.encoding import encode
from ei_sim.sim.engine import Weights
from ei_sim.sim.parallel import batch_mesh, replicate
from ei_sim.sim.spectrum import gamma_peak, gamma_verdict_raster
from ei_sim.training.objective import make_eval_fn

EVAL_STREAM = 1_000_003  # fold-in constant separating evaluation draws from training draws
REF_STREAM = 1_000_033


class Evaluation(NamedTuple):
    accuracy: float
    rate_e_Hz: float
    rate_i_Hz: float
    gamma_peak_Hz: float  # the lab's measure (ei_sim.sim.spectrum); NaN only when silent
    gamma_significance: float  # peak power / band median (NaN when silent)


class ReferenceTrial(NamedTuple):
    """Test sample 0 under a fixed seed, the first ``drop_ms`` removed.

    ``verdict``: the gamma verdict (:func:`ei_sim.sim.spectrum.gamma_verdict`) of its E
    spikes. The per-epoch verdict is taken here because the test-set evaluation keeps only
    the E population rate of each trial (no cell's spikes, which the surrogates need), while
    this trial is recorded cell by cell anyway (for the snapshots and videos): the verdict
    costs no simulation, and it is about the very trial the videos and reports show."""

    rate_e_Hz: float
    rate_i_Hz: float
    spikes_e: np.ndarray  # (T', N_E) bool
    spikes_i: np.ndarray  # (T', N_I) bool
    v_e_mV: np.ndarray  # (T',) membrane potential of E cell 0
    verdict: object = None  # ei_sim.sim.spectrum.Verdict


_EVAL_FNS: dict = {}


def _eval_fn(config, batch: int, devices: int, stacked: bool = False):
    mesh = batch_mesh(batch, devices) if devices != 1 and not stacked else None
    key = (config, mesh, stacked)
    if key not in _EVAL_FNS:
        fn = make_eval_fn(config, mesh)
        _EVAL_FNS[key] = jax.jit(jax.vmap(fn, in_axes=(0, None, None))) if stacked else fn
    return _EVAL_FNS[key], mesh


def eval_trials(model, images, labels, seed: int, batch_size: int = 400):
    """The evaluation trials of a run, batch by batch: ``(labels, events, state0)`` with the
    input spikes drawn from ``(seed, EVAL_STREAM, start)`` and the initial state from
    ``fold_in(PRNGKey(seed), EVAL_STREAM + start)`` (``start``: the batch's first test index),
    so every evaluation of a run, whatever its weights, sees identical trials."""
    config = model.config
    for start in range(0, len(labels), batch_size):
        x, y = images[start : start + batch_size], labels[start : start + batch_size]
        events = encode(x, config, (seed, EVAL_STREAM, start))
        state0 = model.init_state(
            jax.random.fold_in(jax.random.PRNGKey(seed), EVAL_STREAM + start), len(y)
        )
        yield y, events, state0


def evaluate(
    weights: Weights, model, images, labels, seed: int, batch_size: int = 400, devices: int = 1,
    trials=None,
):  # fmt: skip
    """Accuracy, mean E/I rates (Hz) and the gamma peak of E activity over the test set.

    ``devices``: split each batch over this many devices (0: all that divide it); the result
    does not depend on it beyond float rounding. ``trials``: the list of
    ``eval_trials(model, images, labels, seed, batch_size)``, when the caller keeps it between
    evaluations (a training run evaluates the same trials every epoch)."""
    config = model.config
    correct, count_e, count_i, activity = 0, [], [], []
    if trials is None:
        trials = eval_trials(model, images, labels, seed, batch_size)
    for y, events, state0 in trials:
        fn, mesh = _eval_fn(config, len(y), devices)
        logits, c_e, c_i, rec = fn(replicate(weights, mesh), state0, events)
        correct += int(np.sum(np.argmax(np.asarray(logits), -1) == y))
        count_e.append(np.asarray(c_e).mean(1))
        count_i.append(np.asarray(c_i).mean(1))
        activity.append(np.asarray(rec["rate_e"]))
    return _evaluation(config, correct / len(labels), np.concatenate(count_e),
                       np.concatenate(count_i), np.concatenate(activity, axis=1))  # fmt: skip


def evaluate_stacked(stacked: Weights, model, images, labels, seed: int,
                     batch_size: int = 400, on_batch=None) -> list[Evaluation]:  # fmt: skip
    """:func:`evaluate` of S weight sets stacked along a leading axis (e.g. the scales of a
    sweep), in one vmapped program on the same trials; one :class:`Evaluation` per set.
    ``on_batch()`` is called after every batch (a progress bar)."""
    config = model.config
    correct, count_e, count_i, activity = 0, [], [], []
    for y, events, state0 in eval_trials(model, images, labels, seed, batch_size):
        fn, _ = _eval_fn(config, len(y), 1, stacked=True)
        logits, c_e, c_i, rec = fn(stacked, state0, events)
        correct = correct + np.sum(np.argmax(np.asarray(logits), -1) == y[None], axis=1)
        count_e.append(np.asarray(c_e).mean(2))
        count_i.append(np.asarray(c_i).mean(2))
        activity.append(np.asarray(rec["rate_e"]))
        if on_batch is not None:
            on_batch()
    count_e, count_i = np.concatenate(count_e, axis=1), np.concatenate(count_i, axis=1)
    activity = np.concatenate(activity, axis=2)
    return [_evaluation(config, correct[s] / len(labels), count_e[s], count_i[s], activity[s])
            for s in range(len(count_e))]  # fmt: skip


def _evaluation(config, accuracy, count_e, count_i, activity) -> Evaluation:
    """Mean per-trial counts -> rates (Hz); the gamma peak of the (T, trials) E activity."""
    seconds = config.n_steps * config.dt_ms * 1e-3
    peak = gamma_peak(activity, config.dt_ms)  # whole trials, as the lab
    return Evaluation(
        float(accuracy), float(count_e.mean() / seconds), float(count_i.mean() / seconds),
        float("nan") if peak is None else peak.frequency_Hz,
        float("nan") if peak is None else peak.significance,
    )  # fmt: skip


def reference_trial(weights: Weights, model, image, seed: int, drop_ms: float = 20.0):
    """Simulate the fixed reference trial and return its rates and rasters after ``drop_ms``.

    Recorded by the monitors of every run (:mod:`ei_sim.sim.recorder`): spike events of both
    populations and the membrane potential of E cell 0."""
    from ei_sim.sim.monitors import Monitors, StateMonitor
    from ei_sim.sim.recorder import record

    config = model.config
    events = encode(image[None], config, (seed, REF_STREAM))
    state0 = model.init_state(jax.random.fold_in(jax.random.PRNGKey(seed), REF_STREAM), 1)
    monitors = Monitors(states=(StateMonitor("e", (0,), ("v_mV",)),))
    _, rec = record(weights, state0, events, config, monitors)
    drop = min(int(round(drop_ms / config.dt_ms)), config.n_steps // 2)
    s_e = rec.raster("e", config.n_e)[drop:, 0]
    s_i = rec.raster("i", config.n_i)[drop:, 0]
    seconds = s_e.shape[0] * config.dt_ms * 1e-3
    return ReferenceTrial(
        float(s_e.sum() / s_e.shape[1] / seconds), float(s_i.sum() / s_i.shape[1] / seconds),
        s_e, s_i, rec.traces["e.v_mV"][drop:, 0, 0], gamma_verdict_raster(s_e, config.dt_ms),
    )  # fmt: skip
