"""Event-driven synaptic propagation: ``g_add = spikes @ W`` computed from the spikes.

Spikes are sparse: well under one spike per step per sample in each population. Rather than a
dense ``(B, n_pre) @ (n_pre, n_post)`` product over mostly-zero rows, two exact paths:

* ``"native"``: the C++ kernel of :mod:`ei_sim.sim.native` adds the row of ``W`` of every spike
  (work = spikes x n_post, or spikes x fan-out for :class:`ei_sim.sim.sparse.SparseBlock`).
* ``"events"`` (pure JAX): the presynaptic cells that spiked in any sample of the batch are
  listed (``nonzero`` with a static list size: the smallest of :func:`capacity_tiers` that
  holds the step's count, chosen by ``lax.switch``; the dense product beyond the largest) and
  only their columns of ``spikes`` and rows of ``W`` enter the product. Stream compaction
  costs about 6 ns per candidate on XLA:CPU, which is why the native kernel is preferred.

:func:`resolve_method` turns ``NetworkConfig.propagation`` into one of these (or ``"dense"``).
Input spikes arrive as host-built event lists and are always propagated as events
(:func:`input_drive`).

Gradients are defined by a custom VJP, the transpose of the dense product's derivative:
``dL/ds = ct @ W^T`` (dense, so that surrogate gradients flow through the spikes) and
``dL/dW = s^T @ ct``, which is event-driven too (the rows of the spiking cells). Inputs that are
not differentiated (frozen weights, inference) cost nothing.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
from jax.custom_derivatives import SymbolicZero

from ei_sim.sim import native


def capacity_tiers(n_pre: int, smallest: int = 8) -> tuple[int, ...]:
    """Static sizes of the active-cell lists: ``smallest * 2**k`` up to ``n_pre / 2``."""
    tiers, size = [], smallest
    while size <= n_pre // 2:
        tiers.append(size)
        size *= 2
    return tuple(tiers)


def _active_product(spikes: jax.Array, w: jax.Array, active: jax.Array, size: int):
    """``spikes @ w`` restricted to the first ``size`` presynaptic cells in ``active``."""
    n_pre = spikes.shape[1]
    (cells,) = jnp.nonzero(active, size=size, fill_value=n_pre)
    s_sub = jnp.take(spikes, cells, axis=1, mode="fill", fill_value=0)
    w_sub = jnp.take(w, cells, axis=0, mode="fill", fill_value=0)
    return jnp.dot(s_sub, w_sub)


def _event_forward(spikes: jax.Array, w: jax.Array) -> jax.Array:
    """Exact ``spikes @ w`` over only the presynaptic cells that spiked in some sample.

    The cells active in any sample of the batch are listed (a static list size, chosen from
    :func:`capacity_tiers` by the actual count), their columns of ``spikes`` and rows of ``w``
    gathered, and the small product taken. Beyond the largest tier: the dense product.
    """
    active = jnp.any(spikes != 0, axis=0)
    n_active = jnp.count_nonzero(active)
    tiers = capacity_tiers(spikes.shape[1])
    branches = [partial(_active_product, size=size) for size in tiers]
    branches.append(lambda s, m, a: jnp.dot(s, m))
    index = jnp.searchsorted(jnp.asarray(tiers, jnp.int32), n_active.astype(jnp.int32))
    out = jax.lax.switch(index, branches, spikes, w, active)
    return out.astype(jnp.result_type(spikes, w))


def _forward(spikes: jax.Array, w: jax.Array, method: str) -> jax.Array:
    if method == "native":
        return native.event_matmul(spikes, w)
    return _event_forward(spikes, w)


@partial(jax.custom_vjp, nondiff_argnums=(2,))
def propagate(spikes: jax.Array, w: jax.Array, method: str = "events") -> jax.Array:
    """Return ``spikes @ w`` for 0/1 ``spikes`` of shape (B, n_pre), event-driven.

    ``method``: ``"native"`` (the C++ kernel of :mod:`ei_sim.sim.native`) or ``"events"`` (pure
    JAX, :func:`_event_forward`).
    """
    return _forward(spikes, w, method)


def sum_tangents(out: jax.Array, terms) -> jax.Array:
    """Tangent of a map linear in each argument: the sum of ``linear(dot)`` over ``terms``
    (pairs ``(dot, linear)``), skipping symbolic zeros (frozen weights, inference) for free."""
    tangent = jnp.zeros_like(out)
    for dot, linear in terms:
        if dot is not None and not isinstance(dot, SymbolicZero):
            tangent = tangent + linear(dot)
    return tangent


def _outer(spikes: jax.Array, ct: jax.Array, method: str) -> jax.Array:
    """``spikes^T @ ct`` (the gradient with respect to ``w``), event-driven when native."""
    if method == "native":
        return native.event_outer(spikes, ct)
    return jnp.einsum("...bi,...bj->...ij", spikes, ct).astype(jnp.result_type(spikes, ct))


def _propagate_fwd(spikes, w, method):
    """Forward pass; the residuals hold only what the perturbed inputs' cotangents need
    (a frozen ``w`` or constant spikes cost nothing in the backward pass)."""
    out = _forward(spikes.value, w.value, method)
    return out, (w.value if spikes.perturbed else None, spikes.value if w.perturbed else None)


def _propagate_bwd(method, residuals, ct):
    """``dL/dspikes = ct @ w^T`` (dense: surrogate cotangents are) and
    ``dL/dw = spikes^T @ ct`` (event-driven: the spikes are sparse)."""
    w, spikes = residuals
    if isinstance(ct, SymbolicZero):
        return (None, None)
    ct_spikes = None if w is None else jnp.matmul(ct, jnp.swapaxes(w, -1, -2)).astype(w.dtype)
    ct_w = None if spikes is None else _outer(spikes, ct, method)
    return ct_spikes, ct_w


propagate.defvjp(_propagate_fwd, _propagate_bwd, symbolic_zeros=True)


def resolve_method(mode: str) -> str:
    """The recurrent propagation path for ``NetworkConfig.propagation``.

    ``"auto"`` takes the native kernel when it can be built, else the pure-JAX event path;
    ``"native"`` insists on the kernel; ``"events"`` and ``"dense"`` are taken as they are.
    """
    if mode == "auto":
        return "native" if native.available() else "events"
    if mode == "native" and not native.available():
        raise ValueError(
            f"propagation='native' but the kernel is unavailable: {native.unavailable_reason()}"
        )
    return mode


def input_drive(w_in: jax.Array, sample: jax.Array, channel: jax.Array, batch: int) -> jax.Array:
    """Conductance added by one step's input events.

    ``sample`` and ``channel`` (shape (K,)) list the step's input spikes; padding entries have
    ``sample == batch`` and are dropped. Returns ``(batch, n_e)``:
    ``g[b] = sum_{k: sample_k = b} W_in[channel_k]``. Differentiable in ``w_in``.
    """
    rows = jnp.take(w_in, channel, axis=0)
    return jax.ops.segment_sum(rows, sample, num_segments=batch)
