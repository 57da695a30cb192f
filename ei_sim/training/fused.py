"""The training fast path: the network step fused into native calls, with its adjoint.

The model is :func:`ei_sim.sim.engine.step`, unchanged; only the way a trial is run differs. The
engine's path runs each of a trial's 2,000 steps as a few dozen small XLA kernels (and as
many again in the checkpointed backward pass, plus the stacking of its stored states). Here:

* forward: one native call (``network_forward`` in ``ei_sim/sim/native/network.cc``) runs a
  chunk of ``L`` steps for the whole batch, each trial's state kept in cache across the chunk;
  only the chunk-start states are kept for the backward pass (memory O(T/L) states);
* backward, chunk by chunk from the last: the chunk is rerun by the same call, which now also
  records per step what the adjoint needs (V before the cell update, the conductances after
  the synaptic update, and one byte of flags per cell: whether it could fire and whether it
  fired); then, step by step from the last, one native call
  (``network_adjoint_step``) takes the readout, membrane, spike and conductance-decay adjoint
  of both populations, adds the step's terms of the W_in and W_out gradients (from the input
  events and the E spikes, in place) and forms the two dense products that carry the
  cotangents back through the loop, with the recurrent blocks packed once per backward pass
  (:func:`pack_block`, ``ei_sim/sim/native/dense.h``),

      lambda_s_E(t-1) = Lambda_gexc_I(t) W_EI^T + Lambda_gexc_E(t) W_EE^T
      lambda_s_I(t-1) = Lambda_ginh_E(t) W_IE^T + Lambda_ginh_I(t) W_II^T

  (Lambda: the total cotangent of a conductance after the step's synaptic update); they are
  dense because the surrogate derivative is non-zero for every cell, and they are the floor
  of exact BPTT.

The gradient is the exact gradient of the engine's path (the same equations, float rounding
aside: tested against it and against central differences). It is taken with respect to W_in
and W_out (the trained blocks of the recipe) and the initial state; the recurrent blocks are
constants here (asking for their gradient raises: train them with the engine's path).
:func:`applicable` says when the path can run; :func:`ei_sim.training.objective.forward_loss` takes
it
when it can, unless ``EI_SIM_FUSED=0``.
"""

from __future__ import annotations

import math
import os
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from jax.custom_derivatives import SymbolicZero

from ei_sim.sim import native
from ei_sim.sim.engine import Accumulators, NetState, PopState, Weights
from ei_sim.sim.propagate import resolve_method
from ei_sim.sim.surrogate import SURROGATE_FNS

RECURRENT = ("w_ee", "w_ei", "w_ie", "w_ii")


def enabled() -> bool:
    """False when ``EI_SIM_FUSED`` is 0/false/no/off (use the engine's path everywhere)."""
    return os.environ.get("EI_SIM_FUSED", "1").strip().lower() not in ("0", "false", "no", "off")


def applicable(weights: Weights, config, inputs) -> bool:
    """Whether a trial of this network can run on the fused path.

    It needs the native kernels (and a config that does not ask for the pure-JAX paths:
    ``propagation`` "auto"/"native", ``cell_kernel`` "auto"/"native"), input event lists,
    dense recurrent blocks (or absent ones), W_in and W_out present, and a known surrogate.
    """
    if not enabled() or not isinstance(inputs, tuple):
        return False
    if config.propagation not in ("auto", "native") or config.cell_kernel not in ("auto", "native"):
        return False
    if config.surrogate not in native.SURROGATE_CODES or config.surrogate not in SURROGATE_FNS:
        return False
    if weights.w_in is None or weights.w_out is None:
        return False
    for name in RECURRENT:
        w = getattr(weights, name)
        if w is not None and (not hasattr(w, "ndim") or w.ndim != 2):
            return False  # a SparseBlock, or a stacked (vmapped) block
    if weights.w_in.ndim != 2 or weights.w_out.ndim != 2:
        return False
    return resolve_method(config.propagation) == "native"


def network_attrs(config) -> dict:
    """The constants of :func:`ei_sim.sim.engine.step` as FFI attributes."""
    beta = math.exp(-config.dt_ms / config.tau_out_ms)
    values = dict(
        e_g_leak_uS=config.cell_e.g_leak_uS, e_c_nF=config.cell_e.c_nF,
        i_g_leak_uS=config.cell_i.g_leak_uS, i_c_nF=config.cell_i.c_nF,
        e_leak_mV=config.e_leak_mV, e_exc_mV=config.e_exc_mV, e_inh_mV=config.e_inh_mV,
        dt_ms=config.dt_ms, v_th_mV=config.v_th_mV, v_reset_mV=config.v_reset_mV,
        v_floor_mV=config.v_floor_mV,
        d_ampa=math.exp(-config.dt_ms / config.tau_ampa_ms),
        d_gaba=math.exp(-config.dt_ms / config.tau_gaba_ms),
        beta=beta, kappa=(1.0 - beta) / config.dt_ms, out_threshold=config.out_threshold,
    )  # fmt: skip
    attrs = {name: np.float64(value) for name, value in values.items()}
    attrs["e_n_ref"] = np.int32(config.refractory_steps(config.cell_e))
    attrs["i_n_ref"] = np.int32(config.refractory_steps(config.cell_i))
    return attrs


def _block(w, dtype):
    return jnp.zeros((0, 0), dtype) if w is None else w.astype(dtype)


def forward_chunk(state: NetState, blocks, sample, channel, config, record: bool, parallel: bool,
                  rates: bool = False):  # fmt: skip
    """Run ``L = sample.shape[0]`` steps natively; return ``(state after, stacks)``, with
    ``rates`` ``(state after, stacks, (rate_E, rate_I))``: each population's fraction of cells
    that fired, per step, (L, B) each.

    ``blocks`` = (w_in, w_ee, w_ei, w_ie, w_ii, w_out), absent ones as (0, 0) arrays. With
    ``record``, ``stacks`` = (V_E, g_exc_E, g_inh_E, flags_E, V_I, g_exc_I, g_inh_I, flags_I,
    u), the first eight (L, B, n) (see ``network.cc``; flags uint8: bit 0 open, bit 1 fired)
    and u (L, B, n_out) the readout before its reset; without it, arrays with no elements.
    """
    native._require()
    leaves = jax.tree.leaves(state)
    dtype = state.e.v_mV.dtype
    batch, n_e = state.e.v_mV.shape
    n_i = state.i.v_mV.shape[1]
    steps = sample.shape[0] if record else 0
    out = [jax.ShapeDtypeStruct(x.shape, x.dtype) for x in leaves]
    for n, kind in ((n_e, dtype), (n_e, dtype), (n_e, dtype), (n_e, np.uint8),
                    (n_i, dtype), (n_i, dtype), (n_i, dtype), (n_i, np.uint8)):  # fmt: skip
        out.append(jax.ShapeDtypeStruct((steps, batch, n), kind))
    rate_steps = sample.shape[0] if rates else 0
    out += [jax.ShapeDtypeStruct((rate_steps, batch), dtype)] * 2
    out.append(jax.ShapeDtypeStruct((steps, batch, state.out_v.shape[1]), dtype))
    # the state after the chunk is written over the state before it (network.cc works in place)
    aliases = {k: k for k in range(len(leaves))}
    call = jax.ffi.ffi_call("ei_sim_network_forward", out, vmap_method="sequential",
                            input_output_aliases=aliases)  # fmt: skip
    results = call(
        *leaves, *blocks, sample.astype(np.int32), channel.astype(np.int32),
        **network_attrs(config), record=np.int32(record), parallel=np.int32(parallel),
        rates=np.int32(rates),
    )  # fmt: skip
    new_state = jax.tree.unflatten(jax.tree.structure(state), results[: len(leaves)])
    n = len(leaves)
    stacks = (*results[n : n + 8], results[n + 10])
    if rates:
        return new_state, stacks, tuple(results[n + 8 : n + 10])
    return new_state, stacks


# network_adjoint_step's results written in place of its operands: the carried cotangents
# (lambda_V, Lambda_g_exc, Lambda_g_inh of each population, lambda_out_v; operands 9-11, 13-15,
# 17 -> results 0-6), the weight gradients (24, 25 -> 8, 9) and the spikes' cotangents of the
# previous step (12, 16 -> 10, 11). Without them XLA copies the carry into the loop's buffers
# every step (about 2 MB per step and device at batch 128).
ADJOINT_ALIASES = {9: 0, 10: 1, 11: 2, 13: 3, 14: 4, 15: 5, 17: 6, 24: 8, 25: 9, 12: 10, 16: 11}
PANEL = 16  # rows of a block per packed panel (ei_sim/sim/native/dense.h)


def pack_block(w, dtype):
    """A recurrent block W (n_from, n_to) packed for the adjoint's products lambda W^T:
    panels of 16 rows, ``P[p, k, q] = W[16 p + q, k]`` (rows past n_from zero), shape
    (ceil(n_from / 16), n_to, 16); an absent block as an empty (0, 0, 16) array."""
    if w is None or w.size == 0:
        return jnp.zeros((0, 0, PANEL), dtype)
    n_from, n_to = w.shape
    panels = -(-n_from // PANEL)
    padded = jnp.zeros((panels * PANEL, n_to), dtype).at[:n_from].set(w.astype(dtype))
    return padded.reshape(panels, PANEL, n_to).transpose(0, 2, 1)


def packed_product(a, packed, n_from: int, parallel: bool = True, scalar: bool = False):
    """``a @ W^T`` by the adjoint's product kernel (``dense.h``), W (n_from, n_to) given as
    :func:`pack_block` packs it and ``a`` (M, n_to): the same arithmetic as the backward
    pass's products (for tests and ``benchmarks/bench_train.py``). ``scalar``: the kernel's
    generic code instead of its vector code (the same bits where the CPU has FMA)."""
    native._require()
    out = jax.ShapeDtypeStruct((a.shape[0], n_from), a.dtype)
    call = jax.ffi.ffi_call("ei_sim_packed_product", out, vmap_method="sequential")
    return call(a, packed.astype(a.dtype), n=np.int32(n_from), parallel=np.int32(parallel),
                scalar=np.int32(scalar))


def adjoint_step(t, stacks, carry, consts, readout, grads, events, packed, config,
                 parallel: bool, reset=None):  # fmt: skip
    """The native adjoint of step ``t`` of a recorded chunk (see ``network.cc``), with the
    step's terms added to the weight gradients ``grads`` = (dL/dW_in, dL/dW_out) in place;
    ``packed``: the blocks (W_EI, W_EE, W_IE, W_II) as :func:`pack_block` gives them. Returns
    the new carry's lambda_V, Lambda_g_exc, Lambda_g_inh of E then I, lambda_out_v, lambda_u,
    the two gradients, and the spikes' cotangents of the previous step (lambda_s_E,
    lambda_s_I).

    ``readout`` = (q_sum, q_final, (alpha, gamma)): the readout's share of the E spikes'
    cotangent is ``alpha q_sum + gamma q_final`` (:func:`readout_rows`). ``reset`` = (u,
    W_out^T) for a readout reset that passes the surrogate gradient (u: the chunk's recorded
    readout before its reset): the call then forms that share step by step and does not read
    ``readout``'s rows."""
    v_e, ge_e, gi_e, flags_e, v_i, ge_i, gi_i, flags_i = stacks[:8]
    out = [jax.ShapeDtypeStruct(x.shape, x.dtype) for x in (*carry[:3], *carry[4:7], carry[8])]
    out.append(jax.ShapeDtypeStruct(carry[8].shape, carry[8].dtype))
    out += [jax.ShapeDtypeStruct(g.shape, g.dtype) for g in grads]
    out += [jax.ShapeDtypeStruct(carry[k].shape, carry[k].dtype) for k in (3, 7)]
    call = jax.ffi.ffi_call("ei_sim_network_adjoint_step", out, vmap_method="sequential",
                            input_output_aliases=ADJOINT_ALIASES)  # fmt: skip
    empty = jnp.zeros((0,), carry[8].dtype)
    return call(
        jnp.asarray(t, np.int32), v_e, ge_e, gi_e, flags_e, v_i, ge_i, gi_i, flags_i,
        *carry, *consts, *readout, *grads, events[0].astype(np.int32),
        events[1].astype(np.int32), *(reset if reset is not None else (empty, empty)),
        *packed, **network_attrs(config),
        surrogate=np.int32(native.SURROGATE_CODES[config.surrogate]),
        slope_per_mV=np.float64(config.surrogate_slope_per_mV),
        damping=np.float64(config.grad_damping), parallel=np.int32(parallel),
    )  # fmt: skip


def readout_rows(w_out, c_sum, ct_out_v_end, config):
    """``(q_sum, q_final)`` = kappa (c_sum, lambda_out_v(end)) W_out^T, each (B, n_E).

    The readout u = beta out_v + kappa s_E W_out is linear and, with a detached reset
    (``out_reset_gradient`` "detached"), its reset carries no gradient, so at n steps before
    the end lambda_u = alpha_n c_sum + gamma_n lambda_out_v(end), with alpha_n = 1 + beta +
    ... + beta^n and gamma_n = beta^n, and its share of the E spikes' cotangent,
    kappa lambda_u W_out^T, is alpha_n q_sum + gamma_n q_final. (With the surrogate reset the
    backward pass forms that row step by step instead.)
    """
    beta = math.exp(-config.dt_ms / config.tau_out_ms)
    kappa = (1.0 - beta) / config.dt_ms
    return kappa * jnp.dot(c_sum, w_out.T), kappa * jnp.dot(ct_out_v_end, w_out.T)


def run_with_rates(weights: Weights, state0: NetState, events, config, chunk: int = 20,
                   parallel: bool = True):  # fmt: skip
    """The final state and each population's fraction of cells firing per step, ``(final,
    {"rate_e": (T, B), "rate_i": (T, B)})``, of trials run on the fused path's forward pass
    (not differentiable): equal to ``ei_sim.sim.engine.simulate(..., record=("rate_e",
    "rate_i"))``, the evaluation's forward pass, at a fraction of its cost."""
    sample, channel = (jnp.asarray(x, np.int32) for x in events)
    dtype = state0.e.v_mV.dtype
    blocks = tuple(_block(getattr(weights, k), dtype) for k in ("w_in", *RECURRENT, "w_out"))
    state, _, _, (rate_e, rate_i) = _run(state0, blocks, sample, channel, config, chunk,
                                         parallel, False, rates=True)  # fmt: skip
    return state, {"rate_e": rate_e, "rate_i": rate_i}


def _split_chunks(x, chunk: int):
    """(T, K) -> ((n_full, chunk, K), (rest, K))."""
    n_full = x.shape[0] // chunk
    head = x[: n_full * chunk].reshape((n_full, chunk) + x.shape[1:])
    return head, x[n_full * chunk :]


def _run(state, blocks, sample, channel, config, chunk, parallel, keep_starts: bool,
         rates: bool = False):  # fmt: skip
    """The whole trial, chunk by chunk: ``(final state, chunk-start states (with
    ``keep_starts``), the last chunk's start, per-step rates (rate_E, rate_I), each (T, B),
    with ``rates``)``."""
    head_s, tail_s = _split_chunks(sample, chunk)
    head_c, tail_c = _split_chunks(channel, chunk)

    def body(carry, xs):
        new, _, *r = forward_chunk(carry, blocks, xs[0], xs[1], config, False, parallel, rates)
        return new, (carry if keep_starts else None, r[0] if rates else None)

    state, (starts, head_rates) = jax.lax.scan(body, state, (head_s, head_c))
    tail_start = state
    parts = [tuple(x.reshape((-1,) + x.shape[2:]) for x in head_rates)] if rates else []
    if tail_s.shape[0]:
        state, _, *r = forward_chunk(state, blocks, tail_s, tail_c, config, False, parallel,
                                     rates)  # fmt: skip
        parts += r
    all_rates = tuple(jnp.concatenate(x) for x in zip(*parts, strict=True)) if rates else None
    return state, starts, tail_start, all_rates


@partial(jax.custom_vjp, nondiff_argnums=(4, 5, 6))
def _trial(weights: Weights, state0: NetState, sample, channel, config, chunk, parallel):
    dtype = state0.e.v_mV.dtype
    blocks = tuple(_block(getattr(weights, k), dtype) for k in ("w_in", *RECURRENT, "w_out"))
    return _run(state0, blocks, sample, channel, config, chunk, parallel, False)[0]


def _trial_fwd(weights, state0, sample, channel, config, chunk, parallel):
    for name in RECURRENT:
        w = getattr(weights, name)
        if w is not None and w.perturbed:
            raise NotImplementedError(
                f"the fused training path differentiates W_in and W_out only, not {name}: "
                "set EI_SIM_FUSED=0 (or propagation='events') to train the recurrent blocks"
            )
    weights = jax.tree.map(lambda x: x.value, weights)
    state0 = jax.tree.map(lambda x: x.value, state0)
    sample, channel = sample.value, channel.value
    dtype = state0.e.v_mV.dtype
    blocks = tuple(_block(getattr(weights, k), dtype) for k in ("w_in", *RECURRENT, "w_out"))
    final, starts, tail_start, _ = _run(state0, blocks, sample, channel, config, chunk,
                                        parallel, True)  # fmt: skip
    return final, (blocks, starts, tail_start, sample, channel, state0)


def _dense_ct(ct, like):
    return jnp.zeros_like(like) if isinstance(ct, SymbolicZero) else ct


def _trial_bwd(config, chunk, parallel, residuals, ct_final):
    blocks, starts, tail_start, sample, channel, state0 = residuals
    w_in, w_ee, w_ei, w_ie, w_ii, w_out = blocks
    e, i = state0.e, state0.i
    d_ampa = math.exp(-config.dt_ms / config.tau_ampa_ms)
    d_gaba = math.exp(-config.dt_ms / config.tau_gaba_ms)
    ct = jax.tree.map(_dense_ct, ct_final, state0, is_leaf=lambda x: isinstance(x, SymbolicZero))
    consts = tuple(ct.acc)
    q_sum, q_final = readout_rows(w_out, consts[2], ct.out_v, config)
    beta = math.exp(-config.dt_ms / config.tau_out_ms)
    surrogate_reset = config.out_reset_gradient == "surrogate"

    # The blocks packed once here, outside the loops: a general matrix kernel packs its
    # constant operand again on every call (about a tenth of the products' time).
    packed = tuple(pack_block(w, w_out.dtype) for w in (w_ei, w_ee, w_ie, w_ii))

    w_out_t = jnp.asarray(w_out.T) if surrogate_reset else None

    def adjoint_chunk(carry, grads, start, sample_c, channel_c):
        _, stacks = forward_chunk(start, blocks, sample_c, channel_c, config, True, parallel)

        def step_back(state, t):
            carry, (g_in, g_out, ag) = state
            *lam, lu, g_in, g_out, ls_e, ls_i = adjoint_step(
                t, stacks, carry, consts, (q_sum, q_final, ag), (g_in, g_out),
                (sample_c, channel_c), packed, config, parallel,
                (stacks[8], w_out_t) if surrogate_reset else None,
            )  # fmt: skip
            # alpha_{n+1} = 1 + beta alpha_n, gamma_{n+1} = beta gamma_n
            ag = jnp.stack([1 + beta * ag[0], beta * ag[1]])
            lv_e, lge_e, lgi_e, lv_i, lge_i, lgi_i, lout = lam
            new = (lv_e, lge_e, lgi_e, ls_e, lv_i, lge_i, lgi_i, ls_i, lout)
            return (new, (g_in, g_out, ag)), None

        steps = jnp.arange(sample_c.shape[0], dtype=np.int32)
        (carry, grads), _ = jax.lax.scan(step_back, (carry, grads), steps, reverse=True)
        return carry, grads

    # the final state's cotangents enter as those of the state after the last step (the
    # conductances' as "next-step totals", which the adjoint multiplies by the decay)
    carry = (
        ct.e.v_mV, ct.e.g_exc_uS / d_ampa, ct.e.g_inh_uS / d_gaba, ct.e.spikes,
        ct.i.v_mV, ct.i.g_exc_uS / d_ampa, ct.i.g_inh_uS / d_gaba, ct.i.spikes, ct.out_v,
    )  # fmt: skip
    # (dL/dW_in, dL/dW_out, (alpha, gamma) of the last step: n = 0)
    grads = (jnp.zeros_like(w_in), jnp.zeros_like(w_out), jnp.ones((2,), w_out.dtype))
    head_s, tail_s = _split_chunks(sample, chunk)
    head_c, tail_c = _split_chunks(channel, chunk)
    if tail_s.shape[0]:
        carry, grads = adjoint_chunk(carry, grads, tail_start, tail_s, tail_c)

    def body(acc, xs):
        start, s_c, c_c = xs
        return adjoint_chunk(acc[0], acc[1], start, s_c, c_c), None

    (carry, grads), _ = jax.lax.scan(body, (carry, grads), (starts, head_s, head_c), reverse=True)
    lv_e, lge_e, lgi_e, ls_e, lv_i, lge_i, lgi_i, ls_i, lout = carry
    float0 = lambda x: np.zeros(x.shape, jax.dtypes.float0)  # noqa: E731
    ct_state = NetState(
        PopState(lv_e, d_ampa * lge_e, d_gaba * lgi_e, float0(e.refractory_steps), ls_e),
        PopState(lv_i, d_ampa * lge_i, d_gaba * lgi_i, float0(i.refractory_steps), ls_i),
        lout, Accumulators(*consts),
    )  # fmt: skip
    ct_weights = Weights(
        w_in=grads[0], w_out=grads[1],
        **{k: None for k in RECURRENT},
    )  # fmt: skip
    return ct_weights, ct_state, float0(sample), float0(channel)


_trial.defvjp(_trial_fwd, _trial_bwd, symbolic_zeros=True)


def trial(weights: Weights, state0: NetState, events, config, chunk: int = 50,
          parallel: bool = True) -> NetState:  # fmt: skip
    """The final state (with its accumulators: spike counts, summed readout) of a trial run
    on the fused path; equal to ``ei_sim.sim.engine.simulate(...)[0]``.

    Differentiable in ``weights.w_in``, ``weights.w_out`` and ``state0`` (see the module
    docstring); ``chunk``: steps per native call and per stored state (memory O(T/chunk)
    states plus one chunk's recorded stacks); ``parallel``: split the batch over XLA's CPU
    threads inside each call (off when the batch is already split over devices).
    """
    sample, channel = (jnp.asarray(x, np.int32) for x in events)
    return _trial(weights, state0, sample, channel, config, int(chunk), bool(parallel))
