"""The conductance-based LIF engine: one pure step, scanned.

State is a named pytree per population (:class:`PopState`) inside :class:`NetState`;
weights are a :class:`Weights` pytree (absent blocks are ``None``); configuration is a static
:class:`ei_sim.sim.config.NetworkConfig`. :func:`step` is the only step function of the project:
simulation, training, evaluation and sweeps all scan it.

One step of ``dt`` (the model of the whole project)::

    1. g_exc_E <- g_exc_E e^{-dt/tau_ampa} + s_in W_in + s_E W_EE        [uS]
       g_inh_E <- g_inh_E e^{-dt/tau_gaba} + s_I W_IE
       g_exc_I <- g_exc_I e^{-dt/tau_ampa} + s_E W_EI
       g_inh_I <- g_inh_I e^{-dt/tau_gaba} + s_I W_II
       (s_E, s_I: spikes of the previous step; s_in: this step's input events)
    2. g_tot = g_L + g_exc + g_inh,  V_inf = (g_L E_L + g_exc E_exc + g_inh E_inh) / g_tot
       V <- max(V + (V_inf - V)(1 - e^{-dt g_tot / C}), V_floor)
    3. ref <- max(ref - 1, 0);  s = H(V - V_th) [ref == 0]
       V <- V_reset where s or ref > 0;  ref <- n_ref where s    (n_ref = max(1, round(t_ref/dt)))
    4. readout: v_out <- beta v_out + (1 - beta)/dt * s_E W_out,  beta = e^{-dt/tau_out};
       logits accumulate v_out; v_out <- v_out - [v_out >= threshold]   (subtractive reset)
"""

from __future__ import annotations

import math
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from ei_sim.sim import native
from ei_sim.sim.config import CellParams, NetworkConfig
from ei_sim.sim.propagate import input_drive, propagate, resolve_method
from ei_sim.sim.sparse import SparseBlock, sparse_propagate
from ei_sim.sim.sparse import hstack as sparse_hstack
from ei_sim.sim.state import Accumulators, NetState, PopState, Weights
from ei_sim.sim.surrogate import SURROGATE_FNS, damp_gradient

RECORDABLE = (
    "spikes_e", "spikes_i", "v_e", "v_i", "g_exc_e", "g_inh_e", "g_exc_i", "g_inh_i",
    "rate_e", "rate_i", "out_v",
)  # fmt: skip


def init_population(key, batch: int, n: int, config: NetworkConfig, dtype) -> PopState:
    """Voltages uniform in ``config.v_init_range_mV``; conductances, counts and spikes zero."""
    low, high = config.v_init_range_mV
    v = jax.random.uniform(key, (batch, n), dtype, minval=low, maxval=high)
    zeros = jnp.zeros((batch, n), dtype)
    return PopState(v, zeros, zeros, jnp.zeros((batch, n), jnp.int32), zeros)


def init_state(config: NetworkConfig, key, batch: int, dtype=None) -> NetState:
    """Initial state of a batch of trials: V uniform in ``config.v_init_range_mV``, everything
    else zero. Replace fields to customise."""
    dtype = dtype or jnp.zeros(()).dtype
    key_e, key_i = jax.random.split(key)
    n_out = config.n_out
    return NetState(
        e=init_population(key_e, batch, config.n_e, config, dtype),
        i=init_population(key_i, batch, config.n_i, config, dtype),
        out_v=jnp.zeros((batch, n_out), dtype),
        acc=Accumulators(
            jnp.zeros((batch, config.n_e), dtype),
            jnp.zeros((batch, config.n_i), dtype),
            jnp.zeros((batch, n_out), dtype),
        ),
    )


def _synaptic_input(spikes, w, config: NetworkConfig):
    """``spikes @ w`` (uS), event-driven or dense as ``config.propagation`` selects."""
    if w is None:
        return 0.0
    method = resolve_method(config.propagation)
    if isinstance(w, SparseBlock):  # "dense" would densify the block: use its pure-JAX path
        return sparse_propagate(spikes, w, "events" if method == "dense" else method)
    if method == "dense":
        return jnp.dot(spikes, w)
    return propagate(spikes, w, method)


def _fanout(spikes, blocks, config: NetworkConfig):
    """Input from one presynaptic population to several targets, one propagation for all.

    The present blocks are joined column-wise so that the spiking cells are found once.
    """
    present = [w for w in blocks if w is not None]
    if not present:
        return [0.0] * len(blocks)
    sparse = [isinstance(w, SparseBlock) for w in present]
    if any(sparse) and not all(sparse):  # mixed formats: one propagation per block
        return [_synaptic_input(spikes, w, config) for w in blocks]
    if all(sparse):
        joined = sparse_hstack(present)
    else:
        joined = present[0] if len(present) == 1 else jnp.concatenate(present, axis=1)
    out = _synaptic_input(spikes, joined, config)
    parts, start = [], 0
    for w in blocks:
        if w is None:
            parts.append(0.0)
        else:
            parts.append(out[:, start : start + w.shape[1]])
            start += w.shape[1]
    return parts


def conductances(weights: Weights, state: NetState, inputs_t, config: NetworkConfig):
    """Step 1: decay, then add the previous step's spikes (and this step's input events)."""
    d_ampa = math.exp(-config.dt_ms / config.tau_ampa_ms)
    d_gaba = math.exp(-config.dt_ms / config.tau_gaba_ms)
    e, i = state.e, state.i
    from_e_to_e, from_e_to_i = _fanout(e.spikes, (weights.w_ee, weights.w_ei), config)
    from_i_to_e, from_i_to_i = _fanout(i.spikes, (weights.w_ie, weights.w_ii), config)
    g_exc_e = e.g_exc_uS * d_ampa + from_e_to_e
    if weights.w_in is not None and inputs_t is not None:
        if isinstance(inputs_t, tuple):  # event lists (sample, channel)
            sample, channel = inputs_t
            g_exc_e = g_exc_e + input_drive(weights.w_in, sample, channel, e.v_mV.shape[0])
        else:  # a dense (B, n_in) 0/1 array
            g_exc_e = g_exc_e + jnp.dot(inputs_t.astype(g_exc_e.dtype), weights.w_in)
    g_inh_e = e.g_inh_uS * d_gaba + from_i_to_e
    g_exc_i = i.g_exc_uS * d_ampa + from_e_to_i
    g_inh_i = i.g_inh_uS * d_gaba + from_i_to_i
    return (g_exc_e, g_inh_e), (g_exc_i, g_inh_i)


def _relaxation(g_exc_uS, g_inh_uS, cell: CellParams, config: NetworkConfig):
    """``(g_tot, V_inf, a)`` of one exponential-Euler step, ``a = 1 - exp(-dt g_tot / C)``.

    ``1 - exp(-x)`` rather than ``-expm1(-x)``: its absolute error (~3e-8 in float32) times
    ``|V_inf - V|`` (< 100 mV) stays below the float32 resolution of V itself, and XLA:CPU
    evaluates ``exp`` about 2.4x faster than ``expm1`` (a 16 % faster forward pass).
    """
    g_tot = cell.g_leak_uS + g_exc_uS + g_inh_uS
    v_inf = (
        cell.g_leak_uS * config.e_leak_mV + g_exc_uS * config.e_exc_mV + g_inh_uS * config.e_inh_mV
    ) / g_tot
    return g_tot, v_inf, 1.0 - jnp.exp(-config.dt_ms * g_tot / cell.c_nF)


def membrane(v_mV, g_exc_uS, g_inh_uS, cell: CellParams, config: NetworkConfig):
    """Step 2: exponential-Euler update with conductances held over the step, then the floor.

    The increment's gradient is divided by ``config.grad_damping`` (identity forward).
    """
    _, v_inf, a = _relaxation(g_exc_uS, g_inh_uS, cell, config)
    dv = damp_gradient((v_inf - v_mV) * a, config.grad_damping)
    return jnp.maximum(v_mV + dv, config.v_floor_mV)


def spike_and_reset(v_mV, refractory_steps, cell: CellParams, config: NetworkConfig):
    """Step 3: refractory countdown, threshold (surrogate gradient), reset and new count.

    The reset uses the spike value without its gradient (a detached reset).
    """
    ref = jnp.maximum(refractory_steps - 1, 0)
    surrogate = SURROGATE_FNS[config.surrogate]
    spikes = surrogate(v_mV - config.v_th_mV, config.surrogate_slope_per_mV)
    spikes = spikes * (ref == 0).astype(v_mV.dtype)
    fired = jax.lax.stop_gradient(spikes)
    v_mV = v_mV + (config.v_reset_mV - v_mV) * fired
    v_mV = jnp.where(ref > 0, config.v_reset_mV, v_mV)
    ref = jnp.where(fired > 0, config.refractory_steps(cell), ref)
    return v_mV, ref, spikes


def _advance(v_mV, g_exc, g_inh, refractory_steps, cell: CellParams, config: NetworkConfig):
    v = membrane(v_mV, g_exc, g_inh, cell, config)
    return spike_and_reset(v, refractory_steps, cell, config)


# "auto" uses the fused C++ update from this many cells x trials on: below it XLA's own fusions
# (which also absorb the conductance update) are faster; above it the native pass, split over
# XLA's CPU threads, is (measured: benchmarks/bench_train.py, bench_engine.py).
NATIVE_CELLS_MIN_SIZE = 65536


def native_cells(config: NetworkConfig, size: int) -> bool:
    """Whether the update of ``size`` cell-trials runs as the fused C++ pass (``cell_kernel``)."""
    if config.cell_kernel == "auto":
        return size >= NATIVE_CELLS_MIN_SIZE and native.available()
    return config.cell_kernel == "native"


@partial(jax.custom_vjp, nondiff_argnums=(4, 5))
def population_update(v_mV, g_exc, g_inh, refractory_steps, cell, config):
    """Steps 2 and 3 for one population: ``(v, g_exc, g_inh, ref) -> (v', ref', spikes)``.

    The forward pass is :func:`membrane` then :func:`spike_and_reset`. The backward pass is
    their adjoint written out: it keeps only the four inputs per step and recomputes the rest
    elementwise, instead of storing a dozen intermediate arrays per step (a quarter less time
    per training step, tested against autodiff). With the native ``config.cell_kernel``, each
    is one fused C++ pass (:func:`ei_sim.sim.native.population_forward`, ``population_adjoint``).
    With ``a = 1 - exp(-dt g_tot / C)``, ``V1 = max(V + dV, V_floor)``, ``open = [ref' == 0]``,
    ``s = H(V1 - V_th) open`` (detached in the reset) and damping ``d``::

        dL/dV1    = dL/dV' open (1 - s) + dL/ds open H'(V1 - V_th)
        dL/du     = dL/dV1 [V1 > V_floor]          (u = V + dV, before the floor)
        dL/dV     = dL/du (1 - a/d)
        dL/dg_x   = dL/du / d * (a (E_x - V_inf) / g_tot + (V_inf - V) (dt/C) (1 - a))
    """
    if native_cells(config, v_mV.size):
        return native.population_forward(v_mV, g_exc, g_inh, refractory_steps, cell, config)
    return _advance(v_mV, g_exc, g_inh, refractory_steps, cell, config)


def _population_fwd(v_mV, g_exc, g_inh, refractory_steps, cell, config):
    out = population_update.fun(v_mV, g_exc, g_inh, refractory_steps, cell, config)
    return out, (v_mV, g_exc, g_inh, refractory_steps)


def _population_bwd(cell, config, residuals, cotangents):
    v, g_exc, g_inh, ref = residuals
    ct_v_new, _, ct_spikes = cotangents
    if native_cells(config, v.size):
        ct = native.population_adjoint(v, g_exc, g_inh, ref, ct_v_new, ct_spikes, cell, config)
        return (*ct, np.zeros(ref.shape, jax.dtypes.float0))
    dt, d = config.dt_ms, config.grad_damping
    g_tot, v_inf, a = _relaxation(g_exc, g_inh, cell, config)
    v1 = membrane(v, g_exc, g_inh, cell, config)  # the forward value (XLA shares the terms)
    is_open = (jnp.maximum(ref - 1, 0) == 0).astype(v.dtype)
    fired = (v1 >= config.v_th_mV).astype(v.dtype) * is_open
    slope = SURROGATE_FNS[config.surrogate].derivative(
        v1 - config.v_th_mV, config.surrogate_slope_per_mV
    )
    ct_v1 = ct_v_new * is_open * (1.0 - fired) + ct_spikes * is_open * slope
    ct_u = ct_v1 * (v1 > config.v_floor_mV).astype(v.dtype)
    ct_dv = ct_u / d
    common = (v_inf - v) * (dt / cell.c_nF) * (1.0 - a)
    ct_g_exc = ct_dv * (a * (config.e_exc_mV - v_inf) / g_tot + common)
    ct_g_inh = ct_dv * (a * (config.e_inh_mV - v_inf) / g_tot + common)
    ct_v = ct_u - ct_dv * a
    return ct_v, ct_g_exc, ct_g_inh, np.zeros(ref.shape, jax.dtypes.float0)


population_update.defvjp(_population_fwd, _population_bwd)


def advance_population(pop: PopState, g_exc, g_inh, cell: CellParams, config) -> PopState:
    v, ref, spikes = population_update(pop.v_mV, g_exc, g_inh, pop.refractory_steps, cell, config)
    return PopState(v, g_exc, g_inh, ref, spikes)


def readout(weights: Weights, out_v, spikes_e, config: NetworkConfig):
    """Step 4: leaky readout driven by E spikes; returns (v before reset, v after reset).

        v = beta v_out + (1 - beta)/dt s_E W_out,   v_out <- v - theta s_out,   s_out = H(v - theta)

    With ``config.out_reset_gradient == "detached"`` the reset passes no gradient
    (d v_out / d v = 1); with ``"surrogate"``, s_out carries the network's surrogate
    derivative H', so that d v_out / d v = 1 - theta H'(v - theta).
    """
    if weights.w_out is None:
        return out_v, out_v
    beta = math.exp(-config.dt_ms / config.tau_out_ms)
    drive = _synaptic_input(spikes_e, weights.w_out, config)
    v = beta * out_v + (1.0 - beta) / config.dt_ms * drive
    if config.out_reset_gradient == "surrogate":
        spike = SURROGATE_FNS[config.surrogate]
        fired = spike(v - config.out_threshold, config.surrogate_slope_per_mV)
    else:
        fired = jax.lax.stop_gradient((v >= config.out_threshold).astype(v.dtype))
    return v, v - fired * config.out_threshold


def step(weights: Weights, state: NetState, inputs_t, config: NetworkConfig, record=()):
    """Advance every population by one step; return ``(new_state, {name: value})``."""
    (g_exc_e, g_inh_e), (g_exc_i, g_inh_i) = conductances(weights, state, inputs_t, config)
    e = advance_population(state.e, g_exc_e, g_inh_e, config.cell_e, config)
    i = advance_population(state.i, g_exc_i, g_inh_i, config.cell_i, config)
    v_out, out_after_reset = readout(weights, state.out_v, e.spikes, config)
    acc = Accumulators(
        state.acc.count_e + e.spikes, state.acc.count_i + i.spikes, state.acc.out_v_sum + v_out
    )
    new_state = NetState(e, i, out_after_reset, acc)
    return new_state, _record(new_state, v_out, record)


def _record(state: NetState, v_out, names) -> dict:
    e, i = state.e, state.i
    table = {
        "spikes_e": lambda: e.spikes.astype(bool),
        "spikes_i": lambda: i.spikes.astype(bool),
        "v_e": lambda: e.v_mV,
        "v_i": lambda: i.v_mV,
        "g_exc_e": lambda: e.g_exc_uS,
        "g_inh_e": lambda: e.g_inh_uS,
        "g_exc_i": lambda: i.g_exc_uS,
        "g_inh_i": lambda: i.g_inh_uS,
        "rate_e": lambda: e.spikes.mean(axis=-1),
        "rate_i": lambda: i.spikes.mean(axis=-1),
        "out_v": lambda: v_out,
    }
    unknown = set(names) - set(table)
    if unknown:
        raise ValueError(f"cannot record {sorted(unknown)}; choose from {RECORDABLE}")
    return {name: table[name]() for name in names}


def simulate(
    weights, state, inputs, config: NetworkConfig, record=(), checkpoint_every=None, n_steps=None
):
    """Scan :func:`step` over the input rows; return ``(final_state, records)``.

    ``inputs`` is a pair ``(sample, channel)`` of (T, K) int arrays (an
    :class:`ei_sim.data.encoding.InputEvents`, the event-driven path), a dense (T, B, n_in) 0/1
    array (a matrix product per step), or ``None`` for no input (then ``n_steps`` is
    required). Records are stacked over time (leading axis T). ``checkpoint_every = L``
    rematerialises the backward pass in chunks of ``L`` steps (memory O(T/L + L) states
    instead of O(T)).
    """
    if inputs is None:
        xs = None
        if n_steps is None:
            raise ValueError("simulate needs n_steps when there is no input")
    elif isinstance(inputs, tuple):
        xs = (jnp.asarray(inputs[0]), jnp.asarray(inputs[1]))
        n_steps = xs[0].shape[0]
    else:
        xs = jnp.asarray(inputs)
        n_steps = xs.shape[0]

    def body(carry, x):
        return step(weights, carry, x, config, record)

    if not checkpoint_every or checkpoint_every >= n_steps:
        return jax.lax.scan(body, state, xs, length=n_steps)
    return _chunked_scan(body, state, xs, n_steps, int(checkpoint_every))


def _chunked_scan(body, state, xs, n_steps, chunk):
    n_full, rest = divmod(n_steps, chunk)

    @jax.checkpoint
    def run_chunk(carry, x_chunk):
        return jax.lax.scan(body, carry, x_chunk, length=chunk)

    def split(tree, lo, hi, shape):
        return jax.tree.map(lambda a: a[lo:hi].reshape(shape + a.shape[1:]), tree)

    head = None if xs is None else split(xs, 0, n_full * chunk, (n_full, chunk))
    state, rec = jax.lax.scan(run_chunk, state, head, length=n_full)
    rec = jax.tree.map(lambda a: a.reshape((n_full * chunk,) + a.shape[2:]), rec)
    if rest:
        tail = None if xs is None else jax.tree.map(lambda a: a[n_full * chunk :], xs)
        state, rec_tail = jax.lax.scan(body, state, tail, length=rest)
        rec = jax.tree.map(lambda a, b: jnp.concatenate([a, b]), rec, rec_tail)
    return state, rec


simulate_jit = jax.jit(
    simulate, static_argnames=("config", "record", "checkpoint_every", "n_steps")
)


def logits(state: NetState, n_steps: int) -> jax.Array:
    """Class scores: the time mean of the readout potential (before reset)."""
    return state.acc.out_v_sum / n_steps


def rates_Hz(state: NetState, config: NetworkConfig, n_steps: int):
    """Mean E and I rates (Hz) per sample from the trial's spike counts."""
    seconds = n_steps * config.dt_ms * 1e-3
    return state.acc.count_e.mean(-1) / seconds, state.acc.count_i.mean(-1) / seconds
