"""Power spectrum of population activity and its gamma peak.

This is the reference lab's gamma measure (``pinglab``, ``src/notebooks/nb025.py``
``_f_gamma_from_population`` and ``nb041.py`` ``_peak_with_parabolic``), the one every place
in ei-sim reports:

* signal: the population activity of each trial (fraction of the population spiking per step,
  sampled at ``fs = 1/dt``), mean-subtracted; trials whose activity is constant (silent) are
  left out;
* PSD: Welch's estimate with one segment per trial (``nperseg`` = the trial, periodic Hann
  window, density scaling, no detrend: what :func:`scipy.signal.welch` computes with these
  settings, here with NumPy's FFT, so that a simulation does not import ``scipy.signal``, which
  takes longer than a 20 s Vogels-Abbott run; equal to it to float rounding, tested),
  averaged over the trials; a 200 ms trial at dt = 0.1 ms gives 5 Hz bins;
* peak: the arg-max of the averaged PSD in ``[f_lo, f_hi]`` = 5-150 Hz, refined by the vertex
  of the parabola through the peak bin and its two neighbours, the offset clamped to
  +- 0.5 bin. There is no prominence criterion: any non-flat spectrum has a peak.

Separately, each peak carries a **significance** figure, ``peak power / median power of the
band``: about 1-10 for broadband (Poisson) activity, tens to thousands for a clear rhythm.
Deciding "is there a rhythm" is the caller's choice of threshold on it
(:func:`is_rhythmic`); the peak frequency never depends on it. The peak is ``None`` only
for a silent trace or a flat spectrum.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

F_LO_HZ, F_HI_HZ = 5.0, 150.0


class Peak(NamedTuple):
    frequency_Hz: float
    power: float
    significance: float  # peak power over the band's median power

    @property
    def ratio(self) -> float:
        """Former name of :attr:`significance`."""
        return self.significance


def population_psd(activity: np.ndarray, dt_ms: float, drop_ms: float = 0.0):
    """Trial-averaged PSD of (T, B) or (T,) activity sampled every ``dt_ms``: ``(f_Hz, power)``.

    Trials with constant activity are left out of the average; ``power`` is all zeros when
    every trial is constant."""
    x = np.asarray(activity, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    x = x[int(round(drop_ms / dt_ms)) :]
    if x.shape[0] < 8:
        raise ValueError("population activity is too short for a spectrum (need >= 8 samples)")
    x = x - x.mean(axis=0, keepdims=True)
    varying = np.any(x != 0.0, axis=0)
    fs = 1000.0 / dt_ms
    if not varying.any():
        freqs = np.fft.rfftfreq(x.shape[0], d=1.0 / fs)
        return freqs, np.zeros_like(freqs)
    freqs, power = welch_one_segment(x[:, varying], fs)
    return freqs, power.mean(axis=1)


def welch_one_segment(x: np.ndarray, fs: float):
    """One-sided power spectral density (units^2/Hz) of each column of (T, K) ``x`` from one
    Hann-windowed segment of the whole length, no detrending: ``scipy.signal.welch(x, fs,
    nperseg=T, axis=0, detrend=False)``. Returns ``(f_Hz, power (T//2 + 1, K))``."""
    n = x.shape[0]
    window = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n) / n)  # periodic Hann
    spectrum = np.fft.rfft(x * window[:, None], axis=0)
    power = (spectrum.real**2 + spectrum.imag**2) / (fs * float(np.sum(window * window)))
    power[1 : n - n // 2] *= 2.0  # one-sided: all but DC (and Nyquist when n is even)
    return np.fft.rfftfreq(n, d=1.0 / fs), power


def spectral_peak(freqs, power, f_lo=F_LO_HZ, f_hi=F_HI_HZ) -> Peak | None:
    """The parabola-refined arg-max in ``[f_lo, f_hi]`` (module docstring); None when the band
    is silent or flat."""
    band = np.nonzero((freqs >= f_lo) & (freqs <= f_hi))[0]
    if band.size < 3:
        return None
    p = power[band]
    if not np.all(np.isfinite(p)) or p.max() <= 0 or p.max() == p.min():
        return None
    k = band[np.argmax(p)]
    median = float(np.median(p))
    significance = float(power[k] / median) if median > 0 else float("inf")
    f = float(freqs[k])
    if 0 < k < len(freqs) - 1:
        y0, y1, y2 = power[k - 1], power[k], power[k + 1]
        denom = y0 - 2.0 * y1 + y2
        if denom < 0:
            offset = float(np.clip(0.5 * (y0 - y2) / denom, -0.5, 0.5))
            f += offset * float(freqs[1] - freqs[0])
    return Peak(f, float(power[k]), significance)


def gamma_peak(activity, dt_ms, drop_ms=0.0, f_lo=F_LO_HZ, f_hi=F_HI_HZ) -> Peak | None:
    """:func:`spectral_peak` of :func:`population_psd` (the whole trial by default, as the lab)."""
    freqs, power = population_psd(activity, dt_ms, drop_ms)
    return spectral_peak(freqs, power, f_lo, f_hi)


def is_rhythmic(peak: Peak | None, min_significance: float) -> bool:
    """Whether ``peak`` exists and its significance reaches ``min_significance``."""
    return peak is not None and peak.significance >= min_significance
