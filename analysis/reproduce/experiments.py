"""The five reproductions: each runs its stages and returns the comparison rows and figures.

* ``budgets`` (nb025): PING and COBA at each spike budget; accuracy, E/I rates, gamma and
  participation of the best weights on 256 test trials; cliff f* of the budget-0.2 PING.
* ``coupling`` (nb036 Figure 1): the inference-time W_EI and W_IE coupling sweeps of a trained
  PING (budget off, seed 42); f* per coupling scale c and alpha of c^alpha f* = const.
* ``grid`` (nb036 5 x 5): one training per (W_EI, W_IE), budget 0.2, W_in 1.2 (the lab's grid
  runner passes the PING recipe's 1.2 although its text says 0.6); labels by
  :func:`ei_sim.analysis.basins.label_cells`.
* ``diagonal`` (nb036 slice): W_IE = 2 W_EI, seeds 42-44, budget 0.2, W_in 0.6.
* ``meanfield`` (nb033): the rate model's Hopf point and f(tau_GABA), beside the spiking
  network's gamma at each tau_GABA (trained PING, budget off).

Rates are reported as the lab did: for runs the last epoch's test-set rates ("final"), for the
grid the last epoch, accuracy the best epoch.
"""

from __future__ import annotations

import numpy as np

from ei_sim.analysis.reproduce.figures import plot_budgets, plot_meanfield, plot_sweeps
from ei_sim.analysis.reproduce.plans import COUPLING_SCALES
from ei_sim.analysis.reproduce.stages import gamma_stage, sweep_stage, train_stage
from ei_sim.analysis.reproduce.table import Row


def _v(x):
    return None if x is None else float(x)


def budgets(camp, plan):
    rows, curves = [], {}
    for model in plan.models:
        for b in plan.budgets:
            budget = None if b == "off" else float(b)
            run = train_stage(camp, model, budget, 42, plan)
            ev = gamma_stage(camp, run)["attrs"]
            a = run["attrs"]
            curves[(model, b)] = (a["best_accuracy"], a["final_rate_e_Hz"])
            q = f"{model.upper()} budget {b}: "
            for ep in ("e100", "e30"):
                k = f"budgets.{ep}.{model}.{b}."
                tag = f" (lab {ep[1:]} ep)"
                rows += [
                    Row(
                        q + "best accuracy" + tag, k + "best_accuracy", _v(a["best_accuracy"]), "%"
                    ),
                    Row(
                        q + "final E rate" + tag,
                        k + "final_rate_e",
                        _v(a["final_rate_e_Hz"]),
                        "Hz",
                        "ei-sim: last epoch, test set",
                    ),
                ]
            k = f"budgets.e100.{model}.{b}."
            rows += [
                Row(q + "accuracy, 256-trial eval", k + "eval_accuracy", _v(ev["accuracy"]), "%"),
                Row(q + "E rate, 256-trial eval", k + "eval_rate_e", _v(ev["rate_e_Hz"]), "Hz"),
                Row(q + "I rate, 256-trial eval", k + "eval_rate_i", _v(ev["rate_i_Hz"]), "Hz"),
                Row(
                    q + "gamma peak, 256-trial eval",
                    k + "eval_gamma" if model == "ping" else None,
                    _v(ev["gamma_Hz"]),
                    "Hz",
                    _significance(ev),
                ),
                Row(
                    q + "participation, 256-trial eval",
                    k + "eval_participation" if model == "ping" else None,
                    _v(ev["participation"]),
                    "",
                    ""
                    if ev["participation"] is not None
                    else "no complete gamma cycle in the I rate",
                ),
            ]
    figures = []
    if "ping" in plan.models and "0.2" in plan.budgets:
        run = train_stage(camp, "ping", 0.2, 42, plan)
        sw = sweep_stage(camp, run, plan.scales)
        cliff = _cliff(sw["scales"], sw["rate_i_Hz"][0])
        rows.append(
            Row(
                "PING budget 0.2: cliff f* (W_in scale)",
                "budgets.e100.ping.0.2.cliff_f_star",
                cliff[0],
                "",
                cliff[1],
            )
        )
        figures.append(plot_sweeps(camp, "budgets_cliff", [("PING 0.2", sw)]))
    figures.append(plot_budgets(camp, plan, curves))
    return rows, figures


def _significance(ev) -> str:
    s = ev.get("gamma_significance")
    return "" if s is None else f"significance {float(s):.3g} x band median"


def _cliff(scales, rate_i):
    from ei_sim.analysis.cliff import find_cliff

    cl = find_cliff(scales, rate_i, 0.05)
    if cl.status != "ok":
        return None, f"cannot locate: {cl.status}"
    return float(cl.f_star), f"midpoint of {cl.s_below:g} and {cl.s_above:g}"


def coupling(camp, plan):
    from ei_sim.analysis.cliff import cliff_moves, find_cliff, fit_alpha

    run = train_stage(camp, "ping", None, 42, plan)
    a = run["attrs"]
    rows = [
        Row(
            "baseline best accuracy",
            "coupling.baseline_best_accuracy",
            _v(a["best_accuracy"]),
            "%",
            f"{int(a['epochs'])} epochs, best epoch {int(a['best_epoch'])}",
        )
    ]
    sweeps, statements = [], []
    for target in ("w_ei", "w_ie"):
        sw = sweep_stage(camp, run, plan.scales, target, COUPLING_SCALES)
        sweeps += [
            (f"{target} x {c:g}", _slice(sw, k)) for k, c in enumerate(sw["coupling_scales"])
        ]
        cliffs = [find_cliff(sw["scales"], r, 0.05) for r in sw["rate_i_Hz"]]
        for c, cl in zip(sw["coupling_scales"], cliffs, strict=True):
            note = (
                f"midpoint of {cl.s_below:g} and {cl.s_above:g}"
                if cl.status == "ok"
                else f"cannot locate: {cl.status}"
            )
            rows.append(
                Row(
                    f"f* with {target.upper()} x {c:g}",
                    f"coupling.{target}.{c:g}.f_star",
                    _v(cl.f_star),
                    "W_in scale",
                    note,
                )
            )
        statements.append(
            f"{target.upper()}: " + cliff_moves(sw["coupling_scales"], cliffs)["statement"]
        )
        if target == "w_ei":
            for key, limit, what in (
                ("coupling.alpha_c_le_1", 1.0, "stored data"),
                ("coupling.alpha_all", 2.0, "stored data"),
                ("coupling.alpha_text", 1.0, "the lab's text"),
            ):
                pts = [
                    (c, cl.f_star)
                    for c, cl in zip(sw["coupling_scales"], cliffs, strict=True)
                    if cl.status == "ok" and c <= limit
                ]
                fit = fit_alpha(*zip(*pts, strict=True)) if len(pts) >= 2 else None
                note = _alpha_note(fit)
                rows.append(
                    Row(
                        f"alpha, c <= {limit:g} (vs {what})",
                        key,
                        None if fit is None else fit.alpha,
                        "",
                        note,
                    )
                )
            k1 = int(np.argmin(np.abs(sw["coupling_scales"] - 1.0)))
            s1 = int(np.argmin(np.abs(sw["scales"] - 1.0)))
            rows += [
                Row(
                    "accuracy at s = 1, c = 1",
                    "coupling.accuracy_at_1",
                    _v(sw["accuracy"][k1, s1]),
                    "%",
                ),
                Row(
                    "E rate at s = 1, c = 1",
                    "coupling.rate_e_at_1",
                    _v(sw["rate_e_Hz"][k1, s1]),
                    "Hz",
                ),
                Row(
                    "I rate at s = 1, c = 1",
                    "coupling.rate_i_at_1",
                    _v(sw["rate_i_Hz"][k1, s1]),
                    "Hz",
                ),
            ]
    return rows, [plot_sweeps(camp, "coupling_sweeps", sweeps)], statements


def _alpha_note(fit) -> str:
    if fit is None:
        return "fewer than two located cliffs"
    if fit.ci95 is None:
        return f"n={fit.n}"
    return f"n={fit.n}, 95 % CI [{fit.ci95[0]:.3g}, {fit.ci95[1]:.3g}], s.e. {fit.stderr:.3g}"


def _slice(sw, k) -> dict:
    return {
        "scales": sw["scales"],
        "accuracy": sw["accuracy"][k : k + 1],
        "rate_i_Hz": sw["rate_i_Hz"][k : k + 1],
    }


def meanfield(camp, plan):
    from ei_sim.analysis import meanfield as mf

    p = mf.MeanFieldParams()

    def compute_mf():
        h = mf.hopf(p)
        x = mf.fixed_point(h.drive_nA, p)
        taus = mf.frequency_vs_tau_gaba(plan.taus, p)
        lab_grid = [lab_grid_hopf(p.replace(tau_gaba_ms=t)) for t in plan.taus]
        return (
            {
                "drive_nA": h.drive_nA,
                "frequency_Hz": h.frequency_Hz,
                "rate_e_Hz": 1e3 * x[0],
                "rate_i_Hz": 1e3 * x[1],
            },
            {
                "taus": np.asarray(plan.taus),
                "tau_drive_nA": [t["hopf_drive_nA"] for t in taus],
                "tau_frequency_Hz": [t["frequency_Hz"] for t in taus],
                "grid_drive_nA": [g[0] for g in lab_grid],
                "grid_frequency_Hz": [g[1] for g in lab_grid],
            },
        )

    st = camp.stage("meanfield__rate_model", compute_mf)
    a = st["attrs"]
    rows = [
        Row(
            "Hopf drive, tau_GABA 9 ms",
            "meanfield.hopf_drive",
            _v(a["drive_nA"]),
            "nA",
            "ei-sim: the crossing refined by brentq",
        ),
        Row(
            "Hopf frequency, tau_GABA 9 ms", "meanfield.hopf_frequency", _v(a["frequency_Hz"]), "Hz"
        ),
        Row("E rate at the Hopf point", "meanfield.hopf_rate_e", _v(a["rate_e_Hz"]), "Hz"),
        Row("I rate at the Hopf point", "meanfield.hopf_rate_i", _v(a["rate_i_Hz"]), "Hz"),
    ]
    spiking = []
    for k, tau in enumerate(st["taus"]):
        t = f"{float(tau):g}"
        rows += [
            Row(
                f"mean-field frequency, tau_GABA {t} ms",
                f"meanfield.tau{t}.frequency",
                _v(st["tau_frequency_Hz"][k]),
                "Hz",
                f"on the lab's 0.01-nA grid: {st['grid_frequency_Hz'][k]:.4g} Hz",
            ),
            Row(
                f"mean-field Hopf drive, tau_GABA {t} ms",
                f"meanfield.tau{t}.drive",
                _v(st["tau_drive_nA"][k]),
                "nA",
                f"on the lab's 0.01-nA grid: {st['grid_drive_nA'][k]:.3g} nA",
            ),
        ]
        runs = [
            train_stage(camp, "ping", None, s, plan, tau_gaba_ms=float(tau)) for s in plan.seeds
        ]
        f = np.array([r["attrs"]["best_gamma_Hz"] for r in runs], float)
        e = np.array([r["attrs"]["best_rate_e_Hz"] for r in runs], float)
        law = (float(np.median(e)) - 0.76) / 0.216
        spiking.append((float(tau), float(np.median(f)), float(np.median(e))))
        rows.append(
            Row(
                f"spiking gamma (trained PING), tau_GABA {t} ms",
                f"meanfield.tau{t}.spiking_gamma",
                float(np.median(f)),
                "Hz",
                f"median over seeds {list(plan.seeds)}; E {np.median(e):.3g} Hz, for which the "
                f"lab's rate law r_E = 0.76 + 0.216 f gives f = {law:.3g} Hz",
            )
        )
    rows += untrained_rows(camp, plan, p)
    return (
        rows,
        [plot_meanfield(camp, st, spiking)],
        [
            "Spiking gamma of trained networks is the best epoch's trial-mean PSD peak on the test "
            "set (the lab's nb041 measure); untrained rows drive every input channel with the same "
            "intensity (ei_sim.analysis.meanfield_check) and report the same arg-max, for "
            "both refractory settings, to separate drive from refractoriness."
        ],
    )


UNTRAINED_DRIVES_NA = (1.5, 3.0)
UNTRAINED_TRIALS = 4


def untrained_rows(camp, plan, p) -> list:
    """Gamma of the untrained PING at fixed drives for every tau_GABA, canonical and lab."""
    from ei_sim.analysis.meanfield_check import run_levels
    from ei_sim.models import get_model

    drives = [d for d in UNTRAINED_DRIVES_NA for _ in range(UNTRAINED_TRIALS)]
    rows = []
    for setting in ("canonical", "lab"):

        def compute(setting=setting):
            freq, rate = [], []
            for tau in plan.taus:
                model = get_model("ping", setting=setting, tau_gaba_ms=float(tau))
                run = run_levels(model, drives, p, t_ms=300.0, seed=0, min_significance=0.0)
                f = np.asarray(run["freq_Hz"]).reshape(len(UNTRAINED_DRIVES_NA), -1)
                e = np.asarray(run["rate_e_Hz"]).reshape(len(UNTRAINED_DRIVES_NA), -1)
                freq.append(np.nanmedian(f, axis=1))
                rate.append(e.mean(axis=1))
            return {"setting": setting}, {"freq_Hz": np.array(freq), "rate_e_Hz": np.array(rate)}

        st = camp.stage(f"meanfield__untrained_{setting}", compute)
        for k, tau in enumerate(plan.taus):
            for j, d in enumerate(UNTRAINED_DRIVES_NA):
                rows.append(Row(
                    f"spiking gamma, untrained, {setting}, tau_GABA {tau:g} ms, {d:g} nA",
                    None, float(st["freq_Hz"][k, j]), "Hz",
                    f"E {st['rate_e_Hz'][k, j]:.3g} Hz; {UNTRAINED_TRIALS} trials of 300 ms",
                ))  # fmt: skip
    return rows


def lab_grid_hopf(p, n=401, hi_nA=4.0):
    """The lab's Hopf search: the first of ``n`` drives in [0, hi] whose leading eigenvalue has
    a positive real part, and the frequency there; ``(nan, nan)`` if none."""
    from ei_sim.analysis import meanfield as mf

    for d in np.linspace(0.0, hi_nA, n):
        ev = np.linalg.eigvals(mf.jacobian(mf.fixed_point(d, p), d, p))
        lead = ev[np.argmax(ev.real)]
        if lead.real > 0 and abs(lead.imag) > 0:
            return float(d), float(1e3 * abs(lead.imag) / (2 * np.pi))
    return float("nan"), float("nan")
