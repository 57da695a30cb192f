"""The small networks ei-sim is compared with Brian2 on (live in test_brian2.py, stored in
data/golden/brian2_reference.h5 by data/make_golden.py). Only numpy and ei-sim needed."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from ei_sim.data.encoding import events_from_dense
from ei_sim.sim.config import NetworkConfig
from ei_sim.sim.engine import Weights, init_state, simulate_jit
from ei_sim.sim.sparse import SparseBlock

PING_SMALL = NetworkConfig(n_in=60, n_e=40, n_i=10, n_out=0, t_ms=100.0)
VA_SMALL = NetworkConfig(
    n_in=0, n_e=320, n_i=80, n_out=0, e_leak_mV=-60.0, v_reset_mV=-60.0,
    tau_ampa_ms=5.0, tau_gaba_ms=10.0, t_ms=200.0,
)  # fmt: skip


def ping_small(seed=0):
    rng = np.random.default_rng(seed)
    weights = {
        "w_in": rng.uniform(0, 0.05, (60, 40)) * (rng.random((60, 40)) < 0.3),
        "w_ei": rng.uniform(0, 0.06, (40, 10)),
        "w_ie": rng.uniform(0, 0.08, (10, 40)),
    }
    inputs = rng.random((PING_SMALL.n_steps, 1, 60)) < 0.01
    inputs[0] = False  # row 0 has no Brian2 counterpart (see brian2_reference)
    return weights, inputs


def va_small(seed=0):
    from ei_sim.models.va_coba import VA_CELL

    config = dataclasses.replace(VA_SMALL, cell_e=VA_CELL, cell_i=VA_CELL)
    rng = np.random.default_rng(seed)
    p, we, wi = 0.1, 1.2, 8.0  # denser and stronger than VA so that 400 cells self-sustain
    blocks = {
        "w_ee": (config.n_e, config.n_e, we), "w_ei": (config.n_e, config.n_i, we),
        "w_ie": (config.n_i, config.n_e, wi), "w_ii": (config.n_i, config.n_i, wi),
    }  # fmt: skip
    weights = {k: (rng.random((a, b)) < p) * w for k, (a, b, w) in blocks.items()}
    g0 = {
        pop: (rng.normal(4, 1.5, n), rng.normal(20, 12, n))
        for pop, n in (("e", config.n_e), ("i", config.n_i))
    }
    return config, weights, g0


def with_state(config, v0_e, v0_i, g0=None, dtype=jnp.float64):
    """The initial state of one trial: V given, conductances from ``g0`` (else zero)."""
    state = init_state(config, jax.random.PRNGKey(0), 1, dtype=dtype)

    def fill(pop, v, g):
        pop = pop._replace(v_mV=jnp.asarray(np.asarray(v)[None], dtype))
        if g is None:
            return pop
        return pop._replace(g_exc_uS=jnp.asarray(g[0][None], dtype),
                            g_inh_uS=jnp.asarray(g[1][None], dtype))  # fmt: skip

    g0 = g0 or {}
    return state._replace(e=fill(state.e, v0_e, g0.get("e")), i=fill(state.i, v0_i, g0.get("i")))


def va_state(config, g0, key, dtype):
    state = init_state(config, jax.random.PRNGKey(key), 1, dtype=dtype)
    return with_state(config, state.e.v_mV[0], state.i.v_mV[0], g0, dtype)


def run_ei_sim(config, weights, state0, inputs, dtype, sparse=False):
    """Spike rasters (T, N_E), (T, N_I) of one trial."""
    w = Weights(**{k: jnp.asarray(v, dtype) for k, v in weights.items()})
    if sparse:  # recurrent blocks in compressed sparse rows (the native event kernel)
        recurrent = ("w_ee", "w_ei", "w_ie", "w_ii")
        w = w._replace(
            **{k: SparseBlock.from_dense(v) for k, v in weights.items() if k in recurrent}
        )
    events = None if inputs is None else events_from_dense(inputs)
    _, rec = simulate_jit(
        w, state0, events, config, record=("spikes_e", "spikes_i"), n_steps=config.n_steps
    )
    return np.asarray(rec["spikes_e"])[:, 0], np.asarray(rec["spikes_i"])[:, 0]


def first_difference_ms(a, b, dt_ms):
    diff = np.nonzero((a[0] != b[0]).any(1) | (a[1] != b[1]).any(1))[0]
    return np.inf if diff.size == 0 else diff[0] * dt_ms
