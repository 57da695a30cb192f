"""Optimiser pieces shared by every trainer: the Dale projection and the standard chain.

Dale's law here means every trained weight stays non-negative (inhibition is carried by the
reversal potential or by the sign in the model equations, never by a weight). After each
update the projection ``w <- max(w, 0)`` is applied; it is idempotent and non-expansive
(``|P(a) - P(b)| <= |a - b|`` elementwise).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax


def project_non_negative(tree, mask=None):
    """``max(w, 0)`` on every leaf (or on the leaves where the boolean pytree ``mask`` is True)."""
    if mask is None:
        return jax.tree.map(lambda w: jnp.maximum(w, 0.0), tree)
    return jax.tree.map(lambda w, m: jnp.maximum(w, 0.0) if m else w, tree, mask)


class DaleState(NamedTuple):
    pass


def dale_projection(mask=None) -> optax.GradientTransformation:
    """An optax transform that turns an update into one landing on ``w >= 0``.

    Must come last in a chain: it rewrites ``updates`` so that ``params + updates`` equals
    ``max(params + updates, 0)`` on the masked leaves. Needs ``params`` in ``update``.
    """

    def init(params):
        del params
        return DaleState()

    def update(updates, state, params=None):
        if params is None:
            raise ValueError("dale_projection needs params: call update(grads, state, params)")
        new = optax.apply_updates(params, updates)
        projected = project_non_negative(new, mask)
        return jax.tree.map(lambda p, w: w - p, params, projected), state

    return optax.GradientTransformation(init, update)


def adam_with_dale(learning_rate: float, clip_norm: float | None = 1.0, mask=None):
    """Global-norm clipping, Adam, then the Dale projection (in that order)."""
    parts = []
    if clip_norm is not None:
        parts.append(optax.clip_by_global_norm(clip_norm))
    parts += [optax.adam(learning_rate), dale_projection(mask)]
    return optax.chain(*parts)


def all_finite(tree) -> jax.Array:
    """True when every leaf of ``tree`` is finite (used to skip bad steps)."""
    leaves = jax.tree.leaves(tree)
    if not leaves:
        return jnp.asarray(True)
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in leaves]))
