"""The grid and diagonal reproductions (nb036): trainings on the Dask grid executor."""

from __future__ import annotations

import os

import numpy as np

from ei_sim.analysis.reproduce.table import Row


def grid_spec(experiment: str, plan, setting: str):
    """The grid that the ``grid`` or ``diagonal`` experiment trains under ``plan``."""
    from ei_sim.sweeps.grid import GridSpec

    if experiment not in ("grid", "diagonal"):
        raise ValueError(f"the {experiment} experiment trains no grid")
    diagonal = experiment == "diagonal"
    model_changes = {"w_in_mean": 0.6 if diagonal else 1.2}
    if setting != "canonical":
        model_changes["setting"] = setting
    size = {k: v for k, v in (("n_e", plan.n_e), ("t_ms", plan.t_ms)) if v is not None}
    return GridSpec(
        w_ei=tuple(plan.values),
        w_ie=() if diagonal else tuple(plan.values),
        seeds=tuple(plan.seeds) if diagonal else (42,),
        tier=plan.tier,
        diagonal_ratio=2.0 if diagonal else None,
        model_changes=model_changes,
        size=size,
        train={"budget": 0.2, "epochs": plan.epochs},
    )


def grid_store(out_dir: str, store_path: str) -> str:
    """Where an experiment whose reproduction store is ``store_path`` keeps its grid."""
    name = os.path.splitext(os.path.basename(store_path))[0]
    return os.path.join(out_dir, f"{name}.grid.h5")


def _grid_common(camp, plan, experiment, run_options):
    """Train (or resume) the experiment's grid in a stage; ``run_options`` are
    :func:`ei_sim.sweeps.grid.run_grid`'s (executor, scheduler, n_workers, slurm,
    worker_timeout_s)."""
    from ei_sim.analysis.basins import label_cells
    from ei_sim.sweeps.grid import run_grid
    from ei_sim.sweeps.store import read_cells

    spec = grid_spec(experiment, plan, camp.setting)
    path = grid_store(camp.out_dir, camp.store_path)

    def label(a, b, e, i):
        return str(label_cells([e], [i], [a], [b])[0])

    def compute():
        run_grid(spec, path, progress=camp.progress, label_fn=label, **run_options)
        return {"grid_store": path}, {}

    camp.stage(f"grid__{os.path.splitext(os.path.basename(camp.store_path))[0]}", compute)
    return read_cells(path), path


def _grid_figures(camp, path, name) -> list[str]:
    """The lab's grid figures: the basin map and E rate against accuracy (coloured by I)."""
    from ei_sim.analysis.basins import analyze_grid, plot_grid_map, plot_rate_accuracy, read_grid

    result = analyze_grid(read_grid(path))
    names = []
    for stem, plot in (("basins", plot_grid_map), ("e_rate_vs_accuracy", plot_rate_accuracy)):
        names.append(f"{name}_{stem}.png")
        plot(result, os.path.join(camp.out_dir, names[-1]))
    return names


def grid(camp, plan, **run_options):
    from ei_sim.analysis.basins import label_rule
    from ei_sim.sweeps.store import cell_name

    name = os.path.splitext(os.path.basename(camp.store_path))[0]
    cells, path = _grid_common(camp, plan, "grid", run_options)
    by_name = {c["name"]: c for c in cells}
    metrics = _cell_metrics(path)
    rows, counts = [], {}
    for a in plan.values:
        for b in plan.values:
            cell = by_name[cell_name(a, b, 42)]
            m = metrics[cell["name"]]
            counts[cell["label"]] = counts.get(cell["label"], 0) + 1
            k, q = f"grid.{a:g}.{b:g}.", f"W_EI {a:g}, W_IE {b:g}: "
            rows += [
                Row(
                    q + "best accuracy",
                    k + "best_accuracy",
                    100 * float(cell["best_accuracy"]),
                    "%",
                    f"label {cell['label']}",
                ),
                Row(
                    q + "final accuracy",
                    k + "final_accuracy",
                    100 * float(cell["final_accuracy"]),
                    "%",
                ),
                Row(q + "E rate, last epoch", k + "rate_e", float(m["test_rate_e_Hz"][-1]), "Hz"),
                Row(q + "I rate, last epoch", k + "rate_i", float(m["test_rate_i_Hz"][-1]), "Hz"),
            ]
    regions = ", ".join(f"{k}: {v} cells" for k, v in sorted(counts.items()))
    return (
        rows,
        _grid_figures(camp, path, name),
        [
            f"labels ({label_rule()}): {regions}",
            "lab (stored data): no-loop band = the W_EI = 0 row and W_IE = 0 column; "
            "5 cells with I > 0 (PING); the rest stretched-COBA",
        ],
    )


def _cell_metrics(path) -> dict:
    from ei_sim.sweeps.store import read_grid

    return {cell["name"]: cell["metrics"] for cell in read_grid(path)["cells"]}


def diagonal(camp, plan, **run_options):
    from ei_sim.sweeps.store import cell_name

    name = os.path.splitext(os.path.basename(camp.store_path))[0]
    cells, path = _grid_common(camp, plan, "diagonal", run_options)
    by_name = {c["name"]: c for c in cells}
    metrics = _cell_metrics(path)
    rows = []
    for a in plan.values:
        group = [by_name[cell_name(a, 2.0 * a, s)] for s in plan.seeds]
        acc = np.array([100 * float(c["best_accuracy"]) for c in group])
        e = np.array([float(metrics[c["name"]]["test_rate_e_Hz"][-1]) for c in group])
        i = np.array([float(metrics[c["name"]]["test_rate_i_Hz"][-1]) for c in group])
        k, q = f"diagonal.{a:g}.", f"W_EI {a:g}: "
        labels = ", ".join(str(c["label"]) for c in group)
        rows += [
            Row(
                q + "accuracy, mean over seeds", k + "accuracy_mean", float(acc.mean()), "%", labels
            ),
            Row(
                q + "accuracy, sd (ddof 1)",
                k + "accuracy_sd",
                float(acc.std(ddof=1)) if len(acc) > 1 else None,
                "%",
            ),
            Row(q + "E rate, mean (last epoch)", k + "rate_e_mean", float(e.mean()), "Hz"),
            Row(
                q + "I rate, mean (last epoch)",
                k + "rate_i_mean",
                float(i.mean()),
                "Hz",
                "per seed " + ", ".join(f"{x:.3g}" for x in i),
            ),
        ]
    return rows, _grid_figures(camp, path, name), []
