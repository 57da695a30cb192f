"""``ei-sim reproduce``: run (or read back) one of the lab's experiments beside its numbers.

:func:`reproduce` runs one experiment (:func:`ei_sim.analysis.reproduce.experiment.experiments`)
at one scale under one setting (:mod:`ei_sim.models.settings`) into ``out_dir``:

* ``<experiment>_<scale>_<setting>_<epochs>ep.h5``: the reproduction store (``kind =
  "reproduce"``, one group per finished stage; :mod:`~ei_sim.analysis.reproduce.store`);
* ``.md`` and ``.html`` beside it: the verdicts on the lab's claims, the table (lab value with
  its source, ei-sim value, difference; a ``quick`` miniature shows no per-number difference)
  and the figures;
* ``runs/<run name>/run.h5`` (trainings) and ``<experiment>_<scale>_<setting>.grid.h5``
  (grids), shared by every experiment and every epoch count: the same command with more
  ``--epochs`` continues them from their last epoch.

Before anything runs, the stages of a matching shipped results file
(:mod:`~ei_sim.analysis.reproduce.results`) are taken as finished, and so are the grid cells
of matching shipped cell records (:mod:`~ei_sim.analysis.reproduce.cell_records`); with
``--save-results`` each grid cell is recorded as soon as it is stored. Killed at any moment, the
same command resumes: finished stages are read back, a training continues from its last
finished epoch, a grid from its finished cells; a damaged stage, run or grid cell is named
in one line and computed again. A reproduction holds the lock on its store while it runs
(:func:`ei_sim.store.lock.exclusive`): the same command run twice at once is refused at once;
trainings and grids shared with another experiment are locked one by one.
"""

from __future__ import annotations

import functools
import inspect
import os

from ei_sim.analysis.reproduce import results as shipped
from ei_sim.analysis.reproduce import store
from ei_sim.analysis.reproduce.cell_records import CellRecords
from ei_sim.analysis.reproduce.experiment import Verdict, experiments, not_yet_run
from ei_sim.analysis.reproduce.plans import get_plan
from ei_sim.analysis.reproduce.reference import load_reference
from ei_sim.analysis.reproduce.stages import Campaign
from ei_sim.analysis.reproduce.table import compare, html_page, markdown
from ei_sim.store.atomic import write_text
from ei_sim.store.lock import exclusive

QUICK_NOTE = ("A quick miniature: it checks what a miniature can (which coupling moves the "
              "cliff, the structure of the label map, the orderings of the budget table); its "
              "numbers are not compared with the lab's medium-tier, 100-epoch values.")  # fmt: skip


def store_path(out_dir: str, experiment: str, scale: str, setting: str, epochs: int) -> str:
    return os.path.join(out_dir, f"{experiment}_{scale}_{setting}_{epochs}ep.h5")


def _holding_store(fn):
    """Run ``fn`` (:func:`reproduce`) holding the lock on its store: one reproduction per
    store, taken before anything is written (:func:`ei_sim.store.lock.exclusive`)."""
    signature = inspect.signature(fn)

    @functools.wraps(fn)
    def locked(*args, **kwargs):
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        a = bound.arguments
        if a["records_only"]:  # writes no store: beside a campaign that holds it
            return fn(*args, **kwargs)
        try:
            plan = get_plan(experiments()[a["experiment"]], a["scale"], a["tier"], a["epochs"])
        except (KeyError, ValueError):  # fn says what is wrong with them
            return fn(*args, **kwargs)
        if not os.path.isdir(a["out_dir"]):
            return fn(*args, **kwargs)
        path = store_path(a["out_dir"], a["experiment"], a["scale"], a["setting"], plan.epochs)
        with exclusive(path):
            return fn(*args, **kwargs)

    return locked


@_holding_store
def reproduce(
    experiment,
    scale="quick",
    out_dir="runs/reproduce",
    setting="lab",
    tier=None,
    epochs=None,
    executor="dask",
    scheduler=None,
    workers=None,
    reference_path=None,
    force=False,
    progress=True,
    results_root="shipped",
    save_results=None,
    slurm=None,
    worker_timeout_s=None,
    check=None,
    records_only=False,
) -> dict:
    """Run (or resume, or read back) one reproduction; return its table and the paths
    written. ``results_root``: the folder of shipped results to start from ("shipped": the
    package's; None: none); ``save_results``: a folder to write this run's results file into
    (:mod:`~ei_sim.analysis.reproduce.results`). ``executor``, ``scheduler``, ``workers``,
    ``slurm`` (SLURM jobs: :class:`ei_sim.sweeps.cluster.SlurmJobs`) and ``worker_timeout_s``
    (None: the default) say where the grid and diagonal experiments train their cells
    (:func:`ei_sim.sweeps.grid.run_grid`). ``check()``, if given, runs before each stage and
    after each epoch trained in this process (the CLI raises there a Ctrl-C that a library
    swallowed). ``records_only`` (grid and diagonal): an interim page from the cell records
    alone (those under ``results_root``, then ``save_results``: a cell in both is read from
    the first), nothing trained, no store written (``store`` is None); its files end in
    ``_interim`` and name the cells not yet run."""
    from ei_sim.models import get_setting

    catalogue = experiments()
    if experiment not in catalogue:
        raise ValueError(f"unknown experiment {experiment!r}; choose one of "
                         f"{', '.join(catalogue)}")  # fmt: skip
    exp = catalogue[experiment]
    if records_only and not exp.grid:
        raise ValueError(f"--records-only reads grid cells; the {experiment} experiment has "
                         "none (use grid or diagonal)")  # fmt: skip
    get_setting(setting)  # validate before any work
    plan = get_plan(exp, scale, tier, epochs)
    reference = load_reference(reference_path)
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise ValueError(f"--out {out_dir} is a file, not a folder; choose a campaign folder")
    if not os.path.isdir(out_dir):
        raise ValueError(f"output folder {out_dir} does not exist; create it first")
    path = store_path(out_dir, experiment, scale, setting, plan.epochs)
    meta = {"experiment": experiment, "scale": scale, "setting": setting,
            "epochs": plan.epochs, **plan.attrs()}  # fmt: skip
    if records_only:
        path = os.path.splitext(path)[0] + "_interim.h5"  # named by the page, never written
        done = set()
    else:
        done = store.open_or_create(path, meta, force)
    grid_options = {"executor": executor, "scheduler": scheduler, "n_workers": workers,
                    "slurm": slurm}  # fmt: skip
    if worker_timeout_s is not None:
        grid_options["worker_timeout_s"] = worker_timeout_s
    camp = Campaign(
        out_dir=out_dir,
        store_path=path,
        setting=setting,
        progress=progress,
        done=done,
        quick=scale == "quick",
        grid_options=grid_options,
        check=check,
        records_only=records_only,
    )
    camp.reference = reference
    root = shipped.shipped_root() if results_root == "shipped" else results_root
    if records_only:  # the records of both folders; nothing recorded
        camp.cell_records = CellRecords.under(experiment, scale, setting, root)
        if save_results:
            camp.cell_records.read_paths += CellRecords.under(
                experiment, scale, setting, save_results).read_paths
    else:
        camp.cell_records = CellRecords.under(experiment, scale, setting, root, save_results)
        _seed_from_results(camp, root, exp, scale, setting, plan)
    result = exp.run(camp, plan)
    table = compare(result.rows, reference, with_lab=not camp.quick, epochs=plan.epochs,
                    lab_epochs=exp.lab_epochs)  # fmt: skip
    preamble = [
        f"Experiment {experiment}, scale {scale}, setting {setting}; lab numbers from "
        f"{os.path.basename(reference.path)} ({reference.lab}).",
        f"Scale: {plan.reduced or 'the lab recipe'}. Trainings: tier {plan.tier}, "
        f"{plan.epochs} epochs (the lab's: {exp.lab_epochs}).",
        *([QUICK_NOTE] if camp.quick else []),
        *result.statements,
    ]
    verdicts = list(result.verdicts)
    stem = os.path.splitext(path)[0]
    _write_text(stem + ".md", markdown(exp.title, preamble, table, result.figures, verdicts))
    _write_text(stem + ".html", html_page(exp.title, preamble, table, result.figures, verdicts))
    if save_results and not records_only:
        target = shipped.results_path(save_results, experiment, scale, setting, plan.epochs)
        shipped.write_results(
            target, experiment=experiment, scale=scale, setting=setting, epochs=plan.epochs,
            plan_attrs=plan.attrs(), stages=store.load_stages(path), rows=table,
            verdicts=verdicts, statements=list(result.statements),
        )  # fmt: skip
        camp.say(f"results written to {target}")
    return {
        "rows": table, "store": None if records_only else path, "markdown": stem + ".md",
        "html": stem + ".html",
        "figures": list(result.figures), "preamble": preamble, "log": camp.log,
        "verdicts": verdicts,
    }  # fmt: skip


def grid_of(experiment, scale="quick", out_dir="runs/reproduce", setting="lab", tier=None,
            epochs=None):  # fmt: skip
    """The grid an experiment trains (``grid``, ``diagonal``) and the path of its grid store:
    ``(GridSpec, path)``; reads and writes nothing."""
    from ei_sim.analysis.reproduce.grids import grid_spec, grid_store
    from ei_sim.models import get_setting

    if experiment not in ("grid", "diagonal"):
        raise ValueError(f"the {experiment} experiment trains no grid")
    get_setting(setting)
    plan = get_plan(experiments()[experiment], scale, tier, epochs)
    path = store_path(out_dir, experiment, scale, setting, plan.epochs)
    return grid_spec(plan, setting, experiment == "diagonal"), grid_store(out_dir, path)


def _seed_from_results(camp, root, exp, scale, setting, plan) -> None:
    """Take the stages of a matching shipped results file as finished."""
    if not root:
        return
    path = shipped.results_path(root, exp.name, scale, setting, plan.epochs)
    if not os.path.isfile(path):
        return
    try:
        data = shipped.read_results(path, experiment=exp.name, setting=setting,
                                    plan_attrs=plan.attrs())  # fmt: skip
    except ValueError as err:
        camp.say(f"shipped results not used: {err}")
        return
    missing = [n for n in data["stages"] if n not in camp.done]
    for name in missing:
        stage = data["stages"][name]
        store.save_stage(camp.store_path, name, stage["attrs"], stage["arrays"])
        camp.done.add(name)
    if missing:
        camp.say(f"{len(missing)} stages read from {path} (commit "
                 f"{data['provenance'].get('git_commit', '?')[:10]}, "
                 f"{data['provenance'].get('machine', '?')})")  # fmt: skip


def summary(root="shipped", scale: str = "full", setting: str = "lab") -> list[tuple]:
    """``(experiment, epochs or None, [Verdict])`` for every experiment: the verdicts of its
    shipped results with the most epochs, or "not yet run"."""
    root = shipped.shipped_root() if root == "shipped" else root
    out = []
    for name, exp in experiments().items():
        epochs = shipped.available(root, name, scale, setting)
        if not epochs:
            why = _cells_progress(root, name, scale, setting) or "its trainings have not been run"
            out.append((name, None, list(not_yet_run(exp.claims or (exp.title,), why))))
            continue
        path = shipped.results_path(root, name, scale, setting, epochs[-1])
        with open(path, encoding="utf-8") as fh:
            import json

            data = json.load(fh)
        verdicts = [Verdict(**v) for v in data.get("verdicts", [])]
        out.append((name, epochs[-1], verdicts))
    return out


def _cells_progress(root, experiment: str, scale: str, setting: str) -> str | None:
    """How far a grid campaign has got by its shipped cell records, in words (None: not a
    grid experiment, or no cell recorded)."""
    exp = experiments()[experiment]
    if not root or not exp.grid or scale not in exp.plans:
        return None
    from ei_sim.analysis.reproduce.grids import grid_spec
    from ei_sim.sweeps.store import cell_name

    spec = grid_spec(exp.plans[scale], setting, experiment == "diagonal")
    names = [cell_name(a, b, s) for a, b, s in spec.cells()]
    records = CellRecords.under(experiment, scale, setting, root).for_grid(spec)
    found = records.finished(1, names, say=lambda _line: None)
    if not found:
        return None
    counts = sorted({c["epochs"] for c in found.values()})
    return (f"campaign in progress: {len(found)} of {len(names)} cells recorded, with "
            f"{', '.join(map(str, counts))} epochs; the verdict waits for every cell (the page "
            f"so far: ei-sim reproduce {experiment} --scale {scale} --epochs {counts[0]} "
            "--records-only)")  # fmt: skip


def _write_text(path: str, text: str) -> None:
    write_text(path, text)


NAMES = tuple(experiments())  # the experiments, in the order of the tables
