"""Weight initialisation of the network blocks: non-negative, optionally sparse, fan-in scaled.

    w = max(Normal(mean, std), 0) * mask / (1 - sparsity) / fan_in,   mask ~ Bernoulli(1 - sparsity)

Inhibition is carried by the reversal potential E_inh, never by the sign of a weight.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def init_block(key, shape, mean: float, std: float, sparsity: float = 0.0, fan_in=None):
    """One non-negative weight block of ``shape = (n_pre, n_post)``; fan-in defaults to n_pre."""
    if not 0.0 <= sparsity < 1.0:
        raise ValueError(f"sparsity must lie in [0, 1), got {sparsity}")
    if mean < 0 or std < 0:
        raise ValueError(f"weight mean and std must be >= 0 (Dale's law), got {mean}, {std}")
    key_w, key_mask = jax.random.split(key)
    w = jnp.maximum(mean + std * jax.random.normal(key_w, shape), 0.0)
    if sparsity > 0:
        keep = jax.random.bernoulli(key_mask, 1.0 - sparsity, shape)
        w = w * keep / (1.0 - sparsity)
    return w / (shape[0] if fan_in is None else fan_in)


def bernoulli_block(key, shape, p: float, weight: float):
    """Random connectivity with probability ``p`` and a fixed ``weight`` (no fan-in scaling)."""
    return jax.random.bernoulli(key, p, shape).astype(jnp.float32) * weight
