"""Generic Hopf-bifurcation tools for any autonomous ODE ``dx/dt = rhs(x, p)``.

* :func:`numerical_jacobian`: central differences, ``J_ij = d rhs_i / d x_j``.
* :func:`find_hopf`: track the equilibrium along a parameter grid, take the real part of the
  leading complex-conjugate eigenvalue pair, ``r(p) = max Re{lambda : |Im lambda| > tol}``, find
  the first grid interval where ``r`` changes sign and refine the root with
  :func:`scipy.optimize.brentq`. At the Hopf point ``lambda = +- i omega``; ``omega`` is in
  radians per unit of time of the ODE (frequency ``omega / 2 pi``).
* :func:`hopf_criticality`: integrate (:func:`scipy.integrate.solve_ivp`) at a few distances
  ``d`` past onset and look at the limit-cycle amplitude ``A(d)``. A supercritical Hopf grows
  continuously, ``A ~ sqrt(d)`` (so ``A(d_min) / A(d_max) ~ sqrt(d_min / d_max)``); a
  subcritical one jumps to a finite amplitude (the ratio stays near 1) or runs away.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy import integrate, optimize


class HopfPoint(NamedTuple):
    parameter: float
    omega: float  # rad per time unit of the ODE
    state: np.ndarray  # equilibrium at the Hopf point
    unstable_side: int  # +1: the equilibrium is unstable above `parameter`, -1: below


def numerical_jacobian(f, x, step: float = 1e-6) -> np.ndarray:
    """Central-difference Jacobian of ``f: R^n -> R^n`` at ``x`` (relative step)."""
    x = np.asarray(x, dtype=float)
    jac = np.empty((x.size, x.size))
    for j in range(x.size):
        h = step * max(1.0, abs(x[j]))
        dx = np.zeros_like(x)
        dx[j] = h
        jac[:, j] = (np.asarray(f(x + dx)) - np.asarray(f(x - dx))) / (2 * h)
    return jac


def leading_complex_pair(eigenvalues, tol: float = 1e-9):
    """The eigenvalue with the largest real part among those with ``Im > tol``; None if none."""
    ev = np.asarray(eigenvalues)
    cplx = ev[ev.imag > tol]
    return None if cplx.size == 0 else cplx[np.argmax(cplx.real)]


def _equilibrium(rhs, p, guess):
    sol = optimize.root(lambda x: rhs(x, p), guess, method="hybr")
    residual = float(np.max(np.abs(rhs(sol.x, p))))
    if not (sol.success or residual < 1e-10 * (1.0 + float(np.max(np.abs(sol.x))))):
        raise ValueError(f"no equilibrium found at parameter {p}: {sol.message}")
    return sol.x


def find_hopf(
    rhs, param_lo, param_hi, x0=None, equilibrium=None, n_grid: int = 41, jacobian=None
) -> HopfPoint | None:
    """First Hopf point of ``rhs(x, p)`` for ``p`` in ``[param_lo, param_hi]``, or None.

    Give either ``x0`` (a guess for the equilibrium at ``param_lo``; the branch is continued
    with :func:`scipy.optimize.root`) or ``equilibrium(p) -> x``. ``jacobian(x, p)`` defaults to
    :func:`numerical_jacobian`.
    """
    if equilibrium is None and x0 is None:
        raise ValueError("find_hopf needs x0 (an equilibrium guess) or equilibrium(p)")
    jac = jacobian or (lambda x, p: numerical_jacobian(lambda y: rhs(y, p), x))
    grid = np.linspace(param_lo, param_hi, n_grid)
    states, guess = [], None if x0 is None else np.asarray(x0, float)
    for p in grid:
        guess = equilibrium(p) if equilibrium else _equilibrium(rhs, p, guess)
        states.append(guess)

    def state_at(p):
        if equilibrium:
            return equilibrium(p)
        k = int(np.argmin(np.abs(grid - p)))
        return _equilibrium(rhs, p, states[k])

    def real_part(p, x=None):
        x = state_at(p) if x is None else x
        lam = leading_complex_pair(np.linalg.eigvals(jac(x, p)))
        return np.nan if lam is None else float(lam.real)

    r = np.array([real_part(p, x) for p, x in zip(grid, states, strict=True)])
    for k in range(n_grid - 1):
        if np.isfinite(r[k]) and np.isfinite(r[k + 1]) and r[k] * r[k + 1] < 0:
            p_h = optimize.brentq(real_part, grid[k], grid[k + 1], xtol=1e-10 * (1 + abs(grid[k])))
            x_h = state_at(p_h)
            lam = leading_complex_pair(np.linalg.eigvals(jac(x_h, p_h)))
            return HopfPoint(float(p_h), float(abs(lam.imag)), x_h, 1 if r[k + 1] > 0 else -1)
    return None


class Criticality(NamedTuple):
    kind: str  # "supercritical" or "subcritical"
    distances: np.ndarray
    amplitudes: np.ndarray
    periods: np.ndarray


def cycle_amplitude(rhs, p, x_start, t_end, component=0, max_step=np.inf):
    """Half peak-to-peak of ``x[component]`` over the last third of ``[0, t_end]``, and the
    mean period between successive maxima there (nan when there are fewer than two)."""
    sol = integrate.solve_ivp(
        lambda t, x: rhs(x, p), (0.0, t_end), x_start, method="LSODA", max_step=max_step,
        dense_output=True, rtol=1e-7, atol=1e-10,
    )  # fmt: skip
    t = np.linspace(2 * t_end / 3, t_end, 3000)
    y = sol.sol(t)[component]
    if not np.all(np.isfinite(y)):
        return np.inf, np.nan
    inner = (y[1:-1] > y[:-2]) & (y[1:-1] >= y[2:])
    t_max = t[1:-1][inner]
    period = float(np.mean(np.diff(t_max))) if t_max.size >= 2 else np.nan
    return 0.5 * float(y.max() - y.min()), period


def hopf_criticality(
    rhs, hopf: HopfPoint, distances, t_end, component=0, kick=1e-3, max_step=np.inf,
    sqrt_tolerance: float = 2.0,
) -> Criticality:  # fmt: skip
    """Classify ``hopf`` from limit-cycle amplitudes at ``p = p_H + side * d``.

    Supercritical when the amplitude vanishes like ``sqrt(d)``: the ratio
    ``A(d_min)/A(d_max)`` lies within a factor ``sqrt_tolerance`` of ``sqrt(d_min/d_max)``.
    Otherwise (a jump to a finite amplitude, or a runaway) subcritical.
    """
    d = np.sort(np.asarray(distances, dtype=float))
    amps, periods = [], []
    for dist in d:
        p = hopf.parameter + hopf.unstable_side * dist
        x_start = np.asarray(hopf.state, float) * (1 + kick) + kick * 1e-3
        a, per = cycle_amplitude(rhs, p, x_start, t_end, component, max_step)
        amps.append(a)
        periods.append(per)
    amps = np.asarray(amps)
    expected = np.sqrt(d[0] / d[-1])
    ok = np.all(np.isfinite(amps)) and amps[-1] > 0
    ratio = amps[0] / amps[-1] if ok else np.inf
    superc = ok and expected / sqrt_tolerance <= ratio <= expected * sqrt_tolerance
    return Criticality("supercritical" if superc else "subcritical", d, amps, np.asarray(periods))
