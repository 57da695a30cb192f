"""Where ``grid`` and ``reproduce`` run their Dask workers: the options both commands share.

``--cluster local`` (the default) is a LocalCluster on this machine, or the running Dask
scheduler of ``--scheduler ADDR``; ``--cluster slurm`` starts the workers as SLURM jobs
through dask-jobqueue (:mod:`ei_sim.sweeps.cluster`), with the job options below and a
preview of the job script (``--dry-run``). ``--worker-timeout`` bounds the wait for workers
on every deployment.
"""

from __future__ import annotations

import sys

SLURM_OPTIONS = ("queue", "account", "walltime", "cores", "memory", "jobs", "sbatch",
                 "job_logs", "dry_run")  # fmt: skip


def add_cluster_options(p) -> None:
    """Add ``--cluster``, ``--worker-timeout`` and the SLURM job options to parser ``p``
    (which has ``--scheduler`` and ``--workers`` of its own)."""
    g = p.add_argument_group(
        "cluster", "where the Dask workers run (the dask executor); SLURM options need "
        "--cluster slurm and default from dask-jobqueue's configuration (jobqueue.slurm.*)",
    )  # fmt: skip
    g.add_argument("--cluster", choices=("local", "slurm"), default="local",
                   help="local: a LocalCluster, or the scheduler of --scheduler (default); "
                   "slurm: Dask workers as SLURM jobs (dask-jobqueue)")  # fmt: skip
    g.add_argument("--worker-timeout", type=float, default=None, metavar="SECONDS",
                   help="stop (exit 2) when the cluster has had no worker this long, at the "
                   "start or later (default 300)")  # fmt: skip
    g.add_argument("--queue", "--partition", dest="queue", default=None,
                   help="SLURM partition of the worker jobs")  # fmt: skip
    g.add_argument("--account", default=None, help="SLURM account to charge (-A)")
    g.add_argument("--walltime", default=None, help="time limit per worker job, e.g. "
                   "02:00:00 (default: the configuration's, else 00:30:00); a cell cut off "
                   "resumes from its last epoch in a new job")  # fmt: skip
    g.add_argument("--cores", type=int, default=None, help="cores per job: one single-"
                   "threaded worker (one cell at a time) per core (default 1)")  # fmt: skip
    g.add_argument("--memory", default=None, help="memory per job, e.g. 8GiB (default: "
                   "ei-sim's estimate of a cell's peak per core)")  # fmt: skip
    g.add_argument("--jobs", type=int, default=None, help="worker jobs at most (default: one "
                   "per --cores cells to train)")  # fmt: skip
    g.add_argument("--sbatch", action="append", default=[], metavar="OPTION",
                   help="an extra #SBATCH line, e.g. --sbatch=--qos=short "
                   "(repeatable)")  # fmt: skip
    g.add_argument("--job-logs", default=None, metavar="DIR", help="where the worker jobs "
                   "write their output (default: <store>.jobs beside the grid store)")  # fmt: skip
    g.add_argument("--dry-run", action="store_true", help="print the worker job script and "
                   "the number of jobs, and submit nothing")  # fmt: skip


def check_cluster_options(args) -> None:
    """One line (ValueError) for options that do not go together."""
    from ei_sim import validate

    if args.worker_timeout is not None:
        validate.positive("--worker-timeout", args.worker_timeout)
    if args.cluster != "slurm":
        for name in SLURM_OPTIONS:
            if getattr(args, name) not in (None, False, []):
                flag = "--" + name.replace("_", "-")
                raise ValueError(f"{flag} is a SLURM option; add --cluster slurm")
        return
    if args.scheduler:
        raise ValueError("--cluster slurm starts its own scheduler; drop --scheduler")
    if args.workers is not None:
        raise ValueError("--cluster slurm starts one worker per job core; drop --workers "
                         "(use --jobs and --cores)")  # fmt: skip
    if args.executor != "dask":
        raise ValueError(f"--cluster slurm runs the dask executor; drop --executor "
                         f"{args.executor}")  # fmt: skip
    slurm_jobs(args)  # validates the job options


def slurm_jobs(args):
    """The SLURM job request of the options (None without ``--cluster slurm``)."""
    from ei_sim.sweeps.cluster import SlurmJobs

    if args.cluster != "slurm":
        return None
    return SlurmJobs(queue=args.queue, account=args.account, walltime=args.walltime,
                     cores=args.cores, memory=args.memory, jobs=args.jobs,
                     sbatch=tuple(args.sbatch), log_dir=args.job_logs)  # fmt: skip


def worker_timeout(args) -> float:
    from ei_sim.sweeps.cluster import DEFAULT_WORKER_TIMEOUT_S

    return DEFAULT_WORKER_TIMEOUT_S if args.worker_timeout is None else args.worker_timeout


def print_dry_run(spec, store: str, slurm, force: bool = False) -> None:
    """``--dry-run``: the job script on stdout (a file to submit as it is), and on stderr
    one line with how many such jobs the grid would submit, for how many cells."""
    from ei_sim.sweeps.cluster import job_script
    from ei_sim.sweeps.grid import cells_to_train, slurm_plan

    todo = cells_to_train(spec, store, force)
    kwargs, n_jobs = slurm_plan(spec, store, slurm, max(1, len(todo)))
    n_jobs = n_jobs if todo else 0
    print(job_script(kwargs), end="")
    print(f"dry run: {n_jobs} SLURM job{'s' if n_jobs != 1 else ''} like this one for "
          f"{len(todo)} cells to train ({kwargs['cores']} single-threaded workers and "
          f"{kwargs['memory']} per job); job output in {kwargs['log_directory']}; nothing "
          "submitted", file=sys.stderr)  # fmt: skip
