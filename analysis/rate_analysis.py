"""Fixed points, Jacobian spectrum and oscillation onset of the Wilson-Cowan rate model.

All in continuous time, ``tau dr/dt = -r + f(W r + u)`` (W signed, column convention, see
:func:`ei_sim.rate.perron.signed_recurrent_matrix`; u the input drive of one input). At a fixed
point r*, the Jacobian is ``A = T^-1 (-I + S W)`` in 1/ms with ``S = diag f'(W r* + u)``;
an eigenvalue ``lambda`` oscillates at ``|Im lambda| / (2 pi)`` kHz, i.e.
``1000 |Im lambda| / (2 pi)`` Hz.

Oscillation onset: scale ``W_EI`` (E -> I) by c over a grid, follow the fixed point by
continuation, and report the first c where the leading eigenvalue crosses into the right
half plane with a nonzero imaginary part (a Hopf crossing), refined by bisection, or
"none" when no such crossing occurs on the grid.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax.numpy as jnp
import numpy as np
import scipy.optimize
import scipy.special

from ei_sim.rate import network as wc
from ei_sim.rate.perron import (
    continuous_time_matrix,
    isolated_bound_ee,
    isolated_bound_ii,
    lds_monitor,
    perron_root,
    signed_recurrent_matrix,
    single_blas_thread,
    tau_vector_ms,
)

IMAG_TOL_PER_MS = 1e-6


class FixedPoint(NamedTuple):
    rates: np.ndarray  # (n_units,), E units first
    residual: float  # max |-r + f(W r + u)|
    converged: bool


class Onset(NamedTuple):
    scale: float | None  # W_EI scale factor at the Hopf crossing, None when none found
    frequency_Hz: float | None
    eigenvalue_per_ms: complex | None


def drive_vector(params: wc.Params, config: wc.WCConfig, x) -> np.ndarray:
    """Input drive ``u = x W_in + b_in`` (E units first) for one input ``x`` (n_in,)."""
    drive = wc.input_drive(params, jnp.asarray(x, jnp.float32), config)
    return np.concatenate([np.asarray(drive.e), np.asarray(drive.i)]).astype(np.float64)


def _sigmoid_pair(x):
    s = scipy.special.expit(x)
    return s, s * (1 - s)


# NumPy twins of ei_sim.rate.network.ACTIVATIONS: x -> (f(x), f'(x)).
_NUMPY_ACTIVATIONS = {
    "relu": lambda x: (np.maximum(x, 0.0), (x > 0).astype(np.float64)),
    "softplus": lambda x: (np.logaddexp(0.0, x), scipy.special.expit(x)),
    "sigmoid": _sigmoid_pair,
}


def _f_and_slope(config: wc.WCConfig, pre: np.ndarray):
    return _NUMPY_ACTIVATIONS[config.activation](np.asarray(pre, np.float64))


def fixed_point(params, config, u: np.ndarray, r0=None, tol: float = 1e-8) -> FixedPoint:
    """Solve ``r = f(W r + u)``: relax 500 Euler steps from ``r0`` (default 0), polish with
    :func:`scipy.optimize.root` (hybr, analytic Jacobian)."""
    w = signed_recurrent_matrix(params)
    tau = tau_vector_ms(config)
    r = np.zeros(config.n_units) if r0 is None else np.asarray(r0, np.float64)
    for _ in range(500):
        r = r + config.dt_ms / tau * (-r + _f_and_slope(config, w @ r + u)[0])
        if not np.all(np.isfinite(r)) or np.max(np.abs(r)) > 1e6:
            return FixedPoint(r, math.inf, False)

    def residual(r):
        return -r + _f_and_slope(config, w @ r + u)[0]

    def jacobian(r):
        return -np.eye(len(r)) + _f_and_slope(config, w @ r + u)[1][:, None] * w

    sol = scipy.optimize.root(residual, r, jac=jacobian, method="hybr", tol=tol)
    gap = float(np.max(np.abs(residual(sol.x))))
    return FixedPoint(sol.x, gap, bool(gap < 1e-6))


def jacobian_at(params, config, point: FixedPoint, u: np.ndarray) -> np.ndarray:
    """Continuous-time Jacobian ``A = T^-1 (-I + S W)`` (1/ms) at a fixed point."""
    slopes = _f_and_slope(config, signed_recurrent_matrix(params) @ point.rates + u)[1]
    return continuous_time_matrix(params, config, slopes)


def spectrum(a: np.ndarray) -> np.ndarray:
    """Eigenvalues (1/ms) sorted by decreasing real part."""
    values = np.linalg.eigvals(a)
    return values[np.argsort(-values.real)]


def _leading(params, config, u, scale, r0):
    scaled = params._replace(w_ei=params.w_ei * scale)
    point = fixed_point(scaled, config, u, r0)
    if not point.converged:
        return None, point
    return spectrum(jacobian_at(scaled, config, point, u))[0], point


def _is_hopf(lead) -> bool:
    return lead is not None and lead.real > 0 and abs(lead.imag) > IMAG_TOL_PER_MS


@single_blas_thread
def oscillation_onset(params, config, u, scales=None, n_bisect: int = 12) -> Onset:
    """First Hopf crossing as W_EI is scaled (default scales 0, 0.1, ..., 8)."""
    scales = np.linspace(0.0, 8.0, 81) if scales is None else np.asarray(scales, float)
    r0, prev_scale, prev_stable = None, None, False
    for c in scales:
        lead, point = _leading(params, config, u, c, r0)
        r0 = point.rates if point.converged else None
        if _is_hopf(lead) and prev_stable:
            lo, hi, hit = prev_scale, c, lead
            for _ in range(n_bisect):
                mid = 0.5 * (lo + hi)
                lead_mid, _ = _leading(params, config, u, mid, r0)
                if _is_hopf(lead_mid):
                    hi, hit = mid, lead_mid
                else:
                    lo = mid
            freq = 1000.0 * abs(hit.imag) / (2 * math.pi)
            return Onset(float(hi), float(freq), complex(hit))
        prev_scale, prev_stable = c, lead is not None and lead.real < 0
    return Onset(None, None, None)


@single_blas_thread
def analyze(params, config, x, scales=None) -> dict:
    """Summary for one input: fixed point, spectrum, stability bounds, LDS, onset."""
    u = drive_vector(params, config, x)
    point = fixed_point(params, config, u)
    lead = spectrum(jacobian_at(params, config, point, u))[:3] if point.converged else []
    lds = lds_monitor(params, config)
    onset = oscillation_onset(params, config, u, scales)
    return {
        "fixed_point_converged": point.converged,
        "fixed_point_residual": point.residual,
        "rate_e": float(np.mean(point.rates[: config.n_e])),
        "rate_i": float(np.mean(point.rates[config.n_e :])),
        "leading_eigenvalues_per_ms": [complex(v) for v in lead],
        "rho_ee": float(perron_root(params.w_ee)),
        "rho_ii": float(perron_root(params.w_ii)),
        "bound_ee": isolated_bound_ee(),
        "bound_ii": isolated_bound_ii(config.alpha_i),
        "lds_stable": lds.stable,
        "lds_margin_per_ms": lds.margin,
        "onset_scale": onset.scale,
        "onset_frequency_Hz": onset.frequency_Hz,
    }


def format_report(report: dict) -> str:
    lead = report["leading_eigenvalues_per_ms"]
    lead_text = f"{lead[0].real:+.4f}{lead[0].imag:+.4f}j /ms" if lead else "n/a"
    onset = (
        "none"
        if report["onset_scale"] is None
        else f"W_EI x {report['onset_scale']:.3f} at {report['onset_frequency_Hz']:.1f} Hz"
    )
    return (
        f"fixed point: E {report['rate_e']:.3f}, I {report['rate_i']:.3f} "
        f"(converged {report['fixed_point_converged']}); leading eigenvalue {lead_text}; "
        f"rho_EE {report['rho_ee']:.3f} (bound {report['bound_ee']:.0f}), "
        f"rho_II {report['rho_ii']:.3f} (bound {report['bound_ii']:.0f}); "
        f"LDS {'certified' if report['lds_stable'] else 'not certified'} "
        f"(margin {report['lds_margin_per_ms']:+.4f} /ms); oscillation onset: {onset}"
    )
