"""Check the mean-field predictions (:mod:`ei_sim.analysis.meanfield`) against the spiking PING
network.

Drive. Every input channel gets the same intensity ``q`` (a constant grey image), so each E
cell receives Poisson input whose mean current, with the AMPA driving force linearised at
rest as in the rate model, is::

    I_ext [nA] = 65 mV * tau_AMPA * W_in_total * r_max * q        (W_in_total = w_in_mean, uS)

(the fan-in-normalised W_in sums to ``w_in_mean`` per E cell). One batch holds one trial per
drive level, so a whole drive sweep is one simulation. Measurements, per drive level:

* oscillation: a gamma peak (:func:`ei_sim.sim.spectrum.gamma_peak`) in the trial's E activity
  whose significance (peak over band median) reaches ``min_significance``; the measured
  onset is the midpoint between the last silent level and the first level from which every
  higher level oscillates;
* E and I rates below onset: the level nearest to ``below_fraction`` x predicted onset;
* cliff and alpha: :func:`ei_sim.analysis.cliff.find_cliff` on the (drive, I rate) sweep for W_EI
  scaled by each ``c``, then :func:`ei_sim.analysis.cliff.fit_alpha`;
* gamma frequency at each tau_GABA: mean peak over ``n_trials_freq`` trials at
  ``freq_drive_nA``; the prediction is the rate model's linear frequency there,
  ``Im(lambda_lead) / 2 pi`` at the equilibrium.

Every row reports what was measured even when it is far from the prediction; the gap is
``(measurement - prediction) / |prediction|``.
"""

from __future__ import annotations

import jax
import numpy as np

from ei_sim.analysis import meanfield as mf
from ei_sim.analysis.cliff import find_cliff, fit_alpha
from ei_sim.data.encoding import poisson_events
from ei_sim.models import get_model
from ei_sim.sim.engine import simulate_jit
from ei_sim.sim.spectrum import gamma_peak, is_rhythmic

MIN_T_MS = 200.0  # 150 ms of E activity after the 50 ms drop: 6.7 Hz spectral resolution


def drive_per_intensity_nA(model, p: mf.MeanFieldParams) -> float:
    """Mean input current (nA) per unit of pixel intensity (module docstring)."""
    r_max_per_ms = model.config.r_max_Hz * 1e-3
    return p.exc_drive_mV * model.config.tau_ampa_ms * model.w_in_mean * r_max_per_ms


def run_levels(model, drives_nA, p, t_ms=300.0, seed=0, min_significance=10.0) -> dict:
    """One trial per drive level: E and I rates (Hz) and gamma peak frequency (Hz or nan)."""
    model = model.replace(t_ms=float(t_ms))
    c = model.config
    q = np.asarray(drives_nA, float) / drive_per_intensity_nA(model, p)
    if q.max() > 1:
        raise ValueError(f"drive {max(drives_nA):.3g} nA needs intensity > 1; raise w_in_mean")
    images = np.repeat(q[:, None], c.n_in, axis=1)
    events = poisson_events(images, c.n_steps, c.p_spike_per_unit_intensity, (seed, 1))
    key_w, key_s = jax.random.split(jax.random.PRNGKey(seed))
    state = model.init_state(key_s, len(q))
    _, rec = simulate_jit(
        model.init_weights(key_w), state, events, c, record=("spikes_e", "spikes_i"),
        n_steps=c.n_steps,
    )  # fmt: skip
    se, si = np.asarray(rec["spikes_e"]), np.asarray(rec["spikes_i"])
    seconds = c.n_steps * c.dt_ms * 1e-3
    freq, power = [], []
    for b in range(len(q)):
        peak = gamma_peak(se[:, b].mean(axis=1), c.dt_ms, drop_ms=min(50.0, t_ms / 2))
        rhythmic = is_rhythmic(peak, min_significance)
        freq.append(peak.frequency_Hz if rhythmic else np.nan)
        power.append(peak.power if rhythmic else 0.0)
    return {
        "drive_nA": np.asarray(drives_nA, float),
        "rate_e_Hz": se.sum(axis=0).mean(axis=1) / seconds,
        "rate_i_Hz": si.sum(axis=0).mean(axis=1) / seconds,
        "freq_Hz": np.asarray(freq), "power": np.asarray(power),
    }  # fmt: skip


def measured_onset(sweep: dict) -> float | None:
    """Midpoint between the last non-oscillating level and the first of the run of
    oscillating levels that reaches the top of the sweep; None without such a run."""
    osc = np.isfinite(sweep["freq_Hz"])
    d = sweep["drive_nA"]
    if not osc[-1] or osc.all():
        return None
    k = len(osc) - int(np.argmin(osc[::-1]))  # first index of the final oscillating run
    return float(0.5 * (d[k - 1] + d[k]))


def _row(quantity, prediction, measurement, note=""):
    gap = None
    if isinstance(prediction, float) and isinstance(measurement, float) and prediction != 0:
        gap = (measurement - prediction) / abs(prediction)
    return {"quantity": quantity, "prediction": prediction, "measurement": measurement,
            "relative_gap": gap, "note": note}  # fmt: skip


def _maybe(x):
    return None if x is None or not np.isfinite(x) else float(x)


def check(
    w_in_mean=1.2, drives_nA=None, coupling_scales=(0.5, 1.0, 2.0), taus_gaba_ms=(6.0, 9.0, 12.0),
    freq_drive_nA=1.5, n_trials_freq=8, t_ms=300.0, seed=0, below_fraction=0.5,
    threshold_Hz=0.05, params: mf.MeanFieldParams | None = None, setting: str = "canonical",
) -> list[dict]:  # fmt: skip
    """Run the spiking checks (about a minute on 2 cores) and return the comparison table:
    rows of ``{quantity, prediction, measurement, relative_gap, note}``."""
    if not t_ms >= MIN_T_MS:
        raise ValueError(f"t_ms must be at least {MIN_T_MS:g} ms (the first 50 ms are dropped "
                         f"and the gamma peak needs the rest), got {t_ms:g}")  # fmt: skip
    p = params or mf.MeanFieldParams()
    model = get_model("ping", setting=setting, w_in_mean=w_in_mean)
    drives = np.geomspace(0.05, 3.0, 16) if drives_nA is None else np.asarray(drives_nA, float)
    rows = []
    hopf = mf.hopf(p)
    sweeps = {c: run_levels(model.replace(w_ei_mean=model.w_ei * c, w_ie_mean=model.w_ie),
                            drives, p, t_ms, seed) for c in coupling_scales}  # fmt: skip
    base = sweeps.get(1.0) or next(iter(sweeps.values()))
    onset = measured_onset(base)
    rows.append(_row("oscillation onset (nA)", None if hopf is None else hopf.drive_nA,
                     _maybe(onset), "Hopf drive vs first sustained gamma peak"))  # fmt: skip
    rows += _rates_below_onset(base, p, hopf, below_fraction)
    rows += _frequency_rows(model, p, taus_gaba_ms, freq_drive_nA, n_trials_freq, t_ms, seed)
    rows.append(_alpha_row(sweeps, p, coupling_scales, threshold_Hz))
    return rows


def _rates_below_onset(sweep, p, hopf, fraction) -> list[dict]:
    target = fraction * (hopf.drive_nA if hopf is not None else 1.0)
    k = int(np.argmin(np.abs(sweep["drive_nA"] - target)))
    d = float(sweep["drive_nA"][k])
    x = mf.fixed_point(d, p)
    spont_Hz = 1e3 * float(mf.fixed_point(0.0, p)[1])
    note = f"at {d:.3g} nA; rate model's noise-driven I rate at 0 nA: {spont_Hz:.2g} Hz"
    return [
        _row("E rate below onset (Hz)", 1e3 * float(x[0]), float(sweep["rate_e_Hz"][k]), note),
        _row("I rate below onset (Hz)", 1e3 * float(x[1]), float(sweep["rate_i_Hz"][k]), note),
    ]


def _frequency_rows(model, p, taus, drive, n_trials, t_ms, seed) -> list[dict]:
    rows = []
    for tau in taus:
        pt = p.replace(tau_gaba_ms=float(tau))
        ev = np.linalg.eigvals(mf.jacobian(mf.fixed_point(drive, pt), drive, pt))
        pred = 1e3 * float(np.max(np.abs(ev.imag))) / (2 * np.pi)
        run = run_levels(model.replace(tau_gaba_ms=float(tau)), [drive] * n_trials, p, t_ms, seed)
        f = run["freq_Hz"][np.isfinite(run["freq_Hz"])]
        meas = float(f.mean()) if f.size else None
        note = f"at {drive:.3g} nA; {f.size}/{n_trials} trials with a peak"
        rows.append(_row(f"gamma frequency, tau_GABA={tau:g} ms (Hz)", pred, meas, note))
    return rows


def _alpha_row(sweeps, p, scales, threshold_Hz) -> dict:
    pred = mf.cliff_exponent(p, tuple(scales), threshold_Hz)["alpha"]
    located, notes = [], []
    for c, sw in sweeps.items():
        cl = find_cliff(sw["drive_nA"], sw["rate_i_Hz"], threshold_Hz)
        notes.append(f"c={c:g}: " + (f"{cl.f_star:.3g} nA" if cl.f_star else cl.status))
        if cl.status == "ok":
            located.append((c, cl.f_star))
    meas = fit_alpha(*zip(*located, strict=True)) if len(located) >= 2 else None
    err = "" if meas is None or meas.stderr is None else f"; measured +- {meas.stderr:.2g}"
    return _row(
        "cliff exponent alpha (W_EI)", None if pred is None else pred.alpha,
        None if meas is None else meas.alpha, "cliffs " + ", ".join(notes) + err,
    )  # fmt: skip


def format_table(rows: list[dict]) -> str:
    def fmt(v):
        if v is None:
            return "none"
        return f"{v:.4g}" if isinstance(v, float) else str(v)

    head = f"{'quantity':44s} {'prediction':>11s} {'measurement':>12s} {'gap':>8s}  note"
    lines = [head]
    for r in rows:
        gap = "none" if r["relative_gap"] is None else f"{100 * r['relative_gap']:+.0f}%"
        lines.append(
            f"{r['quantity']:44s} {fmt(r['prediction']):>11s} {fmt(r['measurement']):>12s} "
            f"{gap:>8s}  {r['note']}"
        )
    return "\n".join(lines)


# ------------------------------------------------------------------ a trained run's own check


def run_params(model, weights, base: mf.MeanFieldParams | None = None) -> mf.MeanFieldParams:
    """The rate model of a trained network: its couplings (the mean summed conductance onto a
    cell, ``W_EI`` summed over E per I cell and ``W_IE`` summed over I per E cell), its
    synaptic time constants, its cells and thresholds."""
    c = model.config
    base = base or mf.MeanFieldParams()
    w_ei = 0.0 if weights.w_ei is None else float(np.asarray(weights.w_ei).sum(axis=0).mean())
    w_ie = 0.0 if weights.w_ie is None else float(np.asarray(weights.w_ie).sum(axis=0).mean())
    return base.replace(
        w_ei_uS=w_ei, w_ie_uS=w_ie, tau_ampa_ms=c.tau_ampa_ms, tau_gaba_ms=c.tau_gaba_ms,
        tau_e_ms=c.cell_e.c_nF / c.cell_e.g_leak_uS, tau_i_ms=c.cell_i.c_nF / c.cell_i.g_leak_uS,
        e_leak_mV=c.e_leak_mV, v_th_mV=c.v_th_mV, v_reset_mV=c.v_reset_mV,
        cell_e=c.cell_e, cell_i=c.cell_i, inh_drive_mV=c.e_leak_mV - c.e_inh_mV,
        exc_drive_mV=c.e_exc_mV - c.e_leak_mV,
    )  # fmt: skip


def run_drive_nA(model, weights, images, p: mf.MeanFieldParams) -> float:
    """The mean input current (nA) onto an E cell at W_in scale 1, over the given images::

        I_ext = (E_exc - E_L) * tau_AMPA * r_max * mean_{images, cells} sum_i W_in[i, n] q_i

    (each input spike adds W_in to g_exc, which decays with tau_AMPA: its mean is W_in times
    the input rate times tau_AMPA; the driving force linearised at rest)."""
    c = model.config
    drive_uS = np.asarray(images, float) @ np.maximum(np.asarray(weights.w_in, float), 0.0)
    return float(p.exc_drive_mV * c.tau_ampa_ms * c.r_max_Hz * 1e-3 * drive_uS.mean())


def check_run(run_dir: str, threshold_Hz: float = 0.05, min_significance: float = 10.0,
              scales=None, progress: bool = True) -> dict:  # fmt: skip
    """The mean-field model with a trained run's own couplings and drive, beside that run's
    W_in scale sweep: the predicted recruitment cliff (the W_in scale at which the evoked I
    rate reaches ``threshold_Hz``) and oscillation onset (the Hopf drive) against the sweep's
    cliff f* and its first scale from which every larger one shows a gamma peak of
    significance ``min_significance``; the rates at scale 1. Returns ``{"rows", "sweep",
    "params", "drive_nA"}`` (rows as :func:`check`'s)."""
    from ei_sim.sweeps.inference import CANONICAL_SCALES, sweep_scales
    from ei_sim.training.stored import load_stored

    model, split, weights, _ = load_stored(run_dir)
    p = run_params(model, weights)
    drive = run_drive_nA(model, weights, split.x_test, p)
    if not drive > 0:
        raise ValueError(f"{run_dir}: the trained W_in gives no input drive (all weights 0)")
    scales = CANONICAL_SCALES if scales is None else tuple(scales)
    sweep = sweep_scales(run_dir, scales, progress=progress)
    s = np.asarray(sweep["scales"], float)
    rate_i, rate_e = sweep["rate_i_Hz"][0], sweep["rate_e_Hz"][0]
    cliff = find_cliff(s, rate_i, threshold_Hz)
    cliff_drive = mf.cliff_drive_nA(p, threshold_Hz, hi_nA=max(4.0, 2 * drive * s.max()))
    hopf = mf.hopf(p, hi_nA=max(4.0, drive * s.max()))
    osc = np.isfinite(sweep["gamma_peak_Hz"][0]) & (
        np.nan_to_num(sweep["gamma_significance"][0]) >= min_significance)  # fmt: skip
    onset = measured_onset({"drive_nA": s, "freq_Hz": np.where(osc, 1.0, np.nan)})
    k1 = int(np.argmin(np.abs(s - 1.0)))
    fixed = mf.fixed_point(drive * s[k1], p)
    rows = [
        _row("recruitment cliff (W_in scale)", _maybe(None if cliff_drive is None
                                                       else cliff_drive / drive),
             _maybe(cliff.f_star if cliff.status == "ok" else None),
             f"mean field: evoked I reaches {threshold_Hz:g} Hz; spiking: the sweep's f* "
             "(midpoint rule)"),
        _row("oscillation onset (W_in scale)", _maybe(None if hopf is None
                                                       else hopf.drive_nA / drive),
             _maybe(onset), f"Hopf drive vs first sustained gamma peak (significance >= "
             f"{min_significance:g})"),
        _row(f"E rate at W_in scale {s[k1]:g} (Hz)", float(1e3 * fixed[0]),
             float(rate_e[k1])),
        _row(f"I rate at W_in scale {s[k1]:g} (Hz)", float(1e3 * fixed[1]),
             float(rate_i[k1])),
    ]  # fmt: skip
    return {"rows": rows, "sweep": sweep, "params": p, "drive_nA": drive}
