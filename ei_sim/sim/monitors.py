"""Monitors: what a simulation keeps, recorded inside the compiled loop, chunk by chunk.

As Brian2's ``SpikeMonitor``, ``StateMonitor`` and ``PopulationRateMonitor``:

* spikes of each population as events ``(step, trial, index)``: memory proportional to the
  number of spikes. Inside the loop a step's spikes are packed into bits (32 cells per
  ``uint32`` word, ``word[b, w] = sum_j s[b, 32 w + j] 2^j``); the host decodes a chunk by
  visiting only its nonzero words, so decoding costs O(spikes), not O(steps x cells);
* :class:`StateMonitor`: ``v_mV``, ``g_exc_uS``, ``g_inh_uS`` of chosen cells, every
  ``every_steps`` steps (sample ``j`` is the state after step ``j * every_steps``, the row
  ``j * every_steps`` of the full trace ``simulate(..., record=("v_e",))``);
* population activity (fraction of the population spiking per step, averaged over bins of
  ``bin_steps`` steps), counted on the host from the events.

A run is a sequence of chunks of ``chunk_steps`` steps; every chunk is the same compiled
program (:func:`run_chunk`, the step count is an argument, so the last, shorter chunk needs
no other program), so memory is bounded by one chunk's buffers whatever the length of the
run. :mod:`ei_sim.sim.recorder` drives the chunks. This module imports JAX only when a chunk
is compiled (the monitors themselves and the host-side decoding need NumPy alone).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from ei_sim.sim.config import NetworkConfig
from ei_sim.sim.state import NetState, Weights

POPULATIONS = ("e", "i")
TRACE_VARIABLES = ("v_mV", "g_exc_uS", "g_inh_uS")
WORD_BITS = 32


@dataclass(frozen=True)
class StateMonitor:
    """Traces of ``variables`` of the ``cells`` of one population, every ``every_steps`` steps."""

    population: str
    cells: tuple[int, ...]
    variables: tuple[str, ...] = ("v_mV",)
    every_steps: int = 1

    def __post_init__(self):
        if self.population not in POPULATIONS:
            raise ValueError(f"state monitor population must be 'e' or 'i', got "
                             f"{self.population!r}")  # fmt: skip
        unknown = [v for v in self.variables if v not in TRACE_VARIABLES]
        if unknown or not self.variables:
            raise ValueError(f"state monitor variables must be among {TRACE_VARIABLES}, got "
                             f"{self.variables!r}")  # fmt: skip
        if not self.cells:
            raise ValueError("a state monitor needs at least one cell")
        if not (isinstance(self.every_steps, int) and self.every_steps >= 1):
            raise ValueError(f"every_steps must be a positive integer, got {self.every_steps!r}")

    def names(self) -> list[str]:
        return [f"{self.population}.{v}" for v in self.variables]


@dataclass(frozen=True)
class Monitors:
    """What a chunked run records (static: part of the compiled program's identity).

    ``spikes``: populations whose spikes are recorded as events (and counted into population
    activity with bins of ``bin_steps`` steps); ``states``: :class:`StateMonitor` s, each
    variable of a population in at most one of them.
    """

    spikes: tuple[str, ...] = POPULATIONS
    states: tuple[StateMonitor, ...] = ()
    bin_steps: int = 1

    def __post_init__(self):
        if any(p not in POPULATIONS for p in self.spikes):
            raise ValueError(f"spike monitor populations must be among {POPULATIONS}, got "
                             f"{self.spikes!r}")  # fmt: skip
        if not (isinstance(self.bin_steps, int) and self.bin_steps >= 1):
            raise ValueError(f"bin_steps must be a positive integer, got {self.bin_steps!r}")
        names = [key for m in self.states for key in m.names()]
        if len(set(names)) != len(names):
            raise ValueError(f"two state monitors record the same variable ({names}); "
                             "merge their cells")  # fmt: skip

    def check(self, config: NetworkConfig) -> None:
        """ValueError (one line) when a monitored cell lies outside its population."""
        for m in self.states:
            n = config.n_e if m.population == "e" else config.n_i
            bad = [c for c in m.cells if not (isinstance(c, int | np.integer) and 0 <= c < n)]
            if bad:
                raise ValueError(f"recorded {m.population.upper()} cell {bad[0]} is out of range; "
                                 f"the population has cells 0-{n - 1}")  # fmt: skip

    def step_multiple(self) -> int:
        """Chunk lengths are multiples of this, so that samples and bins never straddle chunks."""
        return math.lcm(self.bin_steps, *(m.every_steps for m in self.states))


def n_words(n_cells: int) -> int:
    return -(-n_cells // WORD_BITS)


def pack_spikes(spikes):
    """(B, N) 0/1 spikes -> (B, ceil(N/32)) uint32 words, bit ``j`` of word ``w`` = cell 32w+j."""
    import jax.numpy as jnp

    batch, n = spikes.shape
    words = n_words(n)
    fired = (spikes > 0).astype(jnp.uint32)
    fired = jnp.pad(fired, ((0, 0), (0, words * WORD_BITS - n)))
    shifts = jnp.arange(WORD_BITS, dtype=jnp.uint32)
    return jnp.sum(fired.reshape(batch, words, WORD_BITS) << shifts, axis=-1, dtype=jnp.uint32)


def _population(state: NetState, name: str):
    return state.e if name == "e" else state.i


def init_buffers(monitors: Monitors, state: NetState, chunk_steps: int) -> dict:
    """Zeroed per-chunk buffers: spike words (L, B, W) and traces (L / every, B, cells)."""
    import jax.numpy as jnp

    buffers = {}
    for name in monitors.spikes:
        pop = _population(state, name)
        batch, n = pop.v_mV.shape
        buffers[f"spikes.{name}"] = jnp.zeros((chunk_steps, batch, n_words(n)), jnp.uint32)
    for m in monitors.states:
        pop = _population(state, m.population)
        shape = (chunk_steps // m.every_steps, pop.v_mV.shape[0], len(m.cells))
        for var, key in zip(m.variables, m.names(), strict=True):
            buffers[key] = jnp.zeros(shape, getattr(pop, var).dtype)
    return buffers


def record_step(monitors: Monitors, buffers: dict, state: NetState, t) -> dict:
    """Write the state after step ``t`` (index within the chunk) into the chunk's buffers."""
    import jax.numpy as jnp

    out = dict(buffers)
    for name in monitors.spikes:
        key = f"spikes.{name}"
        out[key] = out[key].at[t].set(pack_spikes(_population(state, name).spikes))
    for m in monitors.states:
        pop = _population(state, m.population)
        cells = np.asarray(m.cells, np.int32)
        row, keep = t // m.every_steps, (t % m.every_steps) == 0
        for var, key in zip(m.variables, m.names(), strict=True):
            value = jnp.take(getattr(pop, var), cells, axis=-1)
            out[key] = out[key].at[row].set(jnp.where(keep, value, out[key][row]))
    return out


def run_chunk(
    weights: Weights, state: NetState, inputs, n_steps, config: NetworkConfig,
    monitors: Monitors, chunk_steps: int,
):  # fmt: skip
    """Advance ``state`` by ``n_steps <= chunk_steps`` steps of :func:`ei_sim.sim.engine.step`,
    recording into fresh buffers; return ``(state, buffers)`` (one compiled program per
    ``config``, ``monitors`` and ``chunk_steps``).

    ``inputs``: None, or the chunk's input rows (leading axis ``chunk_steps``: event pairs
    ``(sample, channel)`` or a dense (L, B, n_in) array); rows past ``n_steps`` are unused.
    """
    return _run_chunk_jit()(weights, state, inputs, n_steps, config, monitors, chunk_steps)


@functools.cache
def _run_chunk_jit():
    import jax

    from ei_sim.sim.engine import step

    def run_chunk(weights, state, inputs, n_steps, config, monitors, chunk_steps):
        buffers = init_buffers(monitors, state, chunk_steps)

        def body(t, carry):
            state, buffers = carry
            x = None if inputs is None else jax.tree.map(lambda a: a[t], inputs)
            state, _ = step(weights, state, x, config)
            return state, record_step(monitors, buffers, state, t)

        return jax.lax.fori_loop(0, n_steps, body, (state, buffers))

    return jax.jit(run_chunk, static_argnames=("config", "monitors", "chunk_steps"))


class SpikeEvents(NamedTuple):
    """Spike events in time order: global ``step`` (int64), ``trial`` and cell ``index``."""

    step: np.ndarray
    trial: np.ndarray
    index: np.ndarray

    def time_ms(self, dt_ms: float) -> np.ndarray:
        """Spike times ``step * dt`` in float64 (exact to the step for any run length)."""
        return self.step.astype(np.float64) * dt_ms


def decode_spikes(words: np.ndarray, n_steps: int, start_step: int) -> SpikeEvents:
    """Events of the first ``n_steps`` rows of (L, B, W) spike words, in (step, trial, cell)
    order (that of ``np.nonzero`` on the raster).

    Only the nonzero words are visited, and within them only the set bits: the lowest set bit
    ``w & -w`` is taken off every word at once until none is left (about one pass per spike
    in a word), so the work is proportional to the spikes.
    """
    words = np.asarray(words[:n_steps])
    _, batch, n_w = words.shape
    flat = words.reshape(-1)
    where = np.flatnonzero(flat)
    w = flat[where].astype(np.int64)
    keys = []
    while w.size:
        low = w & -w
        bit = np.frexp(low.astype(np.float64))[1] - 1  # log2 of a power of two, exact
        keys.append(where * WORD_BITS + bit)
        w = w ^ low
        keep = w != 0
        where, w = where[keep], w[keep]
    key = np.sort(np.concatenate(keys)) if keys else np.zeros(0, np.int64)
    position, bit = key // WORD_BITS, key % WORD_BITS
    row = position // n_w
    return SpikeEvents(
        row // batch + start_step,
        (row % batch).astype(np.int32),
        ((position % n_w) * WORD_BITS + bit).astype(np.int32),
    )


def bin_counts(events: SpikeEvents, n_bins: int, batch: int, bin_steps: int, start_step: int):
    """Spike counts (n_bins, B) per bin of ``bin_steps`` steps from ``start_step`` on."""
    b = (events.step - start_step) // bin_steps
    flat = np.bincount(b * batch + events.trial, minlength=n_bins * batch)
    return flat.reshape(n_bins, batch)


def activity(counts: np.ndarray, start_step: int, n_steps: int, bin_steps: int, n_cells: int):
    """Spike counts (bins, B) of bins from ``start_step`` on -> fraction of the population
    spiking per step (float32); the run's last bin may hold fewer than ``bin_steps`` steps."""
    first = start_step + np.arange(counts.shape[0]) * bin_steps
    steps = np.minimum(bin_steps, n_steps - first)
    return (counts / (n_cells * steps[:, None])).astype(np.float32)
