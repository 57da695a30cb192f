"""Gamma rhythm of a spiking run: frequency, significance, rhythmicity and participation.

Inputs are rasters ``(T, B, N)`` of bools sampled every ``dt_ms`` (time, trial, cell).

* **Peak** (the reference lab's measure, :mod:`ei_sim.sim.spectrum`): Welch PSD of the E
  population activity, one segment per trial, averaged; arg-max in 5-150 Hz refined by a
  clamped parabola. Its **significance** is peak power over the band's median power (Poisson
  activity: a few; a clear rhythm: tens or more). The frequency is reported whatever the
  significance; it is ``None`` only for a silent or flat spectrum.
* **Rhythmicity** (in [0, 1]): the fraction of the [f_lo, f_hi] band power that lies within
  ``+- half_width_Hz`` of the peak, ``sum_{|f - f_peak| <= w} P(f) / sum_{band} P(f)``.
  A pure rhythm gives close to 1, broadband noise about ``2 w / (f_hi - f_lo)``.
* **Participation** (the lab's definition, ``pinglab`` nb025/nb046): the I population rate
  of each trial is smoothed with a Gaussian of ``smooth_ms`` (1 ms); its peaks
  (:func:`scipy.signal.find_peaks`) must be at least half a gamma period (``0.5 / f_peak``)
  apart and at least ``min_height`` (5 %) of the trial's maximum; cycle edges are the
  midpoints between consecutive I peaks, so each cycle holds one interior I peak **(chosen:
  the first and last peak, whose cycles the trial's edges cut, are not counted)**;
  participation is the fraction of (E cell, cycle) pairs with at least one E spike.
* **Verdict**: whether the peak is a rhythm, by the surrogate test of
  :func:`ei_sim.sim.spectrum.gamma_verdict` (every cell's spike train rotated by its own
  random offset; significance, depth of the coordinated modulation and a real peak), with
  the frequency resolution ``1 / window``. Computed from the E spikes, so files written
  before verdicts existed get one too.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy import ndimage, signal

from ei_sim.sim.spectrum import (
    F_HI_HZ,
    F_LO_HZ,
    Verdict,
    gamma_text,
    gamma_verdict,
    gamma_verdict_raster,
    population_psd,
    spectral_peak,
)
from ei_sim.store.attrs import read_attrs
from ei_sim.store.checksum import ensure_sound
from ei_sim.store.kinds import open_kind


class GammaStats(NamedTuple):
    frequency_Hz: float | None
    power: float | None
    significance: float | None  # peak power over the band's median power
    rhythmicity: float | None
    participation: float | None
    n_cycles: int
    verdict: Verdict | None = None  # the surrogate test (with verdict=True)


NO_GAMMA = GammaStats(None, None, None, None, None, 0)


def _check_raster(raster, name: str) -> np.ndarray:
    x = np.asarray(raster)
    if x.ndim != 3:
        raise ValueError(f"{name} must be a (T, B, N) raster, got shape {x.shape}")
    return x


def psd_peak(spikes_e, dt_ms, drop_ms=0.0, f_lo=F_LO_HZ, f_hi=F_HI_HZ):
    """``(peak or None, f_Hz, power)`` of the E population activity of a (T, B, N) raster."""
    activity = _check_raster(spikes_e, "spikes_e").mean(axis=2)
    freqs, power = population_psd(activity, dt_ms, drop_ms)
    return spectral_peak(freqs, power, f_lo, f_hi), freqs, power


def rhythmicity(freqs, power, f_peak_Hz, f_lo=F_LO_HZ, f_hi=F_HI_HZ, half_width_Hz=10.0) -> float:
    """Fraction of the band's power within ``half_width_Hz`` of the peak (module docstring)."""
    band = (freqs >= f_lo) & (freqs <= f_hi)
    near = band & (np.abs(freqs - f_peak_Hz) <= half_width_Hz)
    total = float(power[band].sum())
    return float(power[near].sum() / total) if total > 0 else 0.0


def smoothed_rate(activity, dt_ms, smooth_ms=1.0) -> np.ndarray:
    """Gaussian-smoothed (sigma ``smooth_ms``) population activity along axis 0."""
    return ndimage.gaussian_filter1d(
        np.asarray(activity, float), smooth_ms / dt_ms, axis=0, mode="nearest"
    )


def i_peaks(rate_i, dt_ms, f_gamma_Hz, min_height=0.05) -> np.ndarray:
    """Step indices of the peaks of one trial's smoothed I rate (T,): at least half a gamma
    period apart and at least ``min_height`` x the trial's maximum."""
    top = float(np.max(rate_i)) if rate_i.size else 0.0
    if top <= 0 or not f_gamma_Hz or not np.isfinite(f_gamma_Hz):
        return np.zeros(0, dtype=int)
    distance = max(1, int(round(0.5 * 1000.0 / f_gamma_Hz / dt_ms)))
    peaks, _ = signal.find_peaks(rate_i, distance=distance, height=min_height * top)
    return peaks


def cycle_edges(peaks) -> np.ndarray:
    """Midpoints between consecutive I peaks: the edges of the cycles around interior peaks."""
    peaks = np.asarray(peaks)
    return (peaks[:-1] + peaks[1:]) // 2


def participation(spikes_e, activity_i, dt_ms, f_gamma_Hz, drop_ms=0.0, smooth_ms=1.0,
                  min_height=0.05):  # fmt: skip
    """``(fraction, n_cycles)``: fraction of (E cell, cycle) pairs with >= 1 spike (module
    docstring). ``activity_i`` is the (T, B) I population activity. ``(None, 0)`` when no
    trial has a complete cycle."""
    e = _check_raster(spikes_e, "spikes_e")
    start = int(round(drop_ms / dt_ms))
    rate_i = smoothed_rate(np.asarray(activity_i, float), dt_ms, smooth_ms)[start:]
    e = e[start:]
    active, pairs, cycles = 0, 0, 0
    for b in range(e.shape[1]):
        edges = cycle_edges(i_peaks(rate_i[:, b], dt_ms, f_gamma_Hz, min_height))
        if edges.size < 2:
            continue
        cum = np.concatenate([np.zeros((1, e.shape[2]), int), np.cumsum(e[:, b], axis=0)])
        counts = cum[edges[1:]] - cum[edges[:-1]]  # (cycles, N) spikes per cell per cycle
        active += int((counts > 0).sum())
        pairs += counts.size
        cycles += counts.shape[0]
    return (active / pairs if pairs else None), cycles


def gamma_stats(
    spikes_e, spikes_i, dt_ms, drop_ms=0.0, f_lo=F_LO_HZ, f_hi=F_HI_HZ, smooth_ms=1.0,
    half_width_Hz=10.0, verdict: bool = False,
) -> GammaStats:  # fmt: skip
    """All gamma quantities of one run (module docstring); :data:`NO_GAMMA` when silent.
    ``verdict``: also run the surrogate test (off for the reproduction tables, which keep the
    lab's measure alone)."""
    i = _check_raster(spikes_i, "spikes_i")
    return gamma_stats_from_activity(
        spikes_e, i.mean(axis=2), dt_ms, drop_ms, f_lo, f_hi, smooth_ms, half_width_Hz, verdict
    )


def gamma_stats_from_activity(
    spikes_e, activity_i, dt_ms, drop_ms=0.0, f_lo=F_LO_HZ, f_hi=F_HI_HZ, smooth_ms=1.0,
    half_width_Hz=10.0, verdict: bool = False,
) -> GammaStats:  # fmt: skip
    """As :func:`gamma_stats` with the I population activity (T, B) instead of its raster."""
    drop_ms = min(drop_ms, 0.5 * np.shape(spikes_e)[0] * dt_ms)
    peak, freqs, power = psd_peak(spikes_e, dt_ms, drop_ms, f_lo, f_hi)
    test = None
    if verdict:
        start = int(round(drop_ms / dt_ms))
        test = gamma_verdict_raster(_check_raster(spikes_e, "spikes_e")[start:], dt_ms,
                                    f_lo=f_lo, f_hi=f_hi)  # fmt: skip
    if peak is None:
        return NO_GAMMA._replace(verdict=test)
    rhythm = rhythmicity(freqs, power, peak.frequency_Hz, f_lo, f_hi, half_width_Hz)
    part, cycles = participation(spikes_e, activity_i, dt_ms, peak.frequency_Hz, drop_ms,
                                 smooth_ms)  # fmt: skip
    return GammaStats(peak.frequency_Hz, peak.power, peak.significance, rhythm, part, cycles,
                      test)  # fmt: skip


def raster_from_lists(group, n_steps: int, dt_ms: float) -> np.ndarray:
    """Rebuild a (T, B, N) raster from an ei-sim spike-list group (time_ms, trial, index)."""
    n_cells, n_trials = int(group.attrs["n_cells"]), int(group.attrs["n_trials"])
    raster = np.zeros((n_steps, n_trials, n_cells), dtype=bool)
    t = np.rint(np.asarray(group["time_ms"][()], float) / dt_ms).astype(int)
    raster[np.clip(t, 0, n_steps - 1), group["trial"][()], group["index"][()]] = True
    return raster


def read_simulate_file(path: str) -> dict:
    """dt_ms, E raster (T, B, N_E), I activity (T, B), the E spike events and attributes of
    a simulate file (T: its steps)."""
    with open_kind(path, "simulate") as fh:
        ensure_sound(fh, path)  # a simulate file that fails its checksum: one line
        attrs = read_attrs(fh)
        needed = ("spikes/e", "population/e", "population/i")
        if any(n not in fh for n in needed):
            raise ValueError(
                f"{path} is not an ei-sim simulate file (kind={attrs.get('kind')!r}); expected "
                "groups /spikes/e, /population/e, /population/i as written by `ei-sim simulate`"
            )
        if "model.config.dt_ms" not in attrs:
            raise ValueError(f"{path} lacks the root attribute model.config.dt_ms")
        dt_ms = float(attrs["model.config.dt_ms"])
        act_e = np.asarray(fh["population/e"][()], float)
        act_i = np.asarray(fh["population/i"][()], float)
        bin_steps = int(fh["population/e"].attrs.get("bin_steps", 1))
        n_steps = int(attrs.get("steps_done", attrs.get("n_steps", act_e.shape[0] * bin_steps)))
        group = fh["spikes/e"]
        raster_e = raster_from_lists(group, n_steps, dt_ms)
        events = {"step": np.rint(np.asarray(group["time_ms"][()], float) / dt_ms).astype(int),
                  "trial": np.asarray(group["trial"][()], int),
                  "cell": np.asarray(group["index"][()], int),
                  "n_cells": int(group.attrs["n_cells"]),
                  "n_trials": int(group.attrs["n_trials"])}  # fmt: skip
    return {"dt_ms": dt_ms, "spikes_e": raster_e, "activity_e": act_e, "activity_i": act_i,
            "attrs": attrs, "events_e": events, "n_steps": n_steps,
            "bin_ms": bin_steps * dt_ms}  # fmt: skip


def verdict_of_events(events: dict, n_steps: int, dt_ms: float, **options) -> Verdict:
    """:func:`ei_sim.sim.spectrum.gamma_verdict` of a simulate file's E events (the whole run
    at ``dt_ms``, as :func:`psd_peak` measures the peak)."""
    keep = events["step"] < n_steps
    return gamma_verdict(events["step"][keep], events["trial"][keep], events["cell"][keep],
                         n_steps, events["n_trials"], events["n_cells"], dt_ms,
                         **options)  # fmt: skip


def gamma_from_file(path: str, **options) -> dict:
    """Gamma quantities of an ``ei-sim simulate`` HDF5 file, plus its E and I rates (Hz), the
    surrogate verdict (computed from the spikes, whatever the file stores) and ``dt_ms``."""
    run = read_simulate_file(path)
    stats = gamma_stats_from_activity(run["spikes_e"], _activity_at_dt(run), run["dt_ms"],
                                      **options)  # fmt: skip
    seconds = run["n_steps"] * run["dt_ms"] * 1e-3
    bins_e = run["activity_e"] * (run["bin_ms"] / run["dt_ms"])
    bins_i = run["activity_i"] * (run["bin_ms"] / run["dt_ms"])
    return {
        **stats._replace(verdict=verdict_of_events(run["events_e"], run["spikes_e"].shape[0],
                                                   run["dt_ms"]))._asdict(),
        "rate_e_Hz": float(bins_e.sum(axis=0).mean() / seconds),
        "rate_i_Hz": float(bins_i.sum(axis=0).mean() / seconds),
        "dt_ms": run["dt_ms"],
    }  # fmt: skip


def _activity_at_dt(run: dict) -> np.ndarray:
    """The I activity (T, B) at every step: binned activity repeated over its bin's steps."""
    repeat = int(round(run["bin_ms"] / run["dt_ms"]))
    return np.repeat(run["activity_i"], repeat, axis=0)[: run["spikes_e"].shape[0]]


def format_gamma(stats: dict) -> str:
    def fmt(v, spec):
        return "none" if v is None else format(v, spec)

    v = stats.get("verdict")
    return (
        f"gamma peak {gamma_text(stats['frequency_Hz'], v)}; lab significance "
        f"{fmt(stats['significance'], '.3g')} x band median, "
        f"rhythmicity {fmt(stats['rhythmicity'], '.3f')}, participation "
        f"{fmt(stats['participation'], '.3f')} over {stats['n_cycles']} cycles; "
        f"E {stats['rate_e_Hz']:.2f} Hz, I {stats['rate_i_Hz']:.2f} Hz"
    )
