"""``ei-sim grid``: the training grid over (W_EI, W_IE) cells (:mod:`ei_sim.sweeps.grid`)."""

from __future__ import annotations

import os
import sys

from ei_sim.cli.locks import holds, store_outputs


def _add_grid(sub) -> None:
    from ei_sim.cli.train import add_training_flags

    p = sub.add_parser(
        "grid", help="train one network per (W_EI, W_IE) cell, on Dask",
        description="Training grid over the E->I and I->E coupling means (W_EI, W_IE), "
        "one PING training per cell and seed. "
        "Axes: A..B (--points values), A..B:N, or a comma list. Re-running the same command "
        "skips finished cells.",
    )  # fmt: skip
    p.add_argument("--wei", default="0..2", help="W_EI means (default 0..2)")
    p.add_argument("--wie", default=None, help="W_IE means (default 0..4; not with "
                   "--diagonal)")  # fmt: skip
    p.add_argument("--points", type=int, default=5, help="values per A..B axis (default 5)")
    p.add_argument("--diagonal", action="store_true", help="1-D slice W_IE = ratio * W_EI")
    p.add_argument("--ei-ratio", type=float, default=2.0, help="ratio of --diagonal (default 2)")
    p.add_argument("--seeds", default="42", help="comma list of seeds per cell (default 42)")
    p.add_argument("--executor", choices=("dask", "serial", "vmap"), default="dask",
                   help="dask (default; LocalCluster or --scheduler), serial (in process) or "
                   "vmap (all cells of a seed in one compiled program)")  # fmt: skip
    p.add_argument("--scheduler", default=None, help="address of an existing Dask scheduler")
    p.add_argument(
        "--workers", type=int, default=None, help="LocalCluster workers, >= 1 (default: cores)"
    )
    p.add_argument("--out", default="runs/grid.h5", help="grid store (default runs/grid.h5; "
                   "a store of the same settings is resumed)")  # fmt: skip
    p.add_argument(
        "--force", action="store_true", help="start a store made with other settings anew"
    )
    video_help = ("store a snapshot of the reference trial after every epoch of every cell "
                  "(render them with ei-sim video STORE)")  # fmt: skip
    add_training_flags(p, {"budget": "0.2", "w_in": 0.6, "tier": "medium",
                           "video_help": video_help})  # fmt: skip


@holds(store_outputs)
def cmd_grid(args) -> int:
    from ei_sim.cli.checks import check_grid, check_recipe
    from ei_sim.cli.train import build_run, video_hook
    from ei_sim.sweeps.grid import GridSpec, run_grid
    from ei_sim.sweeps.ranges import parse_axis, parse_seeds
    from ei_sim.sweeps.store import resumable_cells
    from ei_sim.training.loop import TrainingFailed

    check_grid(args)
    wei = parse_axis(args.wei, args.points, "--wei")
    wie = parse_axis(args.wie or "0..4", args.points, "--wie")
    seeds = parse_seeds(args.seeds)
    model, cfg = build_run(args, "ping")  # validates every training flag up front
    check_recipe(model, cfg)
    train = {"budget": cfg.budget, "epochs": cfg.epochs, "batch_size": cfg.batch_size,
             "n_samples": cfg.n_samples, "learning_rate": cfg.learning_rate,
             "trained": cfg.trained, "data_source": cfg.data_source}  # fmt: skip
    spec = GridSpec(
        w_ei=tuple(wei), w_ie=tuple(wie), seeds=tuple(seeds),
        diagonal_ratio=args.ei_ratio if args.diagonal else None, model="ping", tier=args.tier,
        train=train, model_changes=grid_model_changes(model),
        size={k: v for k, v in (("n_e", args.n_e), ("t_ms", args.t_ms)) if v is not None},
    )  # fmt: skip
    resumable_cells(args.out, spec.settings(), args.force)  # before any worker starts
    from ei_sim.analysis.basins import label_cells

    def label(w_ei, w_ie, rate_e, rate_i):
        return str(label_cells([rate_e], [rate_i], [w_ei], [w_ie])[0])

    try:
        outcome = run_grid(spec, args.out, args.executor, args.scheduler, args.workers,
                           args.force, label_fn=label,
                           on_epoch=video_hook() if args.video else None)  # fmt: skip
    except KeyboardInterrupt:
        print(grid_interrupted_line(args.out))
        return 130
    except TrainingFailed as err:
        print(f"ei-sim grid: error: a cell failed: {err}", file=sys.stderr)
        return 1
    if outcome["skipped"]:
        print(f"skipped {len(outcome['skipped'])} finished cells already in {args.out}")
    _grid_outputs(args.out)
    return 0


def grid_interrupted_line(store: str) -> str:
    """What an interrupted grid kept: finished cells in the store, epochs in its cell runs."""
    from ei_sim.sweeps.store import read_cells

    n = len(read_cells(store)) if os.path.exists(store) else 0
    where = f"{n} finished cells are in {store}" if n else "no cell finished"
    partial = os.path.isdir(store + ".cells") and os.listdir(store + ".cells")
    more = f"; cells in training keep their completed epochs in {store}.cells" if partial else ""
    return f"interrupted; {where}{more}; run the same command to resume"


def grid_model_changes(model) -> dict:
    """What a grid cell's preset differs in from the PING preset (the setting only when it is
    not the canonical one, so stores made before settings existed still resume)."""
    changes = {"w_in_mean": model.w_in_mean}
    if model.setting != "canonical":
        changes["setting"] = model.setting
    return changes


def _grid_outputs(store: str) -> None:
    from ei_sim.analysis.basins import (
        analyze_grid,
        label_rule,
        plot_grid_map,
        plot_rate_accuracy,
        read_grid,
    )
    from ei_sim.analysis.sweep_plots import grid_heatmaps, grid_table
    from ei_sim.sweeps.store import read_cells

    cells = read_cells(store)
    print(grid_table(cells))
    print("labels: " + label_rule())
    stem = os.path.splitext(os.path.abspath(store))[0]
    out_dir = os.path.dirname(os.path.abspath(store))
    figures = grid_heatmaps(cells, out_dir, os.path.basename(stem))
    result = analyze_grid(read_grid(store))
    for name, plot in (("basins", plot_grid_map), ("e_rate_vs_accuracy", plot_rate_accuracy)):
        path = f"{stem}_{name}.png"
        plot(result, path)
        figures.append(path)
    print("figures: " + ", ".join(figures))


def register(sub) -> dict:
    """Add the ``grid`` command to ``sub``; returns {"grid": handler}."""
    _add_grid(sub)
    return {"grid": cmd_grid}
