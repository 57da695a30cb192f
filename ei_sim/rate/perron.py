"""Stability tools for the rate model: Perron roots, Schur bounds, spectral penalty, LDS monitor.

* :func:`perron_root` estimates the Perron (dominant, real, non-negative) eigenvalue of a
  non-negative matrix by power iteration from the uniform vector with l1 normalisation::

      v_0 = 1/n,   v_{k+1} = W v_k / sum(W v_k),   rho = sum(W v_K) / sum(v_K)

  It is a plain differentiable JAX function (gradients flow through the K_p iterations).
  ``rho(W) = rho(W^T)``, so the row convention of the weights does not matter.
* Isolated-block Schur bounds for the forward-Euler map with a 1-Lipschitz activation:
  E alone, ``r <- (1 - a) r + a W r``, is stable iff ``rho(W_EE) < 1`` (for every a);
  I alone, ``r <- (1 - a) r - a W r``, needs ``1 - a - a rho(W_II) > -1``, i.e.
  ``rho(W_II) < 2/alpha_I - 1`` (a bound on the Perron mode; the coupled system may let E
  sit above its own bound because inhibition stabilises it).
* :func:`spectral_penalty`: ``relu(rho_EE - t_EE)^2 + relu(rho_II - t_II)^2``.
* :func:`lds_monitor` (NumPy, not differentiated): a sufficient test of linear diagonal
  stability (LDS) of the coupled **continuous-time** matrix ``A = T^-1 (-I + S W)``
  (T = diag(tau), S = diag(activation slopes), W the signed recurrent matrix in column
  convention); the Jacobian of one Euler step is ``I + dt A``. A is LDS when some positive
  diagonal D makes ``D A + A^T D`` negative definite; then ``V = x^T D x`` is a Lyapunov
  function of the linearisation.
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import jax.numpy as jnp
import numpy as np
import scipy.linalg
from jax import lax
from threadpoolctl import threadpool_limits

DEFAULT_PERRON_STEPS = 20


def perron_root(w: jnp.ndarray, n_steps: int = DEFAULT_PERRON_STEPS) -> jnp.ndarray:
    """Power-iteration estimate of the Perron root of the non-negative square matrix ``w``."""
    if w.ndim != 2 or w.shape[0] != w.shape[1]:
        raise ValueError(f"perron_root needs a square matrix, got shape {w.shape}")
    if not (isinstance(n_steps, int) and n_steps >= 1):
        raise ValueError(f"n_steps must be an integer >= 1, got {n_steps!r}")
    n = w.shape[0]

    def body(v, _):
        wv = w @ v
        total = jnp.sum(wv)
        positive = total > 0
        return jnp.where(positive, wv / jnp.where(positive, total, 1.0), v), None

    v, _ = lax.scan(body, jnp.full((n,), 1.0 / n, dtype=w.dtype), None, length=n_steps)
    return jnp.sum(w @ v) / jnp.sum(v)


def isolated_bound_ee() -> float:
    """Schur bound on rho(W_EE) for E alone: 1 (independent of dt)."""
    return 1.0


def isolated_bound_ii(alpha_i: float) -> float:
    """Schur bound on rho(W_II) for I alone: ``2/alpha_I - 1`` (19 at dt = 1 ms, tau_I = 10 ms)."""
    if not 0 < alpha_i <= 1:
        raise ValueError(f"alpha_I = dt/tau_I must lie in (0, 1], got {alpha_i}")
    return 2.0 / alpha_i - 1.0


def check_target(name: str, value) -> float:
    """A hinge target must be a finite number >= 0 (rho is never negative)."""
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if not (ok and math.isfinite(value) and value >= 0):
        raise ValueError(
            f"{name} must be a finite number >= 0 (a Perron root is never negative), "
            f"got {value!r}; e.g. 0.9 for W_EE"
        )
    return float(value)


def spectral_penalty(w_ee, w_ii, target_ee: float, target_ii: float, n_steps=20):
    """Squared hinge above the targets: ``relu(rho_EE - t_EE)^2 + relu(rho_II - t_II)^2``."""
    t_ee = check_target("target_ee", target_ee)
    t_ii = check_target("target_ii", target_ii)
    rho_ee = perron_root(w_ee, n_steps)
    rho_ii = perron_root(w_ii, n_steps)
    return jnp.maximum(rho_ee - t_ee, 0.0) ** 2 + jnp.maximum(rho_ii - t_ii, 0.0) ** 2


# --- LDS monitor (NumPy) -------------------------------------------------------------------


class LDSReport(NamedTuple):
    """Outcome of :func:`lds_monitor`.

    ``stable``: a diagonal Lyapunov certificate was found. ``margin``: ``-lambda_max`` of
    ``(D A + A^T D)/2`` for the best D tried (D scaled to max entry 1), in 1/ms; > 0 when
    certified. ``method``: "metzler" (certificate valid for every activation slope in
    [0, 1]), "block-scaled" (valid for the all-active linearisation S = I) or "none".
    """

    stable: bool
    margin: float
    method: str


def signed_recurrent_matrix(params) -> np.ndarray:
    """``W = [[W_EE^T, -W_IE^T], [W_EI^T, -W_II^T]]`` (post x pre, E units first)."""
    w_ee, w_ei, w_ie, w_ii = (np.asarray(getattr(params, n), np.float64) for n in _BLOCKS)
    return np.block([[w_ee.T, -w_ie.T], [w_ei.T, -w_ii.T]])


_BLOCKS = ("w_ee", "w_ei", "w_ie", "w_ii")


def tau_vector_ms(config) -> np.ndarray:
    return np.concatenate(
        [np.full(config.n_e, config.tau_e_ms), np.full(config.n_i, config.tau_i_ms)]
    )


def continuous_time_matrix(params, config, slopes=None) -> np.ndarray:
    """``A = T^-1 (-I + S W)`` in 1/ms; ``slopes`` (n_units,) default all ones."""
    w = signed_recurrent_matrix(params)
    s = np.ones(w.shape[0]) if slopes is None else np.asarray(slopes, np.float64)
    return (-np.eye(w.shape[0]) + s[:, None] * w) / tau_vector_ms(config)[:, None]


def _top_eigh(sym: np.ndarray):
    """Largest eigenvalue and its eigenvector of a symmetric matrix."""
    n = sym.shape[0]
    values, vectors = scipy.linalg.eigh(sym, subset_by_index=[n - 1, n - 1])
    return float(values[0]), vectors[:, 0]


def lyapunov_margin(a: np.ndarray, d: np.ndarray) -> float:
    """``-lambda_max((D A + A^T D) / 2)`` with D = diag(d / max d)."""
    da = (d / np.max(d))[:, None] * a
    return -_top_eigh(0.5 * (da + da.T))[0]


def refine_diagonal(a: np.ndarray, d: np.ndarray, n_iter: int = 30, step: float = 0.5):
    """Multiplicative descent on ``lambda_max(sym(D A))`` over positive diagonals D.

    With v the top eigenvector, ``d lambda_max / d d_i = v_i (A v)_i``; each iteration sets
    ``d_i <- d_i exp(-step g_i / max|g|)`` (then max d = 1), halving the step when it fails;
    stops early once the margin is positive (a certificate). Returns ``(best_margin, best_d)``.
    """
    d = d / np.max(d)
    best = (lyapunov_margin(a, d), d)
    for _ in range(n_iter):
        if best[0] > 0:
            break
        da = d[:, None] * a
        _, v = _top_eigh(0.5 * (da + da.T))
        g = v * (a @ v)
        trial = d * np.exp(-step * g / (np.max(np.abs(g)) + 1e-30))
        trial /= np.max(trial)
        margin = lyapunov_margin(a, trial)
        if margin > best[0]:
            best, d = (margin, trial), trial
        else:
            step *= 0.5
    return best


def metzler_majorant(params) -> np.ndarray:
    """``N``: off-diagonals ``|W|``, diagonal ``max(W_ii, 0)``. For every slope pattern in
    [0, 1], A is bounded entrywise (diagonal from above, off-diagonals in modulus) by the
    Metzler matrix ``M = T^-1 (-I + N)``, which is Hurwitz iff ``rho(N) < 1``."""
    w = signed_recurrent_matrix(params)
    n = np.abs(w)
    np.fill_diagonal(n, np.maximum(np.diag(w), 0.0))
    return n


def _perron_vector(n: np.ndarray, n_iter: int = 200):
    v = np.full(n.shape[0], 1.0 / n.shape[0])
    for _ in range(n_iter):
        v = n @ v + 1e-3 * v  # the small shift breaks periodicity
        v /= v.sum()
    return float((n @ v).sum() / v.sum()), v


def _metzler_margin(params, config) -> float | None:
    """Margin of ``D = diag(tau u / v)`` (u, v: left/right Perron vectors of N) on M."""
    n = metzler_majorant(params)
    rho, v = _perron_vector(n)
    if rho >= 1:
        return None
    _, u = _perron_vector(n.T)
    tau = tau_vector_ms(config)
    m = (-np.eye(n.shape[0]) + n) / tau[:, None]
    return lyapunov_margin(m, tau * (u + 1e-12) / (v + 1e-12))


def single_blas_thread(fn):
    """Run ``fn`` with one BLAS thread: next to JAX's thread pool on a small machine,
    multi-threaded LAPACK on 256 x 256 matrices is ~30x slower than single-threaded."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with threadpool_limits(limits=1, user_api="blas"):
            return fn(*args, **kwargs)

    return wrapper


@single_blas_thread
def lds_monitor(params, config, block_scales=None, refine_iter: int = 30) -> LDSReport:
    """Sufficient LDS test of the coupled continuous-time matrix (see the module docstring).

    1. Metzler criterion: if ``rho(N) < 1`` for the majorant N, D from its Perron vectors
       gives ``D M + M^T D < 0`` (checked numerically) and then
       ``x^T D A x <= |x|^T D M |x| < 0`` for A at any slopes in [0, 1].
    2. Otherwise try ``D = T diag(1_E, c 1_I)`` for the block scales c (default 13 values
       log-spaced over 1e-2..1e2) on the all-active A (S = I), then refine the best D by
       :func:`refine_diagonal` (``refine_iter`` iterations). This can certify systems where
       inhibition stabilises an E block above its isolated bound.
    """
    margin = _metzler_margin(params, config)
    if margin is not None and margin > 0:
        return LDSReport(True, margin, "metzler")
    a = continuous_time_matrix(params, config)
    tau = tau_vector_ms(config)
    scales = np.geomspace(1e-2, 1e2, 13) if block_scales is None else block_scales
    is_i = np.arange(config.n_units) >= config.n_e
    tried = [(lyapunov_margin(a, d), d) for d in (tau * np.where(is_i, c, 1.0) for c in scales)]
    margin, d = max(tried, key=lambda t: t[0])
    if margin <= 0 and refine_iter > 0:
        margin, d = refine_diagonal(a, d, refine_iter)
    return LDSReport(bool(margin > 0), margin, "block-scaled" if margin > 0 else "none")
