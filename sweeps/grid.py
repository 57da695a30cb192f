"""The (W_EI, W_IE) training grid (SPEC section 3) on Dask distributed.

One PING-architecture training per (W_EI mean, W_IE mean, seed) cell. Cells run as tasks on
a Dask cluster: by default an in-process ``LocalCluster`` whose workers are *spawned*
processes (JAX and fork do not mix) with one XLA thread each; ``scheduler="tcp://..."`` uses
an existing cluster (for example one started by dask-jobqueue on SLURM). ``executor="serial"``
trains the cells one after another in this process; ``executor="vmap"`` trains all cells of
a seed together in one compiled program (:mod:`sweeps.vmapped`).

Each cell trains into its own run directory beside the store (``<store>.cells/<name>``), so
an interrupted cell resumes from its last completed epoch; a finished cell is copied into the
store atomically and skipped by later runs of the same command.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass

import numpy as np

from sweeps.store import add_cell, cell_name, open_or_create

WORKER_ENV = {
    "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1",
    "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
}  # fmt: skip


@dataclass(frozen=True)
class GridSpec:
    """The cells of a grid and the recipe every cell trains with."""

    w_ei: tuple
    w_ie: tuple
    seeds: tuple = (42,)
    diagonal_ratio: float | None = None  # set: W_IE = ratio * W_EI, the w_ie axis is unused
    model: str = "ping"
    tier: str = "medium"
    train: dict = dataclasses.field(default_factory=dict)  # TrainConfig overrides
    model_changes: dict = dataclasses.field(default_factory=dict)  # e.g. {"w_in_mean": 0.6}
    size: dict = dataclasses.field(default_factory=dict)  # tier overrides: n_e, t_ms
    video: bool = False

    def cells(self) -> list[tuple[float, float, int]]:
        if self.diagonal_ratio is not None:
            pairs = [(w, self.diagonal_ratio * w) for w in self.w_ei]
        else:
            pairs = [(a, b) for a in self.w_ei for b in self.w_ie]
        return [(a, b, s) for a, b in pairs for s in self.seeds]

    def settings(self) -> dict:
        """What must match for a store to be resumed (flattened to attributes)."""
        out = {
            "grid.model": self.model, "grid.tier": self.tier, "grid.seeds": repr(self.seeds),
            "grid.diagonal_ratio": "none" if self.diagonal_ratio is None else self.diagonal_ratio,
            "grid.w_ei": repr(self.w_ei), "grid.w_ie": repr(self.w_ie),
        }  # fmt: skip
        out.update({f"grid.train.{k}": repr(v) for k, v in sorted(self.train.items())})
        out.update({f"grid.model.{k}": repr(v) for k, v in sorted(self.model_changes.items())})
        out.update({f"grid.size.{k}": repr(v) for k, v in sorted(self.size.items())})
        return out


def train_cell(spec: GridSpec, w_ei: float, w_ie: float, seed: int, cell_dir: str) -> dict:
    """Train one cell (runs in a worker); returns what the store keeps of it."""
    from ei_sim.compile_cache import enable
    from ei_sim.runstore import run_path
    from ei_sim.train import tier_config, tier_model, train
    from models import get_model

    enable()  # workers share the persistent compilation cache (atomic entries)
    model = get_model(spec.model, w_ei_mean=w_ei, w_ie_mean=w_ie, **spec.model_changes)
    model = tier_model(model, spec.tier, **spec.size)
    cfg = tier_config(spec.tier, **{**spec.train, "seed": seed})
    hook = None
    if spec.video:
        from analysis.video_hook import snapshot_writer as hook
    resume = os.path.exists(run_path(cell_dir))
    result = train(model, cfg, cell_dir, resume=resume, progress=False, on_epoch=hook)
    m, b = result.metrics, result.best_epoch - 1
    summary = {
        "w_ei": w_ei, "w_ie": w_ie, "seed": seed, "best_accuracy": result.best_accuracy,
        "final_accuracy": result.final_accuracy, "best_epoch": result.best_epoch,
        "rate_e_Hz": float(m["test_rate_e_Hz"][b]), "rate_i_Hz": float(m["test_rate_i_Hz"][b]),
        "gamma_peak_Hz": float(m["gamma_peak_Hz"][b]), "run_dir": cell_dir,
    }  # fmt: skip
    weights = {k: np.asarray(v) for k, v in result.best_weights._asdict().items() if v is not None}
    return {"summary": summary, "metrics": m, "weights": weights}


def make_client(scheduler: str | None, n_workers: int | None):
    """A Dask client: an existing scheduler by address, or a spawned LocalCluster."""
    import dask
    from dask.distributed import Client, LocalCluster

    if scheduler:
        try:
            return Client(scheduler, timeout="10s")
        except (OSError, TimeoutError) as err:
            raise ValueError(f"cannot reach the Dask scheduler at {scheduler}: {err}") from None
    env = {**dask.config.get("distributed.nanny.pre-spawn-environ"), **WORKER_ENV}
    with dask.config.set({"distributed.worker.multiprocessing-method": "spawn",
                          "distributed.nanny.pre-spawn-environ": env}):  # fmt: skip
        cluster = LocalCluster(
            n_workers=n_workers or os.cpu_count() or 1, threads_per_worker=1, processes=True,
            dashboard_address=None, silence_logs=40,
        )  # fmt: skip
    return Client(cluster)


def run_grid(
    spec: GridSpec,
    store: str,
    executor: str = "dask",
    scheduler=None,
    n_workers=None,
    force: bool = False,
    progress: bool = True,
    label_fn=None,
) -> dict:
    """Train every unfinished cell; return {"done": [...], "skipped": [...]}."""
    from tqdm.auto import tqdm

    client = make_client(scheduler, n_workers) if executor == "dask" else None  # fail fast
    try:
        return _run_cells(spec, store, client, executor, force, progress, label_fn, tqdm)
    finally:
        if client is not None:
            cluster = client.cluster
            client.close()
            if cluster is not None and scheduler is None:
                cluster.close()


def _run_cells(spec, store, client, executor, force, progress, label_fn, tqdm) -> dict:
    done = open_or_create(store, spec.settings(), force)
    cells = [(a, b, s, cell_name(a, b, s)) for a, b, s in spec.cells()]
    todo = [c for c in cells if c[3] not in done]
    skipped = [c[3] for c in cells if c[3] in done]
    cell_root = store + ".cells"
    os.makedirs(cell_root, exist_ok=True)
    bar = tqdm(total=len(cells), initial=len(skipped), desc="grid cells", disable=not progress)

    def finish(name, out):
        summary = dict(out["summary"])
        if label_fn is not None:
            summary["label"] = label_fn(
                summary["w_ei"], summary["w_ie"], summary["rate_e_Hz"], summary["rate_i_Hz"]
            )
        add_cell(store, name, summary, out["metrics"], out["weights"], summary["run_dir"])
        bar.update(1)

    if executor == "vmap":
        from sweeps.vmapped import train_cells_vmapped

        for seed in sorted({c[2] for c in todo}):
            group = [c for c in todo if c[2] == seed]
            results = train_cells_vmapped(spec, [c[:3] for c in group])
            for cell, out in zip(group, results, strict=True):
                finish(cell[3], out)
    elif client is None:
        for a, b, s, name in todo:
            finish(name, train_cell(spec, a, b, s, os.path.join(cell_root, name)))
    else:
        _run_on_dask(client, spec, todo, cell_root, finish)
    bar.close()
    return {"done": [c[3] for c in todo], "skipped": skipped}


def _run_on_dask(client, spec, todo, cell_root, finish):
    """Submit every cell; store each as soon as it finishes (in completion order)."""
    from dask.distributed import as_completed

    futures = {}
    for a, b, s, name in todo:
        cell_dir = os.path.abspath(os.path.join(cell_root, name))
        fut = client.submit(train_cell, spec, a, b, s, cell_dir, key=f"cell-{name}", pure=False)
        futures[fut] = name
    for fut in as_completed(futures):
        finish(futures[fut], fut.result())
