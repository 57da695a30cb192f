"""The engine's state and weight containers, with no JAX import.

:class:`Weights`, :class:`PopState`, :class:`Accumulators` and :class:`NetState` are plain
named tuples (pytrees to JAX as they are); :mod:`ei_sim.sim.engine` steps them. They live here
so that code that only builds or inspects a network on the host (a preset's NumPy draws, the
native run of ``ei-sim simulate``) starts without importing JAX.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

if TYPE_CHECKING:
    import jax


class Weights(NamedTuple):
    """Synaptic weights in uS per presynaptic spike (all >= 0), rows = presynaptic.

    A recurrent block may be a dense array or a :class:`ei_sim.sim.sparse.SparseBlock`.

    ``w_in`` (n_in, n_e), ``w_ee`` (n_e, n_e), ``w_ei`` (n_e, n_i), ``w_ie`` (n_i, n_e),
    ``w_ii`` (n_i, n_i), ``w_out`` (n_e, n_out, dimensionless). ``None`` marks an absent block.
    """

    w_in: jax.Array | None = None
    w_ee: jax.Array | None = None
    w_ei: jax.Array | None = None
    w_ie: jax.Array | None = None
    w_ii: jax.Array | None = None
    w_out: jax.Array | None = None


class PopState(NamedTuple):
    """State of one population, each field (B, n)."""

    v_mV: jax.Array
    g_exc_uS: jax.Array
    g_inh_uS: jax.Array
    refractory_steps: jax.Array
    spikes: jax.Array


class Accumulators(NamedTuple):
    """Running sums over the trial: spike counts per cell, readout potential sum."""

    count_e: jax.Array
    count_i: jax.Array
    out_v_sum: jax.Array


class NetState(NamedTuple):
    e: PopState
    i: PopState
    out_v: jax.Array
    acc: Accumulators


_TRUE = ("1", "true", "yes", "on", "t", "y")


def default_float() -> np.dtype:
    """JAX's default float type: float64 when x64 is enabled, else float32.

    Asked of JAX when it is already imported, else read from ``JAX_ENABLE_X64`` as JAX would
    (so that host-only code does not import JAX to learn it)."""
    jax = sys.modules.get("jax")
    if jax is not None and hasattr(jax, "config"):
        return np.dtype(np.float64 if jax.config.jax_enable_x64 else np.float32)
    x64 = os.environ.get("JAX_ENABLE_X64", "").strip().lower() in _TRUE
    return np.dtype(np.float64 if x64 else np.float32)
