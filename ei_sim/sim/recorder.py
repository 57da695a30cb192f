"""Chunked runs with monitors: the host side of :mod:`ei_sim.sim.monitors`.

:func:`iter_chunks` runs :func:`ei_sim.sim.monitors.run_chunk` over consecutive chunks of
``chunk_steps`` steps and yields each chunk's record (:class:`ChunkRecord`: spike events,
binned counts, traces) as soon as it is decoded. The next chunk is dispatched before the
current one is decoded, so decoding and writing overlap the simulation. :func:`record` keeps
the whole run in memory (a :class:`Recording`); long runs hand each chunk to a sink instead
(``ei-sim simulate`` streams them to HDF5, :mod:`ei_sim.store.stream`).

A chunked run gives exactly the spikes and states of one scan over all steps: the chunk
boundaries only split the loop, the state is handed on whole (refractory counts included).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import NamedTuple

import numpy as np

from ei_sim.sim.config import NetworkConfig
from ei_sim.sim.monitors import (
    Monitors,
    SpikeEvents,
    activity,
    bin_counts,
    decode_spikes,
    run_chunk,
)

DEFAULT_CHUNK_STEPS = 10_000


class ChunkRecord(NamedTuple):
    """What one chunk recorded; steps ``start_step .. start_step + n_steps - 1``."""

    index: int
    start_step: int
    n_steps: int
    spikes: dict[str, SpikeEvents]
    counts: dict[str, np.ndarray]  # population -> (bins, B) spike counts per bin
    traces: dict[str, np.ndarray]  # "e.v_mV" -> (samples, B, cells)


class Recording(NamedTuple):
    """A whole run: the chunks' records joined."""

    monitors: Monitors
    n_steps: int
    dt_ms: float
    spikes: dict[str, SpikeEvents]
    counts: dict[str, np.ndarray]
    traces: dict[str, np.ndarray]

    def raster(self, population: str, n_cells: int, batch: int | None = None) -> np.ndarray:
        """The (T, B, N) boolean raster of one population, rebuilt from its events."""
        ev = self.spikes[population]
        batch = self.counts[population].shape[1] if batch is None else batch
        out = np.zeros((self.n_steps, batch, n_cells), bool)
        out[ev.step, ev.trial, ev.index] = True
        return out

    def activity(self, population: str, n_cells: int) -> np.ndarray:
        """Fraction of the population spiking per step, averaged over each bin: (bins, B)."""
        return activity(self.counts[population], 0, self.n_steps, self.monitors.bin_steps,
                        n_cells)  # fmt: skip


def chunk_length(monitors: Monitors, n_steps: int, chunk_steps: int | None) -> int:
    """Steps per chunk: ``chunk_steps`` (default 10,000) rounded up to a multiple of the
    monitors' intervals, and no longer than the run needs."""
    if chunk_steps is not None and not (isinstance(chunk_steps, int) and chunk_steps >= 1):
        raise ValueError(f"chunk_steps must be a positive integer, got {chunk_steps!r}")
    multiple = monitors.step_multiple()
    wanted = min(DEFAULT_CHUNK_STEPS if chunk_steps is None else chunk_steps, n_steps)
    return -(-wanted // multiple) * multiple


def _chunk_inputs(inputs, start: int, length: int):
    """Rows ``start .. start + length`` of the inputs (None, event pair or dense), zero-padded
    to ``length`` rows at the end of the run (padding rows are never read)."""
    if inputs is None:
        return None

    def cut(a):
        part = a[start : start + length]
        if part.shape[0] < length:
            pad = np.zeros((length - part.shape[0],) + a.shape[1:], a.dtype)
            part = np.concatenate([part, pad])
        return part

    if isinstance(inputs, tuple):
        return (cut(inputs[0]), cut(inputs[1]))
    return cut(inputs)


def _decode(monitors: Monitors, index: int, start: int, n: int, buffers: dict) -> ChunkRecord:
    spikes, counts, traces = {}, {}, {}
    for name in monitors.spikes:
        words = np.asarray(buffers[f"spikes.{name}"])
        ev = decode_spikes(words, n, start)
        spikes[name] = ev
        n_bins = -(-n // monitors.bin_steps)
        counts[name] = bin_counts(ev, n_bins, words.shape[1], monitors.bin_steps, start)
    for m in monitors.states:
        samples = -(-n // m.every_steps)
        for key in m.names():
            traces[key] = np.asarray(buffers[key])[:samples]
    return ChunkRecord(index, start, n, spikes, counts, traces)


def iter_chunks(
    weights, state, inputs, config: NetworkConfig, monitors: Monitors,
    chunk_steps: int | None = None, n_steps: int | None = None,
) -> Iterator[tuple[object, ChunkRecord]]:  # fmt: skip
    """Yield ``(state_after_chunk, ChunkRecord)`` for consecutive chunks of the run.

    ``inputs`` as for :func:`ei_sim.sim.engine.simulate` (None needs ``n_steps``); ``n_steps``
    defaults to the number of input rows. Chunk ``k + 1`` is dispatched (asynchronously)
    before chunk ``k`` is decoded.
    """
    monitors.check(config)
    if n_steps is None:
        if inputs is None:
            raise ValueError("a run without input needs n_steps")
        n_steps = int(np.shape(inputs[0] if isinstance(inputs, tuple) else inputs)[0])
    length = chunk_length(monitors, n_steps, chunk_steps)
    inputs = (
        None
        if inputs is None
        else tuple(map(np.asarray, inputs)) if isinstance(inputs, tuple) else np.asarray(inputs)
    )
    n_chunks = -(-n_steps // length)

    def dispatch(k, state):
        start = k * length
        n = min(length, n_steps - start)
        x = _chunk_inputs(inputs, start, length)
        return k, start, n, run_chunk(weights, state, x, np.int32(n), config, monitors, length)

    pending = dispatch(0, state)
    for k in range(n_chunks):
        index, start, n, (state, buffers) = pending
        if k + 1 < n_chunks:
            pending = dispatch(k + 1, state)
        yield state, _decode(monitors, index, start, n, buffers)


def join(monitors: Monitors, chunks: list[ChunkRecord], dt_ms: float) -> Recording:
    """One :class:`Recording` from consecutive chunk records."""

    def cat(parts, empty):
        return np.concatenate(parts) if parts else empty

    spikes = {
        name: SpikeEvents(*(cat([getattr(c.spikes[name], f) for c in chunks],
                                np.zeros(0, dt)) for f, dt in
                            (("step", np.int64), ("trial", np.int32), ("index", np.int32))))
        for name in monitors.spikes
    }  # fmt: skip
    counts = {name: cat([c.counts[name] for c in chunks], None) for name in monitors.spikes}
    keys = [key for m in monitors.states for key in m.names()]
    traces = {key: cat([c.traces[key] for c in chunks], None) for key in keys}
    n_steps = sum(c.n_steps for c in chunks)
    return Recording(monitors, n_steps, dt_ms, spikes, counts, traces)


def record(
    weights, state, inputs, config: NetworkConfig, monitors: Monitors,
    chunk_steps: int | None = None, n_steps: int | None = None,
    on_chunk: Callable[[ChunkRecord], None] | None = None,
):  # fmt: skip
    """Run in chunks and keep everything: ``(final_state, Recording)``.

    ``on_chunk(record)`` is called after each chunk (progress, streaming)."""
    chunks, final = [], state
    run = iter_chunks(weights, state, inputs, config, monitors, chunk_steps, n_steps)
    for final, chunk in run:  # noqa: B007 (the last state is the result)
        chunks.append(chunk)
        if on_chunk is not None:
            on_chunk(chunk)
    import jax

    return jax.block_until_ready(final), join(monitors, chunks, config.dt_ms)
