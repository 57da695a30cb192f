"""Power spectrum of population activity and its gamma peak (SPEC section 4, "Gamma").

Welch PSD of the mean-subtracted population activity with one segment per trial (Hann
window), averaged over trials; the peak is searched in [f_lo, f_hi] Hz and refined by the
vertex of the parabola through the peak bin and its two neighbours. A peak counts only if
its power exceeds ``min_ratio`` times the median power of the band (else: no rhythm).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy import signal


class Peak(NamedTuple):
    frequency_Hz: float
    power: float
    ratio: float  # peak power over the band's median power


def population_psd(activity: np.ndarray, dt_ms: float, drop_ms: float = 0.0):
    """PSD of (T, B) or (T,) population activity sampled every ``dt_ms``; returns (f_Hz, power)."""
    x = np.asarray(activity, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    x = x[int(round(drop_ms / dt_ms)) :]
    if x.shape[0] < 8:
        raise ValueError("population activity is too short for a spectrum (need >= 8 samples)")
    x = x - x.mean(axis=0, keepdims=True)
    fs = 1000.0 / dt_ms
    freqs, power = signal.welch(x, fs=fs, nperseg=x.shape[0], axis=0, detrend=False)
    return freqs, power.mean(axis=1)


def spectral_peak(freqs, power, f_lo=5.0, f_hi=150.0, min_ratio=5.0) -> Peak | None:
    """The refined peak in [f_lo, f_hi], or None when there is no clear peak."""
    band = np.nonzero((freqs >= f_lo) & (freqs <= f_hi))[0]
    if band.size < 3 or not np.any(power[band] > 0):
        return None
    k = band[np.argmax(power[band])]
    median = float(np.median(power[band]))
    ratio = float(power[k] / median) if median > 0 else float("inf")
    if ratio < min_ratio:
        return None
    f = float(freqs[k])
    if 0 < k < len(freqs) - 1:
        y0, y1, y2 = power[k - 1], power[k], power[k + 1]
        denom = y0 - 2 * y1 + y2
        if denom < 0:
            f += 0.5 * (y0 - y2) / denom * (freqs[1] - freqs[0])
    return Peak(f, float(power[k]), ratio)


def gamma_peak(activity, dt_ms, drop_ms=20.0, f_lo=5.0, f_hi=150.0, min_ratio=5.0):
    freqs, power = population_psd(activity, dt_ms, drop_ms)
    return spectral_peak(freqs, power, f_lo, f_hi, min_ratio)
