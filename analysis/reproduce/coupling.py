"""nb036 Figure 1: the inference-time coupling sweeps of a trained PING.

A PING trained 30 epochs (budget off, seed 42; the lab's baseline), its W_in scale sweep
repeated with W_EI, then W_IE, multiplied by c in {0.25, 0.5, 1, 2}: f* per c (the midpoint
rule on I at 0.05 Hz) and alpha of c^alpha f* = const. The lab's claims judged here: W_EI
moves the cliff; W_IE does not.
"""

from __future__ import annotations

import numpy as np

from ei_sim.analysis.reproduce.experiment import Experiment, Result, Verdict
from ei_sim.analysis.reproduce.figures import plot_sweeps
from ei_sim.analysis.reproduce.plans import COUPLING_SCALES, Plan
from ei_sim.analysis.reproduce.stages import sweep_stage, train_stage
from ei_sim.analysis.reproduce.table import Row

W_EI_CLAIM = "W_EI moves the recruitment cliff"
W_IE_CLAIM = "W_IE does not move the recruitment cliff"


def _v(x):
    return None if x is None else float(x)


def run_coupling(camp, plan):
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
    sweeps, statements, moves = [], [], {}
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
        moved = cliff_moves(sw["coupling_scales"], cliffs)
        moves[target] = moved
        statements.append(f"{target.upper()}: " + moved["statement"])
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
    epochs = int(a["epochs"])
    verdicts = (
        _moves_verdict(W_EI_CLAIM, moves["w_ei"], True, epochs),
        _moves_verdict(W_IE_CLAIM, moves["w_ie"], False, epochs),
    )
    return Result(tuple(rows), (plot_sweeps(camp, "coupling_sweeps", sweeps),),
                  tuple(statements), verdicts)  # fmt: skip


def _moves_verdict(claim: str, moved: dict, expected: bool, epochs: int) -> Verdict:
    """The claim holds when the cliff moves (or not) by more than one scale step, as
    :func:`ei_sim.analysis.cliff.cliff_moves` decides."""
    if moved["moves"] is None:
        return Verdict(claim, "not reproduced", moved["statement"], epochs)
    status = "reproduced" if moved["moves"] == expected else "not reproduced"
    return Verdict(claim, status, moved["statement"], epochs)


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


EXPERIMENTS = (
    Experiment(
        name="coupling",
        title="nb036 Figure 1: inference-time coupling sweeps of a trained PING",
        plans={
            "full": Plan(epochs=30),
            "quick": Plan(epochs=5, reduced="a 5-epoch baseline instead of 30 epochs"),
        },
        run=run_coupling,
        claims=(W_EI_CLAIM, W_IE_CLAIM),
        lab_epochs=30,
    ),
)
