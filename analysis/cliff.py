"""Recruitment cliff f* of an input-scale sweep and its exponent across coupling scales.

Rule: with input scales ``s_1 < s_2 < ...`` and I rates ``r_k``, the cliff is the midpoint
``f* = (s_lo + s_hi) / 2`` of the last scale below the threshold (default 0.05 Hz) and the
first at or above it. Optional refinement: log-linear interpolation,
``log r`` linear in ``s`` between the two bracketing points (only when both rates are > 0).
When the cliff cannot be located (fewer than two points, no crossing, or the I rate already
at or above the threshold at the smallest scale) the result carries that status and
``f_star = None``; nothing is invented.

Exponent: across W_EI scales ``c``, ``c^alpha f* = const``, i.e. ``log f* = k - alpha
log c``; ``alpha`` is minus the least-squares slope (:func:`scipy.stats.linregress`) with its
standard error and a Student-t 95 % interval. It is the W_EI law (the lab's): a W_IE sweep
gets no alpha, and the report says why (:func:`alpha_note`); nor does a sweep with fewer than
two located cliffs. When every located f* is the same, alpha is 0 with no uncertainty to
give (the points lie on a horizontal line: no residual), and the report says so in words.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy import stats

from ei_sim.sweeps import store as sweeps_store

SWEEP_KINDS = ("scale_sweep", "coupling_sweep")


class CliffNotFound(ValueError):
    """The cliff cannot be located in this sweep (too few points or no crossing)."""


class Cliff(NamedTuple):
    f_star: float | None
    s_below: float | None  # last scale below the threshold
    s_above: float | None  # first scale at or above it
    status: str  # "ok", "too_few_points", "no_crossing", "above_at_smallest_scale"
    refined: float | None = None  # log-linear interpolation (None when not possible)

    @property
    def spacing(self) -> float | None:
        return None if self.f_star is None else self.s_above - self.s_below


def find_cliff(scales, rate_i_Hz, threshold_Hz=0.05, refine=False, strict=False) -> Cliff:
    """The recruitment cliff of one sweep (module docstring). ``strict``: raise
    :class:`CliffNotFound` instead of returning a not-"ok" status."""
    s = np.asarray(scales, dtype=float)
    r = np.asarray(rate_i_Hz, dtype=float)
    if s.shape != r.shape or s.ndim != 1:
        raise ValueError(f"scales and rates must be 1-D of equal length, got {s.shape}, {r.shape}")
    order = np.argsort(s)
    s, r = s[order], r[order]
    keep = np.isfinite(r)
    s, r = s[keep], r[keep]
    status = None
    if s.size < 2:
        status = "too_few_points"
    elif r[0] >= threshold_Hz:
        status = "above_at_smallest_scale"
    elif not np.any(r >= threshold_Hz):
        status = "no_crossing"
    if status is not None:
        if strict:
            raise CliffNotFound(
                f"cannot locate the cliff ({status.replace('_', ' ')}; {s.size} points, "
                f"threshold {threshold_Hz} Hz); extend the scale range or add points"
            )
        return Cliff(None, None, None, status)
    k = int(np.argmax(r >= threshold_Hz))
    lo, hi = s[k - 1], s[k]
    refined = None
    if refine and r[k - 1] > 0:
        a, b = np.log(r[k - 1]), np.log(r[k])
        refined = float(lo + (np.log(threshold_Hz) - a) / (b - a) * (hi - lo)) if b > a else None
    return Cliff(float(0.5 * (lo + hi)), float(lo), float(hi), "ok", refined)


class AlphaFit(NamedTuple):
    alpha: float
    stderr: float | None
    ci95: tuple[float, float] | None
    n: int
    r_squared: float | None
    note: str = ""  # why there is no uncertainty, in words


def fit_alpha(coupling_scales, f_star) -> AlphaFit:
    """``alpha`` of ``c^alpha f* = const`` from a log-log line; needs >= 2 points (>= 3 for an
    uncertainty)."""
    c = np.asarray(coupling_scales, dtype=float)
    f = np.asarray(f_star, dtype=float)
    if c.size < 2 or np.any(c <= 0) or np.any(f <= 0):
        raise ValueError("alpha needs at least two positive (c, f*) pairs")
    if np.ptp(np.log(f)) == 0:
        return AlphaFit(0.0, None, None, int(c.size), None, "f* is the same at every coupling "
                        "scale: the line is flat and has no residual, so alpha = 0 has no "
                        "uncertainty to give (the cliff may still move by less than the grid "
                        "spacing)")  # fmt: skip
    fit = stats.linregress(np.log(c), np.log(f))
    alpha = -float(fit.slope) + 0.0  # no "-0"
    if c.size < 3:
        return AlphaFit(alpha, None, None, int(c.size), None,
                        "two points: a line through them has no uncertainty")  # fmt: skip
    half = float(stats.t.ppf(0.975, c.size - 2) * fit.stderr)
    return AlphaFit(
        alpha, float(fit.stderr), (alpha - half, alpha + half), int(c.size), fit.rvalue**2
    )


def cliff_moves(coupling_scales, cliffs: list[Cliff]) -> dict:
    """Does the coupling move the cliff? Compare the spread of f* across coupling scales with
    the largest grid spacing around the cliffs: a spread within one grid step is not resolved."""
    ok = [cl for cl in cliffs if cl.status == "ok"]
    if len(ok) < 2:
        return {"moves": None, "statement": "cannot tell: fewer than two located cliffs"}
    f = np.array([cl.f_star for cl in ok])
    spread = float(f.max() - f.min())
    spacing = float(max(cl.spacing for cl in ok))
    moves = spread > spacing
    verdict = "moves" if moves else "does not move"
    statement = (
        f"coupling {verdict} the cliff: f* spread {spread:.3g} across scales "
        f"{list(map(float, coupling_scales))} vs grid spacing {spacing:.3g}"
    )
    return {"moves": bool(moves), "spread": spread, "spacing": spacing, "statement": statement}


def alpha_text(result: dict) -> str:
    """``alpha = 0.52 +- 0.04 (95% CI [0.4, 0.64], n=4)``, or why there is none, in words."""
    fit = result.get("alpha")
    if fit is None:
        return result.get("alpha_note") or "alpha: not defined (fewer than two located cliffs)"
    if fit.stderr is None or fit.ci95 is None or not np.isfinite(fit.stderr):
        return f"alpha = {fit.alpha:.3g} (n={fit.n}; {fit.note or 'no uncertainty'})"
    return (f"alpha = {fit.alpha:.3g} +- {fit.stderr:.3g} (95% CI [{fit.ci95[0]:.3g}, "
            f"{fit.ci95[1]:.3g}], n={fit.n})")  # fmt: skip


def read_sweep(path: str, expected_kinds=SWEEP_KINDS) -> dict:
    """Read a sweep store (:func:`ei_sim.sweeps.store.read_sweep`): kind, coupling_target, scales
    (S,), coupling_scales (C,) and accuracy / rate_e_Hz / rate_i_Hz as (C, S)."""
    stored = sweeps_store.read_sweep(path, expected_kinds)
    attrs = stored["attrs"]
    if "rate_i_Hz" not in stored:
        raise ValueError(f"{path} lacks dataset(s) ['rate_i_Hz']; is it an ei-sim sweep store?")
    out = {"kind": attrs.get("kind"), "coupling_target": attrs.get("coupling_target", "none")}
    out["scales"] = np.asarray(stored["scales"], float)
    rate_i = stored["rate_i_Hz"]
    n_c = 1 if np.ndim(rate_i) == 1 else rate_i.shape[0]
    out["coupling_scales"] = np.asarray(stored.get("coupling_scales", np.ones(n_c)), float)
    for name in ("accuracy", "rate_e_Hz", "rate_i_Hz"):
        if name in stored:
            out[name] = np.atleast_2d(np.asarray(stored[name], float))
    if out["rate_i_Hz"].shape != (out["coupling_scales"].size, out["scales"].size):
        raise ValueError(f"{path}: rate_i_Hz has shape {out['rate_i_Hz'].shape}, expected (C, S)")
    return out


def analyze_sweep(path: str, threshold_Hz=0.05, refine=True) -> dict:
    """Cliff per coupling scale, alpha (W_EI sweeps, >= 2 located cliffs) and whether the
    coupling moves the cliff."""
    from ei_sim import validate

    validate.positive("threshold_Hz", threshold_Hz, 1000.0)
    sweep = read_sweep(path)
    cs = sweep["coupling_scales"]
    cliffs = [find_cliff(sweep["scales"], row, threshold_Hz, refine) for row in sweep["rate_i_Hz"]]
    out = {**sweep, "threshold_Hz": threshold_Hz, "cliffs": cliffs, "alpha": None}
    located = [(c, cl.f_star) for c, cl in zip(cs, cliffs, strict=True) if cl.status == "ok"]
    out["alpha_note"] = alpha_note(sweep["coupling_target"], located)
    if not out["alpha_note"]:
        out["alpha"] = fit_alpha(*zip(*located, strict=True))
    out["moves"] = cliff_moves(cs, cliffs)
    return out


def alpha_note(target: str, located: list) -> str:
    """Why a sweep has no alpha, in words ("" when it has one): alpha is the exponent of the
    W_EI law, and needs two located cliffs at positive coupling scales."""
    if target != "w_ei":
        what = "scales W_IE" if target == "w_ie" else "scales W_in only"
        return (f"alpha: not defined here; it is the exponent of c^alpha f* = const over W_EI "
                f"scales c, and this sweep {what}")  # fmt: skip
    positive = [c for c, _ in located if c > 0]
    if len(positive) < 2:
        return (f"alpha: not defined; it needs the cliff located at two or more W_EI scales "
                f"> 0, and this sweep has {len(positive)}")  # fmt: skip
    return ""


def format_cliff_report(result: dict) -> str:
    lines = [
        f"sweep kind {result['kind']}, coupling target {result['coupling_target']}, "
        f"I-rate threshold {result['threshold_Hz']} Hz"
    ]
    for c, cl in zip(result["coupling_scales"], result["cliffs"], strict=True):
        if cl.status != "ok":
            lines.append(f"  c={c:g}: cannot locate the cliff ({cl.status})")
            continue
        ref = "" if cl.refined is None else f", log-linear {cl.refined:.4g}"
        lines.append(
            f"  c={c:g}: f*={cl.f_star:.4g} (between {cl.s_below:g} and {cl.s_above:g}{ref})"
        )
    lines.append("  " + alpha_text(result))
    lines.append("  " + result["moves"]["statement"])
    return "\n".join(lines)
