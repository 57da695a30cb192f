"""``ei-sim reproduce NAME``: one of the reference lab's experiments, side by side."""

from __future__ import annotations


def _add_reproduce(sub) -> None:
    from ei_sim.cli import options
    from ei_sim.cli.cluster import add_cluster_options

    p = sub.add_parser(
        "reproduce",
        help="rerun one of the reference lab's experiments beside its numbers",
        description="Run (or resume) one of the reference lab's experiments and write an HDF5 "
        "store plus a Markdown/HTML table: the lab's value (with its source), ei-sim's, and "
        "the difference. Experiments: budgets (nb025), coupling (nb036 Figure 1), grid "
        "(nb036 5x5), diagonal (nb036 slice), meanfield (nb033). Killed, the same command "
        "resumes with nothing recomputed.",
    )
    p.add_argument(
        "experiment",
        metavar="NAME",
        help="budgets, coupling, grid, diagonal or meanfield; "
        "or 'summary': every claim's verdict from the shipped lab-scale results",
    )
    p.add_argument(
        "--scale",
        default="quick",
        choices=("quick", "full"),
        help="quick (default: a miniature, well under an hour on a 2-core laptop) or full "
        "(the lab's recipe; a cluster or a long night)",
    )
    options.add_setting(p, default="lab")
    p.add_argument(
        "--out",
        default="runs/reproduce",
        help="campaign folder (default runs/reproduce; runs in it are shared between experiments)",
    )
    p.add_argument("--tier", default=None, help="override the plan's tier (tiny, medium, long)")
    p.add_argument("--epochs", type=int, default=None, help="override the plan's epochs")
    p.add_argument(
        "--executor",
        choices=("dask", "serial", "vmap"),
        default="dask",
        help="grid executor for grid and diagonal (default dask)",
    )
    p.add_argument("--scheduler", default=None, help="address of an existing Dask scheduler")
    p.add_argument(
        "--workers", type=int, default=None, help="LocalCluster workers (default: cores)"
    )
    p.add_argument(
        "--reference",
        default=None,
        help="the lab's numbers (default: the shipped data/reference/pinglab.json)",
    )
    p.add_argument("--force", action="store_true", help="start a store made with another plan anew")
    p.add_argument("--save-results", default=None, metavar="DIR", help="also write the "
                   "results (numbers, no weights) as DIR/<experiment>/<scale>_<setting>_"
                   "<epochs>ep.json, as the repository ships them in data/results")  # fmt: skip
    p.add_argument("--no-shipped", action="store_true", help="do not start from the shipped "
                   "results of the same plan (recompute every stage)")  # fmt: skip
    p.add_argument("--records-only", action="store_true", help="grid and diagonal: an interim "
                   "page from the cell records alone (the shipped ones and those under "
                   "--save-results DIR), naming the cells not yet run; trains nothing, writes "
                   "no store (may run beside the campaign)")  # fmt: skip
    add_cluster_options(p)


def cmd_reproduce(args) -> int:
    from ei_sim.analysis.reproduce.runner import NAMES, grid_of, reproduce, summary
    from ei_sim.cli.cluster import (
        check_cluster_options,
        print_dry_run,
        slurm_jobs,
        worker_timeout,
    )
    from ei_sim.sim.parallel import use_cpu_cores

    if args.records_only:  # trains nothing: the options of where and how to train do not apply
        given = [flag for flag, on in (("summary", args.experiment == "summary"),
                                       ("--dry-run", args.dry_run), ("--force", args.force),
                                       ("--cluster slurm", args.cluster == "slurm"),
                                       ("--scheduler", args.scheduler is not None),
                                       ("--workers", args.workers is not None)) if on]  # fmt: skip
        if given:
            raise ValueError(f"--records-only trains nothing and writes no store; "
                             f"{', '.join(given)} does not go with it")  # fmt: skip
    if args.experiment == "summary":
        print(summary_text(summary(scale=args.scale if args.scale != "quick" else "full",
                                   setting=args.setting or "lab")))  # fmt: skip
        return 0
    if args.experiment not in NAMES:
        raise ValueError(
            f"unknown experiment {args.experiment!r}; choose one of {', '.join(NAMES)} or summary"
        )
    if args.workers is not None and args.workers < 1:
        raise ValueError(f"--workers must be >= 1, got {args.workers}")
    check_cluster_options(args)
    if args.cluster == "slurm" and args.experiment not in ("grid", "diagonal"):
        raise ValueError(f"--cluster slurm trains the cells of the grid and diagonal "
                         f"experiments; {args.experiment} runs in this process")  # fmt: skip
    if args.dry_run:
        spec, path = grid_of(args.experiment, args.scale, args.out, args.setting or "lab",
                             args.tier, args.epochs)  # fmt: skip
        print_dry_run(spec, path, slurm_jobs(args), args.force)
        return 0
    from ei_sim.cli.interrupts import raise_if_interrupted

    if args.experiment not in ("grid", "diagonal"):
        use_cpu_cores()  # trainings and sweeps split their batches over the cores
    try:
        raise_if_interrupted()  # one a library swallowed while the command started
        out = reproduce(
            args.experiment, args.scale, args.out, args.setting or "lab", args.tier,
            args.epochs, args.executor, args.scheduler, args.workers, args.reference,
            args.force, results_root=None if args.no_shipped else "shipped",
            save_results=args.save_results, slurm=slurm_jobs(args),
            worker_timeout_s=worker_timeout(args), check=raise_if_interrupted,
            records_only=args.records_only,
        )  # fmt: skip
    except KeyboardInterrupt:
        if args.records_only:
            print("interrupted; nothing was written")
        else:
            print(f"interrupted; finished stages are in {args.out}; run the same command to "
                  "resume")  # fmt: skip
        return 130
    with open(out["markdown"], encoding="utf-8") as fh:
        print(fh.read())
    written = [out["store"], out["markdown"], out["html"]]
    print("wrote " + ", ".join(p for p in written if p))
    return 0


def summary_text(rows) -> str:
    """The verdict of every claim of every experiment, from the shipped results."""
    lines = []
    for name, epochs, verdicts in rows:
        at = "not yet run" if epochs is None else f"{epochs} epochs"
        lines.append(f"{name} ({at}):")
        lines += [f"  - {v.claim}: {v.status}" + (f" ({v.evidence})" if v.evidence else "")
                  for v in verdicts]  # fmt: skip
    return "\n".join(lines)


def register(sub) -> dict:
    _add_reproduce(sub)
    return {"reproduce": cmd_reproduce}
