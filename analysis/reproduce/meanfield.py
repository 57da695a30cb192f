"""nb033: the mean-field Hopf point and f(tau_GABA), beside the spiking network.

The rate model's Hopf point (drive, frequency, rates) at tau_GABA 9 ms and its frequency for
tau_GABA in {4.5, 6, 9, 12, 18, 27} ms, beside the gamma of PING networks trained at each
tau_GABA (budget off; median over seeds) and of the untrained PING at fixed drives. Questions
asked of the spiking side: does the lab's rate law r_E = 0.76 + 0.216 f hold, and does the gap
to the lab's spiking 45 / 37 / 28 Hz (tau_GABA 6 / 9 / 12 ms) close with training?
"""

from __future__ import annotations

import numpy as np

from ei_sim.analysis.reproduce.experiment import Experiment, Result
from ei_sim.analysis.reproduce.figures import plot_meanfield
from ei_sim.analysis.reproduce.plans import Plan
from ei_sim.analysis.reproduce.stages import train_stage
from ei_sim.analysis.reproduce.table import Row


def _v(x):
    return None if x is None else float(x)


def run_meanfield(camp, plan):
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
            untrained=True,
        ),
        Row(
            "Hopf frequency, tau_GABA 9 ms",
            "meanfield.hopf_frequency",
            _v(a["frequency_Hz"]),
            "Hz",
            untrained=True,
        ),
        Row(
            "E rate at the Hopf point",
            "meanfield.hopf_rate_e",
            _v(a["rate_e_Hz"]),
            "Hz",
            untrained=True,
        ),
        Row(
            "I rate at the Hopf point",
            "meanfield.hopf_rate_i",
            _v(a["rate_i_Hz"]),
            "Hz",
            untrained=True,
        ),
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
                untrained=True,
            ),
            Row(
                f"mean-field Hopf drive, tau_GABA {t} ms",
                f"meanfield.tau{t}.drive",
                _v(st["tau_drive_nA"][k]),
                "nA",
                f"on the lab's 0.01-nA grid: {st['grid_drive_nA'][k]:.3g} nA",
                untrained=True,
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
    return Result(
        tuple(rows),
        (plot_meanfield(camp, st, spiking),),
        (
            "Spiking gamma of trained networks is the best epoch's trial-mean PSD peak on the test "
            "set (the lab's nb041 measure); untrained rows drive every input channel with the same "
            "intensity (ei_sim.analysis.meanfield_check) and report the same arg-max, for "
            "both refractory settings, to separate drive from refractoriness.",
        ),
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


EXPERIMENTS = (
    Experiment(
        name="meanfield",
        title="nb033: mean-field Hopf point and f(tau_GABA), beside the spiking network",
        plans={
            "full": Plan(epochs=100, seeds=(42, 43, 44)),
            "quick": Plan(
                epochs=2,
                reduced="spiking networks trained 2 epochs with one seed "
                "instead of 100 epochs with three",
            ),
        },  # fmt: skip
        run=run_meanfield,
    ),
)
