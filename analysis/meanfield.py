"""Four-variable rate model (mean field) of the PING loop.

State ``x = (E, I, g_e, g_i)``: rates in spikes/ms, conductances in uS::

    tau_E dE/dt   = -E + Phi_E(I_ext - 15 mV * g_i)          [I_ext, mu in nA]
    tau_I dI/dt   = -I + Phi_I(65 mV * g_e)
    dg_e/dt       = -g_e / tau_AMPA + W_EI * E                 [W in uS]
    dg_i/dt       = -g_i / tau_GABA + W_IE * I

``Phi`` is the Siegert rate of a LIF cell (the nominal cell constants: C 1 / 0.5 nF, g_L
0.05 / 0.1 uS, refractory 3 / 1.5 ms for E / I) with mean membrane potential
``mu_V = E_L + mu / g_L`` (nA / uS = mV) and white-noise fluctuations::

    1 / Phi = t_ref + tau_m sqrt(pi) int_{y_r}^{y_th} erfcx(-u) du
    erfcx(-u) = e^{u^2} (1 + erf u)
    y = (V - mu_V) / s_V

How ``sigma_V`` (4 mV) enters is ``sigma_convention``:

* ``"integral_scale"`` (the default): ``s_V = sigma_V``. This is the reference lab's code
  (``pinglab`` ``src/notebooks/nb033.py``, constant ``SIGMA_V_MV``); its later writing calls
  sigma_V "the effective voltage-noise scale entering this formula". With it the rate model
  reproduces the lab's table: Hopf at 0.59 nA, 24.50 Hz for tau_GABA = 9 ms.
* ``"membrane_sd"``: ``s_V = sqrt(2) sigma_V``, so that sigma_V is the standard deviation of
  the free (threshold-less) membrane potential, ``tau_m dV/dt = -(V - mu_V) + sqrt(2) sigma_V
  sqrt(tau_m) xi(t)`` (Brunel's sigma is ``sqrt(2) sigma_V``). The same 4 mV then means half
  the noise variance of the lab's, and the Hopf point moves to about 0.70 nA.

The drive ``I_ext`` maps onto the spiking network as the mean input current (see
:mod:`ei_sim.analysis.meanfield_check`).
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from scipy import integrate, optimize, special

from ei_sim.analysis.hopf import (
    Criticality,
    HopfPoint,
    find_hopf,
    hopf_criticality,
    numerical_jacobian,
)
from ei_sim.sim.config import CELL_E, CELL_I, CellParams

__all__ = [
    "HopfPoint", "MeanFieldParams", "MeanFieldHopf", "cliff_drive_nA", "cliff_exponent",
    "criticality", "find_hopf", "fixed_point", "fixed_point_branch", "frequency_vs_tau_gaba",
    "hopf", "jacobian", "numerical_jacobian", "rhs", "siegert_rate_per_ms",
]  # fmt: skip


SIGMA_CONVENTIONS = {"integral_scale": 1.0, "membrane_sd": math.sqrt(2.0)}  # s_V / sigma_V


def siegert_rate_per_ms(
    mu_V_mV, sigma_V_mV, tau_m_ms, t_ref_ms, v_th_mV=-50.0, v_reset_mV=-65.0,
    sigma_convention="integral_scale",
) -> float:  # fmt: skip
    """Stationary rate (spikes/ms) of a LIF cell in white noise (module docstring).

    Below threshold (``y_th > 0``) the integral is scaled by ``e^{-y_th^2}`` so that it never
    overflows: ``Phi = e^{-y_th^2} / (t_ref e^{-y_th^2} + tau_m sqrt(pi) J)`` with
    ``J = int e^{u^2 - y_th^2} erfc(-u) du``; far below threshold the rate underflows to 0.
    """
    s = SIGMA_CONVENTIONS[sigma_convention] * sigma_V_mV
    y_th = (v_th_mV - mu_V_mV) / s
    y_r = (v_reset_mV - mu_V_mV) / s
    if y_th <= 0.0:
        return 1.0 / (t_ref_ms + tau_m_ms * math.sqrt(math.pi) * _quad(_erfcx_neg, y_r, y_th))
    scale = math.exp(-y_th * y_th)
    j = _quad(lambda u: _scaled_integrand(u, y_th), y_r, y_th)
    return scale / (t_ref_ms * scale + tau_m_ms * math.sqrt(math.pi) * j)


def _erfcx_neg(u):
    return special.erfcx(-u)


def _scaled_integrand(u, y_th):
    """``e^{u^2 - y_th^2} erfc(-u)``, written so that no factor overflows."""
    if u < 0:
        return special.erfcx(-u) * math.exp(-y_th * y_th)
    return math.exp((u - y_th) * (u + y_th)) * special.erfc(-u)


def _quad(f, a, b) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", integrate.IntegrationWarning)
        value, _ = integrate.quad(f, a, b, limit=200, epsabs=0.0, epsrel=1e-10)
    return value


@dataclass(frozen=True)
class MeanFieldParams:
    """Parameters of the rate model. Defaults: the PING preset's couplings (W_EI 1, W_IE 2
    uS), linearised driving forces, the nominal time constants and cells, sigma_V 4 mV."""

    w_ei_uS: float = 1.0
    w_ie_uS: float = 2.0
    inh_drive_mV: float = 15.0  # driving force of GABA on E, linearised at rest
    exc_drive_mV: float = 65.0  # driving force of AMPA on I, linearised at rest
    tau_e_ms: float = 20.0
    tau_i_ms: float = 5.0
    tau_ampa_ms: float = 2.0
    tau_gaba_ms: float = 9.0
    sigma_V_mV: float = 4.0
    sigma_convention: str = "integral_scale"  # or "membrane_sd" (module docstring)
    e_leak_mV: float = -65.0
    v_th_mV: float = -50.0
    v_reset_mV: float = -65.0
    cell_e: CellParams = CELL_E
    cell_i: CellParams = CELL_I

    def __post_init__(self):
        if self.sigma_convention not in SIGMA_CONVENTIONS:
            raise ValueError(
                f"sigma_convention must be one of {', '.join(SIGMA_CONVENTIONS)}, "
                f"got {self.sigma_convention!r}"
            )
        if not (math.isfinite(self.sigma_V_mV) and self.sigma_V_mV > 0):
            raise ValueError(f"sigma_V_mV must be a positive number, got {self.sigma_V_mV}")

    def replace(self, **changes) -> MeanFieldParams:
        return dataclasses.replace(self, **changes)

    def gain(self, mu_nA: float, cell: CellParams) -> float:
        """``Phi(mu)`` in spikes/ms for input current ``mu`` (nA) into ``cell``."""
        mu_V = self.e_leak_mV + mu_nA / cell.g_leak_uS
        tau_m = cell.c_nF / cell.g_leak_uS
        return siegert_rate_per_ms(
            mu_V,
            self.sigma_V_mV,
            tau_m,
            cell.t_ref_ms,
            self.v_th_mV,
            self.v_reset_mV,
            self.sigma_convention,
        )


def rhs(x, i_ext_nA: float, p: MeanFieldParams) -> np.ndarray:
    """``dx/dt`` of the rate model (module docstring); ``x = (E, I, g_e, g_i)``."""
    e, i, g_e, g_i = x
    return np.array([
        (-e + p.gain(i_ext_nA - p.inh_drive_mV * g_i, p.cell_e)) / p.tau_e_ms,
        (-i + p.gain(p.exc_drive_mV * g_e, p.cell_i)) / p.tau_i_ms,
        -g_e / p.tau_ampa_ms + p.w_ei_uS * e,
        -g_i / p.tau_gaba_ms + p.w_ie_uS * i,
    ])  # fmt: skip


def fixed_point(i_ext_nA: float, p: MeanFieldParams) -> np.ndarray:
    """The (unique) equilibrium. With ``g_e = tau_AMPA W_EI E``, ``g_i = tau_GABA W_IE I``,
    ``I = Phi_I(65 g_e)`` the balance ``E = Phi_E(I_ext - 15 g_i)`` is one equation in ``E``
    whose right side decreases in ``E``: solved with brentq on ``[0, 1/t_ref_E]``."""

    def rates(e):
        i = p.gain(p.exc_drive_mV * p.tau_ampa_ms * p.w_ei_uS * e, p.cell_i)
        return i, p.gain(i_ext_nA - p.inh_drive_mV * p.tau_gaba_ms * p.w_ie_uS * i, p.cell_e)

    e_max = 1.0 / p.cell_e.t_ref_ms
    e = optimize.brentq(lambda e: e - rates(e)[1], 0.0, e_max, xtol=1e-15, rtol=1e-12)
    i = rates(e)[0]
    return np.array([e, i, p.tau_ampa_ms * p.w_ei_uS * e, p.tau_gaba_ms * p.w_ie_uS * i])


def jacobian(x, i_ext_nA: float, p: MeanFieldParams) -> np.ndarray:
    """Analytic Jacobian with the gain slopes ``Phi'`` by central differences (0.1 pA)."""
    e, i, g_e, g_i = x
    h = 1e-4
    mu_e, mu_i = i_ext_nA - p.inh_drive_mV * g_i, p.exc_drive_mV * g_e
    d_e = (p.gain(mu_e + h, p.cell_e) - p.gain(mu_e - h, p.cell_e)) / (2 * h)
    d_i = (p.gain(mu_i + h, p.cell_i) - p.gain(mu_i - h, p.cell_i)) / (2 * h)
    return np.array([
        [-1 / p.tau_e_ms, 0.0, 0.0, -p.inh_drive_mV * d_e / p.tau_e_ms],
        [0.0, -1 / p.tau_i_ms, p.exc_drive_mV * d_i / p.tau_i_ms, 0.0],
        [p.w_ei_uS, 0.0, -1 / p.tau_ampa_ms, 0.0],
        [0.0, p.w_ie_uS, 0.0, -1 / p.tau_gaba_ms],
    ])  # fmt: skip


def fixed_point_branch(i_ext_nA, p: MeanFieldParams) -> dict:
    """Equilibria and their stability over a grid of drives: rates in Hz, the leading
    eigenvalue real part (1/ms) and its imaginary part as a frequency (Hz)."""
    rows = {"i_ext_nA": [], "rate_e_Hz": [], "rate_i_Hz": [], "max_real_per_ms": [], "freq_Hz": []}
    for drive in np.asarray(i_ext_nA, float):
        x = fixed_point(drive, p)
        ev = np.linalg.eigvals(jacobian(x, drive, p))
        lead = ev[np.argmax(ev.real)]
        rows["i_ext_nA"].append(drive)
        rows["rate_e_Hz"].append(1e3 * x[0])
        rows["rate_i_Hz"].append(1e3 * x[1])
        rows["max_real_per_ms"].append(float(lead.real))
        rows["freq_Hz"].append(1e3 * abs(lead.imag) / (2 * np.pi))
    return {k: np.asarray(v) for k, v in rows.items()}


class MeanFieldHopf(NamedTuple):
    drive_nA: float
    frequency_Hz: float
    unstable_side: int  # +1: oscillation above the drive, -1: below
    point: HopfPoint


def hopf(p: MeanFieldParams, lo_nA=0.0, hi_nA=4.0, n_grid=41) -> MeanFieldHopf | None:
    """Hopf point of the rate model as ``I_ext`` sweeps ``[lo, hi]``; None if there is none."""
    point = find_hopf(
        lambda x, d: rhs(x, d, p), lo_nA, hi_nA, equilibrium=lambda d: fixed_point(d, p),
        n_grid=n_grid, jacobian=lambda x, d: jacobian(x, d, p),
    )  # fmt: skip
    if point is None:
        return None
    return MeanFieldHopf(
        point.parameter, 1e3 * point.omega / (2 * np.pi), point.unstable_side, point
    )


def criticality(p: MeanFieldParams, h: MeanFieldHopf, distances_nA=(0.02, 0.08, 0.32), t_ms=3000.0):
    """Super/subcritical from limit-cycle amplitudes of E past onset (:func:`hopf_criticality`)."""
    return hopf_criticality(
        lambda x, d: rhs(x, d, p), h.point, distances_nA, t_ms, component=0, kick=1e-2,
        max_step=0.5,
    )  # fmt: skip


def frequency_vs_tau_gaba(taus_ms, p: MeanFieldParams, lo_nA=0.0, hi_nA=4.0) -> list[dict]:
    """Hopf drive and frequency for each ``tau_GABA`` (None entries where there is no Hopf)."""
    out = []
    for tau in taus_ms:
        h = hopf(p.replace(tau_gaba_ms=float(tau)), lo_nA, hi_nA)
        out.append({
            "tau_gaba_ms": float(tau), "hopf_drive_nA": None if h is None else h.drive_nA,
            "frequency_Hz": None if h is None else h.frequency_Hz,
        })  # fmt: skip
    return out


def cliff_drive_nA(
    p: MeanFieldParams, threshold_Hz=0.05, lo_nA=0.0, hi_nA=4.0, evoked=True
) -> float | None:  # fmt: skip
    """Drive at which the equilibrium I rate reaches ``threshold_Hz`` (the mean-field cliff),
    found with brentq; None when it does not cross inside ``[lo, hi]``.

    With ``sigma_V`` noise the I cells fire spontaneously at zero drive (0.25 Hz with the
    defaults, above the 0.05 Hz threshold), unlike the noise-free spiking network; with
    ``evoked=True`` the threshold applies to the evoked rate ``r_I(d) - r_I(lo)``.
    """
    base = 1e3 * fixed_point(lo_nA, p)[1] if evoked else 0.0

    def excess(d):
        return 1e3 * fixed_point(d, p)[1] - base - threshold_Hz

    lo, hi = excess(lo_nA), excess(hi_nA)
    if lo >= 0 or hi < 0:
        return None
    return float(optimize.brentq(excess, lo_nA, hi_nA, xtol=1e-9))


def cliff_exponent(
    p: MeanFieldParams, scales=(0.25, 0.5, 1.0, 2.0), threshold_Hz=0.05, evoked=True
) -> dict:  # fmt: skip
    """Mean-field cliff ``f*`` for W_EI scaled by each ``c`` and the exponent ``alpha`` of
    ``c^alpha f* = const`` (alpha = minus the slope of log f* against log c)."""
    from ei_sim.analysis.cliff import fit_alpha

    drives = [
        cliff_drive_nA(p.replace(w_ei_uS=p.w_ei_uS * c), threshold_Hz, evoked=evoked)
        for c in scales
    ]
    ok = [(c, f) for c, f in zip(scales, drives, strict=True) if f is not None and f > 0]
    fit = fit_alpha([c for c, _ in ok], [f for _, f in ok]) if len(ok) >= 3 else None
    return {"scales": list(scales), "cliff_drive_nA": drives, "alpha": fit}


__all__ += ["Criticality"]
