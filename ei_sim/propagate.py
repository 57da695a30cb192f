"""Event-driven synaptic propagation: ``g_add = spikes @ W`` computed from the spike list.

Spikes are sparse: well under one spike per step per sample in each population. Rather than a
dense ``(B, n_pre) @ (n_pre, n_post)`` product over mostly-zero rows, the event path gathers
the rows of ``W`` of the cells that spiked and sums them per sample (``segment_sum``). When a
step holds more spikes than the static ``capacity`` (a synchronous burst), it falls back to the
dense product, so the result is always exact.

Finding the spiking cells (stream compaction, ``nonzero``) costs about 6 ns per candidate on
XLA:CPU, so the event path pays off only when ``B * n_pre`` is small (a single large network,
as in the Vogels-Abbott benchmark: 25x faster than dense). For large batches the dense product
(a BLAS call) is faster on CPU; :func:`use_events` makes that choice statically. Input spikes
arrive as host-built event lists and are always propagated as events (:func:`input_drive`).

Gradients are defined by a custom JVP that is the derivative of the dense product,
``d(s @ W) = ds @ W + s @ dW``, so surrogate gradients flow through the spikes. Symbolic zero
tangents (frozen weights, inference) cost nothing.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
from jax.custom_derivatives import SymbolicZero


def _gather_sum(spikes: jax.Array, w: jax.Array, capacity: int) -> jax.Array:
    batch, n_pre = spikes.shape
    flat = spikes.reshape(-1) != 0
    (idx,) = jnp.nonzero(flat, size=capacity, fill_value=flat.size)
    sample = idx // n_pre  # fill entries get sample == batch and are dropped below
    rows = jnp.take(w, idx % n_pre, axis=0)
    return jax.ops.segment_sum(rows, sample, num_segments=batch, indices_are_sorted=True)


def _event_forward(spikes: jax.Array, w: jax.Array, capacity: int) -> jax.Array:
    n_events = jnp.count_nonzero(spikes)
    return jax.lax.cond(
        n_events <= capacity,
        lambda s, m: _gather_sum(s, m, capacity).astype(jnp.result_type(s, m)),
        lambda s, m: jnp.dot(s, m),
        spikes,
        w,
    )


@partial(jax.custom_jvp, nondiff_argnums=(2,))
def propagate(spikes: jax.Array, w: jax.Array, capacity: int) -> jax.Array:
    """Return ``spikes @ w`` for 0/1 ``spikes`` of shape (B, n_pre), event-driven.

    ``capacity`` is the largest number of (sample, cell) spikes handled by the gather path in
    one call; beyond it the dense product is used.
    """
    return _event_forward(spikes, w, capacity)


def _propagate_jvp(capacity, primals, tangents):
    spikes, w = primals
    spikes_dot, w_dot = tangents
    out = _event_forward(spikes, w, capacity)
    tangent = jnp.zeros_like(out)
    if not isinstance(spikes_dot, SymbolicZero):
        tangent = tangent + jnp.dot(spikes_dot, w)
    if not isinstance(w_dot, SymbolicZero):
        tangent = tangent + jnp.dot(spikes, w_dot)
    return out, tangent


propagate.defjvp(_propagate_jvp, symbolic_zeros=True)


EVENT_CANDIDATES_MAX = 16384


def use_events(batch: int, n_pre: int, mode: str) -> bool:
    """Static choice of the recurrent propagation path: "events", "dense" or "auto"."""
    if mode == "auto":
        return batch * n_pre <= EVENT_CANDIDATES_MAX
    return mode == "events"


def capacity_for(batch: int, n_pre: int, fraction: float) -> int:
    """Gather capacity for ``fraction`` of all (sample, cell) pairs spiking in one step."""
    return max(16, int(batch * n_pre * fraction))


def input_drive(w_in: jax.Array, sample: jax.Array, channel: jax.Array, batch: int) -> jax.Array:
    """Conductance added by one step's input events.

    ``sample`` and ``channel`` (shape (K,)) list the step's input spikes; padding entries have
    ``sample == batch`` and are dropped. Returns ``(batch, n_e)``:
    ``g[b] = sum_{k: sample_k = b} W_in[channel_k]``. Differentiable in ``w_in``.
    """
    rows = jnp.take(w_in, channel, axis=0)
    return jax.ops.segment_sum(rows, sample, num_segments=batch)
