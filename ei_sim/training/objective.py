"""The training objective and one optimiser step (surrogate-gradient BPTT).

    loss = CE(logits, y) + lambda * sum_n ReLU(zbar_n - theta)^2

``zbar_n`` is the spike count of E cell n in the trial, averaged over the batch, and ``theta``
the spike budget (spikes per trial); ``budget=None`` turns the term off. Gradients flow
through the whole trial (``ei_sim.sim.engine.simulate`` with chunked ``jax.checkpoint``), through
the surrogate spike derivative and the damped membrane increment. A step whose gradient is
not finite is skipped by the optimiser (``optax.apply_if_finite`` in
:func:`ei_sim.training.optim.dale_adam`: parameters and Adam state unchanged) and counted.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax.sharding import PartitionSpec

from ei_sim.sim.engine import Weights, simulate
from ei_sim.sim.parallel import AXIS, simulate_split, split_batch
from ei_sim.training import fused as fused_path
from ei_sim.training.optim import all_finite


class LossParts(NamedTuple):
    loss: jax.Array
    cross_entropy: jax.Array
    budget_penalty: jax.Array
    accuracy: jax.Array
    rate_e_Hz: jax.Array
    rate_i_Hz: jax.Array


def assemble(trainable: dict, frozen: dict) -> Weights:
    """Weights for the forward pass: trained blocks clamped at 0 (Dale), frozen ones as is."""
    clamped = {k: jnp.maximum(v, 0.0) for k, v in trainable.items()}
    return Weights(**frozen, **clamped)


def budget_penalty(count_e: jax.Array, budget: float | None, strength: float) -> jax.Array:
    """lambda * sum_n ReLU(mean_batch(count_n) - theta)^2, zero when budget is None."""
    if budget is None:
        return jnp.zeros((), count_e.dtype)
    zbar = count_e.mean(axis=0)
    return strength * jnp.sum(jnp.maximum(zbar - budget, 0.0) ** 2)


def use_fused(trainable, frozen, events, config, fused: bool | None = None) -> bool:
    """Whether a training step runs the fused native path (:mod:`ei_sim.training.fused`).

    ``fused=None``: when it applies (:func:`ei_sim.training.fused.applicable`) and only W_in / W_out
    are trained; ``True`` insists (ValueError when it cannot), ``False`` takes the engine's
    path (``jax.checkpoint`` over chunks of scanned :func:`ei_sim.sim.engine.step`).
    """
    weights = assemble(trainable, frozen)
    ok = set(trainable) <= {"w_in", "w_out"} and fused_path.applicable(weights, config, events)
    if fused and not ok:
        raise ValueError(
            "the fused training path needs the native kernels, input events, dense recurrent "
            "blocks and only w_in / w_out trained"
        )
    return ok if fused is None else bool(fused)


def trial_accumulators(weights, state0, events, config, chunk, mesh=None, fused=False):
    """A trial's accumulators for training: the engine's checkpointed scan, or the fused
    path (``fused=True``); with a ``mesh`` the batch is split over its devices."""
    if fused:
        if mesh is None:
            return fused_path.trial(weights, state0, events, config, chunk or 50).acc

        def part(w, s0, local_events):
            return fused_path.trial(w, s0, local_events, config, chunk or 50, parallel=False).acc

        return split_batch(part, weights, state0, events, mesh, PartitionSpec(AXIS))
    if mesh is None:
        return simulate(weights, state0, events, config, checkpoint_every=chunk)[0].acc
    return simulate_split(weights, state0, events, config, mesh, checkpoint_every=chunk)[0]


def forward_loss(
    trainable, frozen, state0, events, labels, config, budget, strength, chunk, mesh=None,
    fused=False,
):  # fmt: skip
    """Loss and its parts for one batch; differentiable in ``trainable``. With a ``mesh``
    (:func:`ei_sim.sim.parallel.batch_mesh`) the batch is split over its devices; ``fused``: run
    the trial on the fused native path (see :func:`use_fused`)."""
    weights = assemble(trainable, frozen)
    acc = trial_accumulators(weights, state0, events, config, chunk, mesh, fused)
    n_steps = events[0].shape[0]
    logits = acc.out_v_sum / n_steps
    ce = optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
    penalty = budget_penalty(acc.count_e, budget, strength)
    seconds = n_steps * config.dt_ms * 1e-3
    parts = LossParts(
        ce + penalty, ce, penalty, jnp.mean(jnp.argmax(logits, -1) == labels),
        acc.count_e.mean() / seconds, acc.count_i.mean() / seconds,
    )  # fmt: skip
    return parts.loss, parts


def make_train_step(optimizer, config, budget, strength, chunk, mesh=None, fused=None):
    """A jitted ``(trainable, opt_state, frozen, state0, events, labels) -> (..., finite, parts)``;
    ``mesh``: split each batch over its devices (data parallel), None: one device; ``fused``:
    see :func:`use_fused` (None: the fused native path where it applies)."""

    def train_step(trainable, opt_state, frozen, state0, events, labels):
        on_fused = use_fused(trainable, frozen, events, config, fused)
        grad_fn = jax.value_and_grad(forward_loss, has_aux=True)
        (_, parts), grads = grad_fn(
            trainable,
            frozen,
            state0,
            events,
            labels,
            config,
            budget,
            strength,
            chunk,
            mesh,
            on_fused,
        )
        # a non-finite gradient is skipped by the optimiser (optax.apply_if_finite,
        # ei_sim.training.optim.dale_adam); finite says what it saw
        finite = all_finite(grads)
        updates, new_opt = optimizer.update(grads, opt_state, trainable)
        return optax.apply_updates(trainable, updates), new_opt, finite, parts

    return jax.jit(train_step)


def make_eval_fn(config, mesh=None):
    """A jitted forward pass returning logits, per-trial spike counts and population rates;
    ``mesh``: split the batch over its devices. It runs on the fused path's forward pass
    (:func:`ei_sim.training.fused.run_with_rates`) where that applies (unless
    ``EI_SIM_FUSED=0``), else on the engine; both give the same spikes."""

    def evaluate(weights, state0, events):
        record = ("rate_e", "rate_i")
        if fused_path.applicable(weights, config, events):  # the same spikes, faster
            if mesh is None:
                final, rec = fused_path.run_with_rates(weights, state0, events, config)
                acc = final.acc
            else:

                def part(w, s0, local_events):
                    final, rec = fused_path.run_with_rates(w, s0, local_events, config,
                                                           parallel=False)  # fmt: skip
                    return final.acc, rec

                specs = (PartitionSpec(AXIS), PartitionSpec(None, AXIS))
                acc, rec = split_batch(part, weights, state0, events, mesh, specs)
        elif mesh is None:
            final, rec = simulate(weights, state0, events, config, record=record)
            acc = final.acc
        else:
            acc, rec = simulate_split(weights, state0, events, config, mesh, record=record)
        n_steps = events[0].shape[0]
        return acc.out_v_sum / n_steps, acc.count_e, acc.count_i, rec

    return jax.jit(evaluate)
