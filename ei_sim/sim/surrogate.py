"""Spike nonlinearities with surrogate gradients, and gradient damping.

Forward, a spike is the Heaviside step ``H(u)`` of ``u = V - V_th`` (mV). Backward, the
derivative is replaced by a smooth surrogate:

* ``fast_sigmoid``: dH/du ~= k / (1 + k|u|)^2
* ``arctan``:       dH/du ~= k / (1 + (pi k u / 2)^2)

with ``k`` the slope in 1/mV. :func:`damp_gradient` passes ``x`` forward unchanged and scales
its gradient by ``1/d``: ``x/d + (1 - 1/d) * stop_gradient(x)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import jax
import jax.numpy as jnp


def _surrogate_factory(derivative: Callable[[jax.Array, float], jax.Array]):
    @jax.custom_jvp
    def spike(u, slope):
        return (u >= 0).astype(u.dtype)

    @spike.defjvp
    def _jvp(primals, tangents):
        u, slope = primals
        u_dot, _ = tangents
        return spike(u, slope), derivative(u, slope) * u_dot

    spike.derivative = derivative  # the surrogate dH/du itself, for hand-written adjoints
    return spike


fast_sigmoid = _surrogate_factory(lambda u, k: k / (1.0 + k * jnp.abs(u)) ** 2)
fast_sigmoid.__doc__ = "Heaviside forward; backward k / (1 + k|u|)^2."

arctan = _surrogate_factory(lambda u, k: k / (1.0 + (0.5 * math.pi * k * u) ** 2))
arctan.__doc__ = "Heaviside forward; backward k / (1 + (pi k u / 2)^2)."

SURROGATE_FNS = {"fast_sigmoid": fast_sigmoid, "arctan": arctan}


def damp_gradient(x: jax.Array, factor: float) -> jax.Array:
    """Identity forward; gradient divided by ``factor`` (``factor = 1`` disables)."""
    if factor == 1.0:
        return x
    return x / factor + (1.0 - 1.0 / factor) * jax.lax.stop_gradient(x)
