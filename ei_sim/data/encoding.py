"""Input spike trains as per-step event lists.

Each input channel with intensity ``p`` in [0, 1] spikes independently at every step with
probability ``q = p * r_max * dt`` (Bernoulli). The trains are drawn exactly, channel by
channel, as sums of geometric inter-spike intervals (the waiting time of a Bernoulli process),
so the cost scales with the number of spikes, not with ``steps x channels``.

The result is an :class:`InputEvents`: for every step ``t`` a list of ``K`` (sample, channel)
pairs, padded with ``sample = batch`` (dropped by :func:`ei_sim.sim.propagate.input_drive`).
An event in row ``t`` is added to the E cells' ``g_exc`` in step ``t``, before the membrane
update of that step.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class InputEvents(NamedTuple):
    """Per-step input spikes of a batch: ``sample[t, k]``, ``channel[t, k]`` (int32, (T, K))."""

    sample: np.ndarray
    channel: np.ndarray

    @property
    def n_steps(self) -> int:
        return self.sample.shape[0]


def events_from_lists(t, b, c, n_steps: int, batch: int) -> InputEvents:
    """Build :class:`InputEvents` from flat arrays of spike step ``t``, sample ``b`` and
    channel ``c``."""
    t = np.asarray(t, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    c = np.asarray(c, dtype=np.int64)
    if t.size and (t.min() < 0 or t.max() >= n_steps):
        raise ValueError(f"input spike steps must lie in [0, {n_steps})")
    order = np.lexsort((c, b, t))
    t, b, c = t[order], b[order], c[order]
    counts = np.bincount(t, minlength=n_steps)
    k = max(1, int(counts.max()) if counts.size else 1)
    k = int(8 * np.ceil(k / 8))  # round up: fewer distinct shapes, fewer recompilations
    start = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank = np.arange(t.size) - start[t]
    sample = np.full((n_steps, k), batch, dtype=np.int32)
    channel = np.zeros((n_steps, k), dtype=np.int32)
    sample[t, rank] = b
    channel[t, rank] = c
    return InputEvents(sample, channel)


def events_from_dense(spikes) -> InputEvents:
    """Convert a dense 0/1 array of shape (T, B, n_in) into :class:`InputEvents`."""
    spikes = np.asarray(spikes)
    if spikes.ndim != 3:
        raise ValueError(f"dense input spikes must have shape (T, B, n_in), got {spikes.shape}")
    t, b, c = np.nonzero(spikes)
    return events_from_lists(t, b, c, spikes.shape[0], spikes.shape[1])


def events_to_dense(events: InputEvents, batch: int, n_in: int) -> np.ndarray:
    """Inverse of :func:`events_from_dense` (for tests and for export to other simulators)."""
    dense = np.zeros((events.n_steps, batch, n_in), dtype=bool)
    t, k = np.nonzero(events.sample < batch)
    dense[t, events.sample[t, k], events.channel[t, k]] = True
    return dense


def poisson_events(intensities, n_steps: int, p_per_unit: float, seed) -> InputEvents:
    """Bernoulli spike trains for a batch of intensity vectors (B, n_in) in [0, 1].

    ``p_per_unit`` is the spike probability per step at intensity 1 (``r_max * dt``).
    ``seed`` is anything ``numpy.random.default_rng`` takes (an int or a tuple of ints, e.g.
    ``(seed, epoch, batch_index)``), so that every batch's trains are reproducible.
    """
    x = np.asarray(intensities, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"intensities must have shape (B, n_in), got {x.shape}")
    if x.size and (x.min() < 0 or x.max() > 1):
        raise ValueError("pixel intensities must lie in [0, 1] (raw / 255)")
    q = x * p_per_unit
    if q.size and q.max() >= 1:
        raise ValueError("spike probability per step must be < 1: lower r_max or dt")
    rng = np.random.default_rng(seed)
    b_act, c_act = np.nonzero(q > 0)
    q_act = q[b_act, c_act]
    times = _bernoulli_times(rng, q_act, n_steps)
    owner, col = np.nonzero(times < n_steps)
    return events_from_lists(times[owner, col], b_act[owner], c_act[owner], n_steps, x.shape[0])


def _bernoulli_times(rng, q: np.ndarray, n_steps: int) -> np.ndarray:
    """Spike steps of independent Bernoulli(q) processes, one row per process.

    Rows are padded with values >= n_steps; more intervals are drawn until every row has
    passed the end of the trial, so no spike is ever truncated.
    """
    if q.size == 0:
        return np.zeros((0, 1), dtype=np.int64)
    mean = float(q.max()) * n_steps
    width = int(mean + 6 * np.sqrt(mean) + 8)
    times = np.cumsum(rng.geometric(q[:, None], size=(q.size, width)), axis=1) - 1
    while True:
        short = np.nonzero(times[:, -1] < n_steps)[0]
        if short.size == 0:
            return times
        extra = np.cumsum(rng.geometric(q[short, None], size=(short.size, width)), axis=1)
        pad = np.full((q.size, width), n_steps, dtype=times.dtype)
        pad[short] = times[short, -1:] + extra
        times = np.concatenate([times, pad], axis=1)


def pad_events(events: InputEvents, width: int, batch: int) -> InputEvents:
    """Pad the per-step event lists to ``width`` columns with entries the engine drops."""
    pad = width - events.sample.shape[1]
    if pad < 0:
        raise ValueError("cannot pad events to fewer columns than they have")
    return InputEvents(
        np.concatenate([events.sample, np.full((events.n_steps, pad), batch, np.int32)], 1),
        np.concatenate([events.channel, np.zeros((events.n_steps, pad), np.int32)], 1),
    )


def round_up(k: int, multiple: int = 64) -> int:
    return int(multiple * np.ceil(k / multiple))


def encode(images, config, seed, width: int | None = None) -> InputEvents:
    """Poisson events of ``images`` for a network ``config`` (its trial length and input
    rate), padded to ``width`` (or to a multiple of 64) columns."""
    ev = poisson_events(images, config.n_steps, config.p_spike_per_unit_intensity, seed)
    return pad_events(ev, max(width or 0, round_up(ev.sample.shape[1])), len(images))
