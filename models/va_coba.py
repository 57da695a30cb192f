"""Vogels-Abbott COBA benchmark network (Brette et al. 2007, benchmark 1) on the ei-sim engine.

4,000 cells (3,200 E, 800 I) with all four blocks random at p = 0.02. Conductances are in
units of the leak (g_L = 1 uS, C = 20 nF, so tau_m = 20 ms): each E spike adds w_e = 0.6,
each I spike w_i = 6.7. tau_e = 5 ms, tau_i = 10 ms, E_L = V_reset = -60 mV, V_th = -50 mV,
E_exc = 0, E_inh = -80 mV, refractory 5 ms, no external input. Initial state: V uniform in
[-60, -50] mV, g_e ~ N(4, 1.5), g_i ~ N(20, 12). Weights and initial state are drawn on the
host from NumPy generators seeded by the JAX key (no compiled program), the connectivity
directly in compressed form (:func:`ei_sim.sim.sparse.bernoulli_sparse`: work proportional to the
synapses). The blocks are stored as
:class:`ei_sim.sim.sparse.SparseBlock` when the native event kernel is available (``sparse=None``,
the default; propagation then costs spikes x fan-out), else as dense arrays, which the pure-JAX
event path handles faster. ``sparse=True/False`` forces either; the network is the same.

Where the native kernels build, the preset's cells use the native cell kernel
(``cell_kernel = "native"``): ``ei-sim simulate`` then runs the network in the native loop
(:mod:`ei_sim.sim.hostrun`, no JAX import), whose spikes are the engine's with that kernel. The
module imports no JAX: the keys' words are read with NumPy (a typed JAX key goes through JAX).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ei_sim.sim import hostrun, native
from ei_sim.sim.blocks import bernoulli_sparse, host_dense
from ei_sim.sim.config import CellParams, NetworkConfig
from ei_sim.sim.model import Preset
from ei_sim.sim.state import Accumulators, NetState, PopState, Weights, default_float

VA_CELL = CellParams(c_nF=20.0, g_leak_uS=1.0, t_ref_ms=5.0)


@dataclass(frozen=True)
class VACoba:
    name: str
    config: NetworkConfig
    p_connect: float = 0.02
    w_e_uS: float = 0.6
    w_i_uS: float = 6.7
    g_e0_mean: float = 4.0
    g_e0_std: float = 1.5
    g_i0_mean: float = 20.0
    g_i0_std: float = 12.0
    sparse: bool | None = None
    init_on_host: ClassVar[bool] = True  # weights and state drawn with NumPy (no jit)

    def replace(self, **changes) -> VACoba:
        fields = {f.name for f in dataclasses.fields(NetworkConfig)}
        config = dataclasses.replace(
            self.config, **{k: v for k, v in changes.items() if k in fields}
        )
        own = {k: v for k, v in changes.items() if k not in fields}
        return dataclasses.replace(self, config=config, **own)

    def init_weights(self, key) -> Weights:
        """The four blocks, Bernoulli(p_connect) with weights w_e_uS (from E) and w_i_uS."""
        c = self.config
        words = _key_words(key)
        sparse = native.library() is not None if self.sparse is None else self.sparse
        store = (lambda b: b) if sparse else host_dense

        def block(index, shape, weight):
            rng = np.random.default_rng(np.random.SeedSequence([*words, index]))
            return store(bernoulli_sparse(rng, shape, self.p_connect, weight))

        return Weights(
            w_ee=block(0, (c.n_e, c.n_e), self.w_e_uS),
            w_ei=block(1, (c.n_e, c.n_i), self.w_e_uS),
            w_ie=block(2, (c.n_i, c.n_e), self.w_i_uS),
            w_ii=block(3, (c.n_i, c.n_i), self.w_i_uS),
        )

    def init_state(self, key, batch: int) -> NetState:
        """V uniform in ``config.v_init_range_mV``, g_e ~ N(g_e0_mean, g_e0_std), g_i ~
        N(g_i0_mean, g_i0_std) per cell and trial; drawn with NumPy (no compiled program)."""
        c = self.config
        rng = np.random.default_rng(np.random.SeedSequence([*_key_words(key), 4]))
        dtype = default_float()  # float32 unless JAX's x64 is on
        low, high = c.v_init_range_mV

        def population(n: int) -> PopState:
            shape = (batch, n)
            v = rng.uniform(low, high, shape)
            g_e = self.g_e0_mean + self.g_e0_std * rng.standard_normal(shape)
            g_i = self.g_i0_mean + self.g_i0_std * rng.standard_normal(shape)
            zeros = np.zeros(shape, dtype)
            return PopState(v.astype(dtype), g_e.astype(dtype), g_i.astype(dtype),
                            np.zeros(shape, np.int32), zeros)  # fmt: skip

        e, i = population(c.n_e), population(c.n_i)
        none = np.zeros((batch, 0), dtype)
        acc = Accumulators(np.zeros((batch, c.n_e), dtype), np.zeros((batch, c.n_i), dtype), none)
        return NetState(e, i, none, acc)


def _key_words(key) -> list[int]:
    """The 32-bit words of a JAX key (raw or typed), to seed NumPy generators."""
    if getattr(key, "dtype", None) == np.uint32:  # a raw key: its words as they are
        return np.asarray(key, np.uint32).ravel().tolist()
    import jax

    return np.asarray(jax.random.key_data(key), np.uint32).ravel().tolist()


def va_coba(**changes) -> VACoba:
    config = NetworkConfig(
        name="va_coba", n_in=0, n_e=3200, n_i=800, n_out=0, cell_e=VA_CELL, cell_i=VA_CELL,
        e_leak_mV=-60.0, v_reset_mV=-60.0, v_th_mV=-50.0, e_exc_mV=0.0, e_inh_mV=-80.0,
        tau_ampa_ms=5.0, tau_gaba_ms=10.0, t_ms=1000.0,
        cell_kernel="native" if hostrun.available() else "auto",
    )  # fmt: skip
    base = VACoba(name="va_coba", config=config)
    return base.replace(**changes) if changes else base


PRESET = Preset(
    "va_coba",
    va_coba,
    "the Vogels-Abbott benchmark network (3,200 E + 800 I, p = 0.02, no input)",
    family="network",
    settings=False,
)
