"""The grid and diagonal reproductions (nb036): trainings on the grid executor.

* ``grid``: one training per (W_EI, W_IE) in {0, 0.25, 0.5, 1, 2}^2, budget 0.2, seed 42,
  W_in 0.6; accuracy of the best epoch, E and I rates of the last epoch (as the lab
  reported), labels by :func:`ei_sim.analysis.basins.label_cells` with a trend flag
  (:mod:`ei_sim.analysis.trends`), the agreement with the lab's labels, each cell's path in
  (E rate, I rate) over the epochs.
* ``diagonal``: W_IE = 2 W_EI for W_EI in {0, 0.1, 0.25, 0.4, 0.5, 0.6, 0.75, 1, 1.5, 2},
  seeds 42-44, W_in 0.6.

The grid stage keeps every cell's summary and per-epoch metrics in the reproduction store (the
numbers of a results file; weights stay in the grid store and the cells' runs), and the tables
are made from them at the plan's epoch count: a grid continued to more epochs for another plan
is read up to this plan's epochs.
"""

from __future__ import annotations

import os

import numpy as np

from ei_sim.analysis.reproduce.cell_records import METRICS as CELL_METRICS
from ei_sim.analysis.reproduce.experiment import Experiment, Result, Verdict, not_yet_run
from ei_sim.analysis.reproduce.plans import DIAGONAL_VALUES, GRID_VALUES, Plan
from ei_sim.analysis.reproduce.table import Row

# W_in of the grid: the lab's text gives 0.6 (between COBA's 0.3 and PING's 1.2); its stored
# grid runner passed PING's 1.2. 0.6 is taken: the lab's no-loop cell (0, 0) equals its
# diagonal's seed-42 W_EI = 0 cell (76.75 %, E 2.2 Hz), which was trained at 0.6.
GRID_W_IN = 0.6
BASINS_CLAIM = ("two basins: a PING corner (strong W_EI, I active, E held low) and a "
                "stretched-COBA corner (a loop whose I stays silent)")  # fmt: skip
DIAGONAL_CLAIM = ("the diagonal's two-step climb: accuracy rises 0.5 -> 0.6 -> 0.75 with I "
                  "recruited between W_EI 0.6 and 0.75")  # fmt: skip


def grid_spec(plan, setting: str, diagonal: bool):
    """The grid the ``grid`` (``diagonal=False``) or ``diagonal`` experiment trains."""
    from ei_sim.analysis.reproduce.stages import build_model
    from ei_sim.sweeps.grid import GridSpec
    from ei_sim.training.config import TrainConfig

    model = build_model("ping", setting, plan.tier, plan.n_e, plan.t_ms, w_in_mean=GRID_W_IN)
    train = TrainConfig.for_tier(plan.tier, budget=0.2, epochs=plan.epochs,
                                 n_samples=plan.samples)  # fmt: skip
    return GridSpec(
        model=model, train=train, w_ei=tuple(plan.values),
        w_ie=() if diagonal else tuple(plan.values),
        seeds=tuple(plan.seeds) if diagonal else (42,),
        diagonal_ratio=2.0 if diagonal else None,
    )  # fmt: skip


def grid_store(out_dir: str, store_path: str) -> str:
    """The grid store of an experiment whose reproduction store is ``store_path``: shared by
    every epoch count (its name carries none)."""
    stem = os.path.splitext(os.path.basename(store_path))[0]
    stem = stem.rsplit("_", 1)[0] if stem.endswith("ep") else stem
    return os.path.join(out_dir, f"{stem}.grid.h5")


def grid_stage(camp, plan, diagonal: bool) -> dict:
    """Train (or continue) the experiment's grid to ``plan.epochs`` and store every cell's
    numbers: arrays ``w_ei, w_ie, seed`` (C,) and ``<metric>`` (C, E) for
    :data:`CELL_METRICS`, cells sorted by name. ``camp.grid_options``: where the cells train
    (the keywords of :func:`ei_sim.sweeps.grid.run_grid`: executor, scheduler, n_workers,
    slurm, worker_timeout_s). ``camp.cell_records``
    (:class:`~ei_sim.analysis.reproduce.cell_records.CellRecords`): a cell recorded with at
    least ``plan.epochs`` epochs and not in the grid store is read from its record, not
    trained; each cell stored is recorded when the reproduction saves its results."""
    from ei_sim.analysis.basins import label_cells
    from ei_sim.sweeps.grid import cells_to_train, run_grid
    from ei_sim.sweeps.store import cell_name, read_grid

    path = grid_store(camp.out_dir, camp.store_path)
    spec = grid_spec(plan, camp.setting, diagonal)
    records = camp.cell_records.for_grid(spec) if camp.cell_records else None
    if camp.records_only:
        return _recorded_stage(camp, plan, spec, records)

    def compute():
        def label(a, b, e, i):
            return str(label_cells([e], [i], [a], [b])[0])

        def record(name, summary, metrics):
            records.add({name: _record_of(summary, metrics)}, camp.say)

        wanted = {cell_name(a, b, s): (a, b, s) for a, b, s in spec.cells()}
        missing = {c[3] for c in cells_to_train(spec, path)}
        recorded = records.finished(plan.epochs, sorted(missing), camp.say) if records else {}
        if recorded:
            commits = sorted({_commit_of(c["provenance"]) for c in recorded.values()})
            sources = sorted({c["source"] for c in recorded.values()})
            camp.say(f"{len(recorded)} of {len(wanted)} cells read from their records "
                     f"({', '.join(sources)}; trained with {', '.join(commits)}), not trained "
                     "again")  # fmt: skip
        run_grid(spec, path, progress=camp.progress, label_fn=label, skip=set(recorded),
                 on_stored=record if records else None, after_epoch=camp.checkpoint,
                 **camp.grid_options)  # fmt: skip
        stored = {c["name"]: c for c in read_grid(path)["cells"] if c["name"] in wanted
                  and c["name"] not in recorded}  # fmt: skip
        if records:
            records.add({n: _record_of(c["attrs"], c["metrics"]) for n, c in stored.items()},
                        camp.say)  # fmt: skip
        cells = sorted([(n, c["metrics"]) for n, c in stored.items()]
                       + [(n, c["metrics"]) for n, c in recorded.items()])  # fmt: skip
        names = [n for n, _ in cells]
        arrays = {k: np.array([wanted[n][i] for n in names], float)
                  for i, k in enumerate(("w_ei", "w_ie", "seed"))}  # fmt: skip
        for metric in CELL_METRICS:
            arrays[metric] = np.array([m[metric][: plan.epochs] for _, m in cells])
        attrs = {"grid_store": path, "epochs": plan.epochs, "cells": len(cells),
                 "cells_from_records": len(recorded)}  # fmt: skip
        return attrs, arrays

    name = os.path.splitext(os.path.basename(path))[0].removesuffix(".grid")
    return camp.stage(f"grid__{name}", compute)


def _recorded_stage(camp, plan, spec, records) -> dict:
    """The grid stage of an interim page (``camp.records_only``): the cells recorded with at
    least ``plan.epochs`` epochs, in the stage's layout, nothing trained and nothing stored;
    ValueError (one line) when no cell is recorded."""
    from ei_sim.sweeps.store import cell_name

    wanted = {cell_name(a, b, s): (a, b, s) for a, b, s in spec.cells()}
    found = records.finished(plan.epochs, sorted(wanted), camp.say) if records else {}
    if not found:
        raise ValueError(f"no cell of this grid is recorded with {plan.epochs} epochs or more; "
                         "an interim page needs at least one (see ei-sim reproduce summary)")
    commits = sorted({_commit_of(c["provenance"]) for c in found.values()})
    camp.say(f"interim page: {len(found)} of {len(wanted)} cells from their records (trained "
             f"with {', '.join(commits)}); nothing trained")  # fmt: skip
    names = sorted(found)
    out = {"attrs": {"epochs": plan.epochs, "cells": len(names), "cells_from_records": len(names),
                     "cells_planned": len(wanted)}}  # fmt: skip
    for i, k in enumerate(("w_ei", "w_ie", "seed")):
        out[k] = np.array([wanted[n][i] for n in names], float)
    for metric in CELL_METRICS:
        out[metric] = np.array([found[n]["metrics"][metric][: plan.epochs] for n in names])
    return out


def _interim(camp, plan, cells, missing: list) -> list[str]:
    """The statements of an interim page: which cells it holds and which are not yet run
    (``missing``: grid cells as "(W_EI, W_IE)", or the diagonal's points as (W_EI, seed))."""
    if not camp.records_only:
        return []
    total = len(cells) + len(missing)
    if missing and isinstance(missing[0], tuple):  # the diagonal's points, by seed
        seeds = dict.fromkeys(s for _, s in missing)
        groups = [[a for a, t in missing if t == s] for s in seeds]
        names = "; ".join(f"seed {s}: " + ("every W_EI" if len(g) == len(plan.values) else
                                           "W_EI " + ", ".join(f"{a:g}" for a in g))
                          for s, g in zip(seeds, groups, strict=True))  # fmt: skip
    else:
        names = ", ".join(missing) or "none"
    return [f"Interim page from the cell records: {len(cells)} of {total} cells, each at "
            f"{plan.epochs} epochs; not yet run: {names}"]


def _interim_verdict(verdict: Verdict, n_cells: int, missing: list) -> Verdict:
    """No verdict on part of a grid: "not yet run", what the recorded part shows its evidence."""
    if not missing:
        return verdict
    evidence = f"interim, {n_cells} of {n_cells + len(missing)} cells: {verdict.evidence}"
    return Verdict(verdict.claim, "not yet run", evidence, verdict.epochs)


def _record_of(summary: dict, metrics: dict) -> dict:
    """A stored grid cell as a cell record (:mod:`~ei_sim.analysis.reproduce.cell_records`)."""
    from ei_sim.analysis.reproduce.cell_records import cell_provenance

    return {"w_ei": summary["w_ei"], "w_ie": summary["w_ie"], "seed": summary["seed"],
            "metrics": {k: metrics[k] for k in CELL_METRICS if k in metrics},
            "provenance": cell_provenance(summary.get("run_dir"))}  # fmt: skip


def _commit_of(provenance: dict) -> str:
    commit = provenance.get("run_git_commit") or provenance.get("recorded_by_commit") or "?"
    return str(commit)[:10]


def cell_view(st: dict, k: int) -> dict:
    """Cell ``k`` of a grid stage: best accuracy (%, ties: the first epoch), final accuracy,
    last-epoch rates (the lab's report), the I-rate history and its trend."""
    from ei_sim.analysis.trends import trend

    acc = np.asarray(st["test_accuracy"][k], float)
    b = int(np.argmax(acc))
    i_hist = np.asarray(st["test_rate_i_Hz"][k], float)
    return {
        "w_ei": float(st["w_ei"][k]), "w_ie": float(st["w_ie"][k]), "seed": int(st["seed"][k]),
        "best_accuracy": 100 * float(acc[b]), "final_accuracy": 100 * float(acc[-1]),
        "rate_e_Hz": float(st["test_rate_e_Hz"][k][-1]), "rate_i_Hz": float(i_hist[-1]),
        "i_history": i_hist, "e_history": np.asarray(st["test_rate_e_Hz"][k], float),
        "trend": trend(i_hist), "epochs": int(acc.size),
    }  # fmt: skip


def labelled(cells: list[dict]) -> list[dict]:
    """Cells with their basin label (last-epoch rates) and the label with its trend flag."""
    from ei_sim.analysis.basins import label_cells

    labels = label_cells([c["rate_e_Hz"] for c in cells], [c["rate_i_Hz"] for c in cells],
                         [c["w_ei"] for c in cells], [c["w_ie"] for c in cells])  # fmt: skip
    for c, lab in zip(cells, labels, strict=True):
        c["label"] = str(lab)
        c["shown_label"] = c["label"] + ("" if c["trend"] is None else f" (I {c['trend']})")
    return cells


def lab_label(reference, a: float, b: float) -> str | None:
    """The lab's label of a grid cell from its stored rates, by the same rule."""
    from ei_sim.analysis.basins import label_cells

    e, i = (reference.get(f"grid.{a:g}.{b:g}.{q}") for q in ("rate_e", "rate_i"))
    if e is None or i is None:
        return None
    return str(label_cells([e.value], [i.value], [a], [b])[0])


def run_grid_experiment(camp, plan: Plan) -> Result:
    from ei_sim.analysis.basins import label_rule
    from ei_sim.analysis.reproduce.figures import plot_grid_comparison

    st = grid_stage(camp, plan, diagonal=False)
    cells = labelled([cell_view(st, k) for k in range(len(st["w_ei"]))])
    by_pair = {(c["w_ei"], c["w_ie"]): c for c in cells}
    rows, counts, missing = [], {}, []
    agree, compared = 0, 0
    for a in plan.values:
        for b in plan.values:
            c = by_pair.get((a, b))
            if c is None:  # an interim page: not recorded yet
                missing.append(f"({a:g}, {b:g})")
                continue
            counts[c["label"]] = counts.get(c["label"], 0) + 1
            theirs = lab_label(camp.reference, a, b) if camp.reference else None
            if theirs is not None:
                compared += 1
                agree += theirs == c["label"]
            k, q = f"grid.{a:g}.{b:g}.", f"W_EI {a:g}, W_IE {b:g}: "
            label_note = f"label {c['shown_label']}" + (f" (lab: {theirs})" if theirs else "")
            rows += [
                Row(q + "best accuracy", k + "best_accuracy", c["best_accuracy"], "%",
                    label_note),
                Row(q + "final accuracy", k + "final_accuracy", c["final_accuracy"], "%"),
                Row(q + "E rate, last epoch", k + "rate_e", c["rate_e_Hz"], "Hz"),
                Row(q + "I rate, last epoch", k + "rate_i", c["rate_i_Hz"], "Hz",
                    "" if c["trend"] is None else f"I still {c['trend']} over the last epochs"),
            ]  # fmt: skip
    epochs = cells[0]["epochs"]
    regions = ", ".join(f"{k}: {v} cells" for k, v in sorted(counts.items()))
    statements = [
        *_interim(camp, plan, cells, missing),
        f"Grid cells trained {epochs} epochs (the lab's: {EXP_GRID.lab_epochs}).",
        f"labels ({label_rule()}; from the last epoch's rates, as the lab's): {regions}",
    ]
    if compared:
        statements.append(f"label agreement with the lab's stored cells: {agree} of {compared}")
    trending = [c for c in cells if c["trend"]]
    if trending:
        statements.append("cells whose I rate still trends over the last epochs: " + ", ".join(
            f"({c['w_ei']:g}, {c['w_ie']:g}) I {c['trend']}" for c in trending))  # fmt: skip
    if missing and not camp.records_only:  # a grid stage lacks cells: never a verdict on it
        raise ValueError(f"the grid stage holds {len(cells)} of {len(cells) + len(missing)} "
                         f"cells (missing {', '.join(missing)}); run the same command again")
    figures = [plot_grid_comparison(camp, cells, plan.values)]
    verdict = basins_verdict(cells, agree, compared, epochs, plan.values)
    return Result(tuple(rows), tuple(figures), tuple(statements),
                  (_interim_verdict(verdict, len(cells), missing),))  # fmt: skip


def basins_verdict(cells, agree: int, compared: int, epochs: int, values=None) -> Verdict:
    """Reproduced: both corners hold (W_EI = 2 with W_IE > 0 all PING; W_EI in {0.25, 0.5}
    with W_IE > 0 all stretched-COBA) and at least 23 of 25 labels agree with the lab's;
    partly: both corners present (at least one cell each) or labels still trending; not
    reproduced: a corner missing. ``values``: the grid's axes, to count the corner cells not
    recorded on an interim page."""
    ping = [c for c in cells if c["w_ei"] == 2.0 and c["w_ie"] > 0]
    stretched = [c for c in cells if c["w_ei"] in (0.25, 0.5) and c["w_ie"] > 0]
    n_ping = sum(c["label"] == "PING" for c in ping)
    n_str = sum(c["label"] == "stretched-COBA" for c in stretched)
    moving = [c for c in ping + stretched if c["trend"]]
    planned = {"PING": sum(b > 0 for b in values) if 2.0 in values else 0,
               "stretched-COBA": sum(a in (0.25, 0.5) and b > 0 for a in values
                                     for b in values)} if values else {}  # fmt: skip

    def corner(name, n, group, what):
        if not group:
            return f"{name} corner not run"
        of = planned.get(name, len(group))
        return f"{name} corner {n}/{len(group)}" + (
            f" recorded (of {of})" if of > len(group) else "") + f" cells {what}"

    corners = [corner("PING", n_ping, ping, "PING"),
               corner("stretched-COBA", n_str, stretched, "with silent I")]  # fmt: skip
    evidence = (", ".join(corners) + f"; {agree}/{compared} labels as the lab's"
                + (f"; {len(moving)} corner cells still trending" if moving else ""))  # fmt: skip
    if n_ping == len(ping) and n_str == len(stretched) and agree >= 23 and not moving:
        status = "reproduced"
    elif n_ping > 0 and n_str > 0:
        status = "partly"
    else:
        status = "not reproduced"
    return Verdict(BASINS_CLAIM, status, evidence, epochs)


def run_diagonal_experiment(camp, plan: Plan) -> Result:
    from ei_sim.analysis.reproduce.figures import plot_diagonal

    st = grid_stage(camp, plan, diagonal=True)
    cells = labelled([cell_view(st, k) for k in range(len(st["w_ei"]))])
    seeds = sorted({c["seed"] for c in cells})
    have = {(c["w_ei"], c["seed"]) for c in cells}
    missing = [(a, s) for s in plan.seeds for a in plan.values if (a, s) not in have]
    rows, points = [], []
    for a in plan.values:
        group = [c for c in cells if c["w_ei"] == a]
        if not group:
            continue
        acc = np.array([c["best_accuracy"] for c in group])
        e = np.array([c["rate_e_Hz"] for c in group])
        i = np.array([c["rate_i_Hz"] for c in group])
        points.append((a, acc, e, i))
        k, q = f"diagonal.{a:g}.", f"W_EI {a:g}: "
        labels = ", ".join(c["shown_label"] for c in group)
        sd = float(acc.std(ddof=1)) if len(acc) > 1 else None
        rows += [
            Row(q + f"accuracy, mean over seeds {sorted(c['seed'] for c in group)}",
                k + "accuracy_mean",
                float(acc.mean()), "%", labels),
            Row(q + "accuracy, sd (ddof 1)", k + "accuracy_sd", sd, "%"),
            Row(q + "E rate, mean (last epoch)", k + "rate_e_mean", float(e.mean()), "Hz"),
            Row(q + "I rate, mean (last epoch)", k + "rate_i_mean", float(i.mean()), "Hz",
                "per seed " + ", ".join(f"{x:.3g}" for x in i)),
        ]  # fmt: skip
    epochs = cells[0]["epochs"]
    statements = [
        *_interim(camp, plan, cells, missing),
        f"Diagonal cells trained {epochs} epochs (the lab's: "
        f"{EXP_DIAGONAL.lab_epochs}); seeds {seeds} (the lab's: 42, 43, 44)"
        + ("." if _same_seeds(cells) else "; not every point has every seed: each row says "
           "which seeds its mean is over."),
    ]
    if missing and not camp.records_only:
        raise ValueError(f"the diagonal's grid stage holds {len(cells)} of "
                         f"{len(cells) + len(missing)} cells; run the same command again")
    figures = [plot_diagonal(camp, points, camp.reference)]
    verdict = diagonal_verdict(points, epochs, seeds if _same_seeds(cells) else None)
    return Result(tuple(rows), tuple(figures), tuple(statements),
                  (_interim_verdict(verdict, len(cells), missing),))  # fmt: skip


def _same_seeds(cells) -> bool:
    """Whether every W_EI of the diagonal has the same seeds."""
    by = {}
    for c in cells:
        by.setdefault(c["w_ei"], set()).add(c["seed"])
    return len({frozenset(v) for v in by.values()}) <= 1


def diagonal_verdict(points, epochs: int, seeds) -> Verdict:
    """Reproduced: the mean I rate is under 0.5 Hz up to W_EI 0.6 and over it from 0.75 on,
    and the mean accuracy rises from 0.5 to 0.6 and from 0.6 to 0.75; partly: the I
    recruitment within one grid point of that interval, or only one of the two steps."""
    by = {a: (acc.mean(), i.mean()) for a, acc, _, i in points}
    if not all(a in by for a in (0.5, 0.6, 0.75)):
        return Verdict(DIAGONAL_CLAIM, "not yet run", "the points 0.5, 0.6, 0.75 are missing")
    recruited = [a for a, (_, i) in sorted(by.items()) if i > 0.5]
    onset = recruited[0] if recruited else None
    steps = (by[0.6][0] > by[0.5][0], by[0.75][0] > by[0.6][0])
    evidence = (f"I first above 0.5 Hz at W_EI {onset}" if onset is not None else
                "I never above 0.5 Hz") + (
        f"; accuracy {by[0.5][0]:.1f} -> {by[0.6][0]:.1f} -> {by[0.75][0]:.1f} % at W_EI "
        f"0.5, 0.6, 0.75 (" + (f"mean of seeds {list(seeds)}" if seeds is not None else
                               "seeds per point differ") + ")")  # fmt: skip
    values = sorted(by)
    if onset == 0.75 and all(steps):
        status = "reproduced"
    elif onset is not None and abs(values.index(onset) - values.index(0.75)) <= 1 and any(steps):
        status = "partly"
    else:
        status = "not reproduced"
    return Verdict(DIAGONAL_CLAIM, status, evidence, epochs)


EXP_GRID = Experiment(
    name="grid",
    title="nb036: the 5 x 5 (W_EI, W_IE) training grid",
    plans={
        "full": Plan(epochs=100, values=GRID_VALUES),
        "quick": Plan(
            tier="tiny",
            epochs=4,
            values=GRID_VALUES,
            reduced="tiny tier (64 E cells, 100 ms trials, 400 samples), 4 epochs "
            "instead of the medium tier at 100",
        ),
    },  # fmt: skip
    run=run_grid_experiment,
    claims=(BASINS_CLAIM,),
    grid=True,
)
EXP_DIAGONAL = Experiment(
    name="diagonal",
    title="nb036: the diagonal slice W_IE = 2 W_EI, three seeds",
    plans={
        "full": Plan(epochs=100, values=DIAGONAL_VALUES, seeds=(42, 43, 44)),
        "quick": Plan(
            tier="tiny",
            epochs=4,
            values=DIAGONAL_VALUES,
            seeds=(42, 43, 44),
            reduced="tiny tier (64 E cells, 100 ms trials, 400 samples), 4 epochs "
            "instead of the medium tier at 100",
        ),
    },  # fmt: skip
    run=run_diagonal_experiment,
    claims=(DIAGONAL_CLAIM,),
    grid=True,
)
EXPERIMENTS = (EXP_GRID, EXP_DIAGONAL)
__all__ = ["EXPERIMENTS", "grid_stage", "not_yet_run"]
