"""``ei-sim reproduce``: the reference lab's experiments side by side with ei-sim's numbers.

:func:`reproduce` runs one experiment (:mod:`ei_sim.analysis.reproduce.experiments`) at one scale
(:mod:`ei_sim.analysis.reproduce.plans`) under one setting (:mod:`ei_sim.models.settings`) into
``out_dir``:

* ``<experiment>_<scale>_<setting>.h5``: the reproduction store (``kind = "reproduce"``, one
  group per finished stage; :mod:`ei_sim.analysis.reproduce.store`);
* ``.md`` and ``.html`` beside it: the table (lab value with its source, ei-sim value,
  difference) and the figures (PNG);
* ``runs/<run name>/run.h5`` (training runs) and ``<store>.grid.h5`` (grids), shared by every
  experiment that needs the same run.

The lab's numbers come from ``data/reference/pinglab.json``
(:mod:`ei_sim.analysis.reproduce.reference`).
Killed at any moment, the same command resumes: finished stages are read back, a training in
progress continues from its last finished epoch, a grid from its finished cells; a damaged
stage, run or grid cell is named in one line and computed again. A reproduction holds the
lock on its store while it runs (:func:`ei_sim.store.lock.exclusive`): the same command run
twice at once is refused at once; trainings and grids shared with another experiment are
locked one by one.
"""

from __future__ import annotations

import functools
import inspect
import os

from ei_sim.analysis.reproduce import experiments, grids, store
from ei_sim.analysis.reproduce.plans import PLANS, get_plan
from ei_sim.analysis.reproduce.reference import load_reference
from ei_sim.analysis.reproduce.stages import Campaign
from ei_sim.analysis.reproduce.table import compare, html_page, markdown
from ei_sim.store.atomic import write_text
from ei_sim.store.lock import exclusive

EXPERIMENTS = tuple(PLANS)
RUNNERS = {
    "budgets": experiments.budgets,
    "coupling": experiments.coupling,
    "grid": grids.grid,
    "diagonal": grids.diagonal,
    "meanfield": experiments.meanfield,
}
TITLES = {
    "budgets": "nb025: PING and COBA under spike budgets",
    "coupling": "nb036 Figure 1: inference-time coupling sweeps of a trained PING",
    "grid": "nb036: the 5 x 5 (W_EI, W_IE) training grid",
    "diagonal": "nb036: the diagonal slice W_IE = 2 W_EI, three seeds",
    "meanfield": "nb033: mean-field Hopf point and f(tau_GABA), beside the spiking network",
}


def store_path(out_dir: str, experiment: str, scale: str, setting: str) -> str:
    return os.path.join(out_dir, f"{experiment}_{scale}_{setting}.h5")


def _holding_store(fn):
    """Run ``fn`` (:func:`reproduce`) holding the lock on its store: one reproduction per
    store, taken before anything is written (:func:`ei_sim.store.lock.exclusive`)."""
    signature = inspect.signature(fn)

    @functools.wraps(fn)
    def locked(*args, **kwargs):
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        a = bound.arguments
        if not os.path.isdir(a["out_dir"]):  # fn says what is wrong with it
            return fn(*args, **kwargs)
        with exclusive(store_path(a["out_dir"], a["experiment"], a["scale"], a["setting"])):
            return fn(*args, **kwargs)

    return locked


@_holding_store
def reproduce(
    experiment,
    scale="quick",
    out_dir="runs/reproduce",
    setting="canonical",
    tier=None,
    epochs=None,
    executor="dask",
    scheduler=None,
    workers=None,
    reference_path=None,
    force=False,
    progress=True,
) -> dict:
    """Run (or resume) one reproduction; return its rows and the paths written."""
    from ei_sim.models import get_setting

    get_setting(setting)  # validate before any work
    plan = get_plan(experiment, scale, tier, epochs)
    reference = load_reference(reference_path)
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise ValueError(f"--out {out_dir} is a file, not a folder; choose a campaign folder")
    if not os.path.isdir(out_dir):
        raise ValueError(f"output folder {out_dir} does not exist; create it first")
    path = store_path(out_dir, experiment, scale, setting)
    meta = {"experiment": experiment, "scale": scale, "setting": setting, **plan.attrs()}
    done = store.open_or_create(path, meta, force)
    camp = Campaign(out_dir=out_dir, store_path=path, setting=setting, progress=progress, done=done)
    run = RUNNERS[experiment]
    grid_args = {"executor": executor, "scheduler": scheduler, "workers": workers}
    out = run(camp, plan, **grid_args) if experiment in ("grid", "diagonal") else run(camp, plan)
    rows, figures = out[0], out[1]
    statements = out[2] if len(out) > 2 else []
    table = compare(rows, reference)
    preamble = [
        f"Experiment {experiment}, scale {scale}, setting {setting}; lab numbers from "
        f"{os.path.basename(reference.path)} ({reference.lab}).",
        f"Scale: {plan.reduced or 'the lab recipe'}. Trainings: tier {plan.tier}, "
        f"{plan.epochs} epochs.",
        *statements,
    ]
    title = TITLES[experiment]
    stem = os.path.splitext(path)[0]
    _write_text(stem + ".md", markdown(title, preamble, table, figures))
    _write_text(stem + ".html", html_page(title, preamble, table, figures))
    return {
        "rows": table,
        "store": path,
        "markdown": stem + ".md",
        "html": stem + ".html",
        "figures": figures,
        "preamble": preamble,
        "log": camp.log,
    }


def _write_text(path: str, text: str) -> None:
    write_text(path, text)


__all__ = ["EXPERIMENTS", "reproduce", "store_path"]
