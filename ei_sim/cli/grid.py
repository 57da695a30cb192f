"""``ei-sim grid``: the training grid over (W_EI, W_IE) cells (:mod:`ei_sim.sweeps.grid`)."""

from __future__ import annotations

import os
import sys

from ei_sim.cli.locks import holds, store_outputs


def _add_grid(sub) -> None:
    from ei_sim.cli import options
    from ei_sim.cli.cluster import add_cluster_options
    from ei_sim.cli.train import add_training_options

    p = sub.add_parser(
        "grid", help="train one network per (W_EI, W_IE) cell, on Dask",
        description="Training grid over the E->I and I->E coupling means (W_EI, W_IE), "
        "one PING training per cell and seed (the lab's grid recipe by default: budget 0.2, "
        "W_in 0.6, tier medium). Axes: A..B (--points values), A..B:N, or a comma list. "
        "Re-running the same command skips finished cells; the same command with more "
        "--epochs continues every cell from its last epoch.",
    )  # fmt: skip
    p.add_argument("--w-ei", default="0..2", help="W_EI means (default 0..2)")
    p.add_argument("--w-ie", default=None, help="W_IE means (default 0..4; not with "
                   "--diagonal)")  # fmt: skip
    options.hidden_alias(p, "--wei", "w_ei")
    options.hidden_alias(p, "--wie", "w_ie")
    p.add_argument("--points", type=int, default=5, help="values per A..B axis (default 5)")
    p.add_argument("--diagonal", action="store_true", help="1-D slice W_IE = ratio * W_EI")
    p.add_argument("--ei-ratio", type=float, default=2.0, help="ratio of --diagonal (default 2)")
    p.add_argument("--seeds", default=None, help="comma list of seeds per cell (default 42; "
                   "--seed S is --seeds S)")  # fmt: skip
    p.add_argument(
        "--setting",
        default=None,
        choices=("canonical", "lab"),
        help="canonical (default) or lab (as the reference lab's code ran)",
    )
    p.add_argument("--w-in", type=float, default=None, help="W_in mean (default 0.6, the "
                   "lab's grid recipe)")  # fmt: skip
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
    add_cluster_options(p)
    p.set_defaults(model="ping", w_in_default=GRID_W_IN)
    add_training_options(p, budget="0.2", video_help="store a snapshot of the reference trial "
                         "after every epoch of every cell (render them with ei-sim video "
                         "STORE)")  # fmt: skip


GRID_W_IN = 0.6  # the lab's grid recipe: between COBA's 0.3 and PING's 1.2


def grid_spec(args):
    """The frozen :class:`~ei_sim.sweeps.grid.GridSpec` the grid options describe."""
    from ei_sim.cli import options
    from ei_sim.sweeps.grid import GridSpec
    from ei_sim.sweeps.ranges import parse_axis

    if args.w_in is None:
        args.w_in = GRID_W_IN
    seeds = grid_seeds(args)
    targets = options.build_targets(args, model_flags={"--w-in": "w_in_mean"})
    w_ei = parse_axis(args.w_ei, args.points, "--w-ei")
    w_ie = () if args.diagonal else parse_axis(args.w_ie or "0..4", args.points, "--w-ie")
    return GridSpec(
        model=targets["model"], train=targets["train"], w_ei=tuple(w_ei), w_ie=tuple(w_ie),
        seeds=tuple(seeds), diagonal_ratio=args.ei_ratio if args.diagonal else None,
    )  # fmt: skip


def grid_seeds(args) -> list[int]:
    """``--seeds`` (a comma list) or ``--seed`` (one seed); both given must agree."""
    from ei_sim.sweeps.ranges import parse_seeds

    if args.seeds is not None and args.seed is not None:
        if parse_seeds(args.seeds) != [args.seed]:
            raise ValueError(f"--seed {args.seed} and --seeds {args.seeds} disagree; give one")
    if args.seeds is not None:
        return parse_seeds(args.seeds)
    return [42 if args.seed is None else args.seed]


@holds(store_outputs)
def cmd_grid(args) -> int:
    from ei_sim.cli.checks import check_grid, check_recipe
    from ei_sim.cli.cluster import (
        check_cluster_options,
        print_dry_run,
        slurm_jobs,
        worker_timeout,
    )
    from ei_sim.cli.train import video_hook
    from ei_sim.sweeps.grid import CellLost, run_grid
    from ei_sim.sweeps.store import resumable_cells
    from ei_sim.training.errors import TrainingFailed

    check_grid(args)
    check_cluster_options(args)
    spec = grid_spec(args)  # builds and checks the network and recipe of every cell
    check_recipe(spec.model, spec.train)
    resumable_cells(args.out, spec.settings(), args.force)  # before any worker starts
    if args.dry_run:
        print_dry_run(spec, args.out, slurm_jobs(args), args.force)
        return 0
    from ei_sim.analysis.basins import label_cells

    def label(w_ei, w_ie, rate_e, rate_i):
        return str(label_cells([rate_e], [rate_i], [w_ei], [w_ie])[0])

    from ei_sim.cli.interrupts import raise_if_interrupted

    try:
        raise_if_interrupted()  # one a library swallowed while the command started
        outcome = run_grid(
            spec,
            args.out,
            args.executor,
            args.scheduler,
            args.workers,
            args.force,
            progress=not args.quiet,
            label_fn=label,
            on_epoch=video_hook() if args.video else None,
            slurm=slurm_jobs(args),
            worker_timeout_s=worker_timeout(args),
            after_epoch=lambda _done: raise_if_interrupted(),
        )
        # fmt: skip
    except KeyboardInterrupt:
        print(grid_interrupted_line(args.out))
        return 130
    except (TrainingFailed, CellLost) as err:
        print(f"ei-sim grid: error: a cell failed: {err}", file=sys.stderr)
        return 1
    if outcome["skipped"]:
        print(f"skipped {len(outcome['skipped'])} finished cells already in {args.out}")
    _grid_outputs(args.out)
    return 0


def grid_interrupted_line(store: str) -> str:
    """What an interrupted grid kept: finished cells in the store, epochs in its cell runs."""
    from ei_sim.store.paths import cells_dir
    from ei_sim.sweeps.store import read_cells

    n = len(read_cells(store)) if os.path.exists(store) else 0
    where = f"{n} finished cells are in {store}" if n else "no cell finished"
    cells = cells_dir(store)
    partial = os.path.isdir(cells) and os.listdir(cells)
    more = f"; cells in training keep their completed epochs in {cells}" if partial else ""
    return f"interrupted; {where}{more}; run the same command to resume"


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
    result = analyze_grid(read_grid(store), check=False)  # the figures do not show the check
    for name, plot in (("basins", plot_grid_map), ("e_rate_vs_accuracy", plot_rate_accuracy)):
        path = f"{stem}_{name}.png"
        plot(result, path)
        figures.append(path)
    print("figures: " + ", ".join(figures))


def register(sub) -> dict:
    """Add the ``grid`` command to ``sub``; returns {"grid": handler}."""
    _add_grid(sub)
    return {"grid": cmd_grid}
