"""The (W_EI, W_IE) training grid on Dask distributed.

One PING-architecture training per (W_EI mean, W_IE mean, seed) cell. Cells run as tasks on
a Dask cluster: by default an in-process ``LocalCluster`` whose workers are *spawned*
processes (JAX and fork do not mix) with one XLA thread each; ``scheduler="tcp://..."`` uses
an existing cluster (for example one started by dask-jobqueue on SLURM). ``executor="serial"``
trains the cells one after another in this process; ``executor="vmap"`` trains the cells of
a seed together in one compiled program, in groups that fit in memory
(:mod:`ei_sim.sweeps.vmapped`).

Each cell trains into its own run directory beside the store (``<store>.cells/<name>``), so
an interrupted cell resumes from its last completed epoch; a finished cell is copied into the
store atomically and skipped by later runs of the same command. While Dask cells train, the
progress bar counts their completed epochs (read from the cells' run files).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import threading
import time
from dataclasses import dataclass

import numpy as np

from ei_sim.sweeps.quiet import drop_closed_connections, quiet_after_interrupt, quiet_workers
from ei_sim.sweeps.store import add_cell, cell_name, holding_store, open_or_create

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


def train_cell(
    spec: GridSpec, w_ei: float, w_ie: float, seed: int, cell_dir: str, on_epoch=None
) -> dict:
    """Train one cell (runs in a worker); returns what the store keeps of it.

    ``on_epoch`` is the trainer's per-epoch hook (:func:`ei_sim.training.spiking.train`), e.g. the
    video-snapshot writer the CLI passes for ``--video``; on Dask it must be picklable (a
    module-level function is).
    """
    drop_closed_connections()  # a worker stopped with its grid: no tracebacks of the shutdown
    from ei_sim.models import get_model
    from ei_sim.sim.compile_cache import enable
    from ei_sim.store.run import run_path
    from ei_sim.training.config import TrainConfig
    from ei_sim.training.spiking import discard_damaged_run, tier_model, train

    enable()  # workers share the persistent compilation cache (atomic entries)
    _no_semaphores()
    model = get_model(spec.model, w_ei_mean=w_ei, w_ie_mean=w_ie, **spec.model_changes)
    model = tier_model(model, spec.tier, **spec.size)
    cfg = TrainConfig.for_tier(spec.tier, **{**spec.train, "seed": seed})
    discard_damaged_run(cell_dir)  # a damaged cell run trains again, never resumes
    resume = os.path.exists(run_path(cell_dir))
    result = train(model, cfg, cell_dir, resume=resume, progress=False, on_epoch=on_epoch)
    m, b = result.metrics, result.best_epoch - 1
    summary = {
        "w_ei": w_ei, "w_ie": w_ie, "seed": seed, "best_accuracy": result.best_accuracy,
        "final_accuracy": result.final_accuracy, "best_epoch": result.best_epoch,
        "rate_e_Hz": float(m["test_rate_e_Hz"][b]), "rate_i_Hz": float(m["test_rate_i_Hz"][b]),
        "gamma_peak_Hz": float(m["gamma_peak_Hz"][b]), "run_dir": cell_dir,
    }  # fmt: skip
    weights = {k: np.asarray(v) for k, v in result.best_weights._asdict().items() if v is not None}
    return {"summary": summary, "metrics": m, "weights": weights}


def _no_semaphores() -> None:
    """Let tqdm's bars in this worker take a thread lock: its default multiprocessing lock
    is a named semaphore, which a worker stopped in the middle of a cell (Ctrl-C closes the
    cluster) leaves behind and Python's resource tracker then warns about."""
    from tqdm import tqdm

    if "_lock" not in vars(tqdm):
        tqdm.set_lock(threading.RLock())


def make_client(scheduler: str | None, n_workers: int | None):
    """A Dask client: an existing scheduler by address, or a spawned LocalCluster."""
    import dask

    from ei_sim import validate

    if n_workers is not None:
        validate.count("n_workers", n_workers, 1, hint="None: one worker per core")
    from dask.distributed import Client, LocalCluster

    if scheduler:
        try:
            return Client(scheduler, timeout="10s")
        except (OSError, TimeoutError) as err:
            raise ValueError(f"cannot reach the Dask scheduler at {scheduler}: {err}") from None
    env = {**dask.config.get("distributed.nanny.pre-spawn-environ"), **WORKER_ENV}
    settings = {"distributed.worker.multiprocessing-method": "spawn",
                "distributed.nanny.pre-spawn-environ": env}  # fmt: skip
    with dask.config.set(settings), _sigint_ignored():
        cluster = LocalCluster(
            n_workers=n_workers or os.cpu_count() or 1, threads_per_worker=1, processes=True,
            dashboard_address=None, silence_logs=40,
        )  # fmt: skip
    return Client(cluster)


@contextlib.contextmanager
def _sigint_ignored():
    """Processes started inside inherit SIGINT ignored: Ctrl-C in a terminal reaches the
    whole process group, and workers killed by it leave semaphores behind; only this process
    should take it and close the cluster in order. (Outside the main thread: unchanged.)"""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _remove_stub(store: str) -> None:
    """Remove a store this run created that holds no cell, and an empty cells folder."""
    import h5py

    try:
        with h5py.File(store, "r") as fh:
            empty = "cells" not in fh or len(fh["cells"]) == 0
    except OSError:
        return
    if empty:
        os.unlink(store)
    with contextlib.suppress(OSError):
        os.rmdir(store + ".cells")


@holding_store
@quiet_after_interrupt
def run_grid(
    spec: GridSpec,
    store: str,
    executor: str = "dask",
    scheduler=None,
    n_workers=None,
    force: bool = False,
    progress: bool = True,
    label_fn=None,
    on_epoch=None,
    memory_bytes: float | None = None,
) -> dict:
    """Train every unfinished cell; return {"done": [...], "skipped": [...]}.

    ``label_fn(w_ei, w_ie, rate_e_Hz, rate_i_Hz) -> str``, if given, labels each finished
    cell (stored as its ``label``); ``on_epoch`` is passed to every cell's training
    (:func:`train_cell`, or the vmapped groups). Both come from the caller, so that this
    package needs nothing of ``analysis``. ``memory_bytes``: what the vmapped groups may take
    together (None: :func:`ei_sim.sweeps.vmapped.memory_budget`).
    """
    from tqdm.auto import tqdm

    client = make_client(scheduler, n_workers) if executor == "dask" else None  # fail fast
    created = not os.path.exists(store)
    try:
        return _run_cells(spec, store, client, executor, force, progress, label_fn, on_epoch,
                          tqdm, memory_bytes)  # fmt: skip
    except BaseException:
        if created and os.path.exists(store):
            _remove_stub(store)
        raise
    finally:
        if client is not None:
            cluster = client.cluster
            client.close()
            if cluster is not None and scheduler is None:
                cluster.close()


def _run_cells(spec, store, client, executor, force, progress, label_fn, on_epoch, tqdm,
               memory_bytes=None):  # fmt: skip
    done = open_or_create(store, spec.settings(), force)
    cells = [(a, b, s, cell_name(a, b, s)) for a, b, s in spec.cells()]
    todo = [c for c in cells if c[3] not in done]
    skipped = [c[3] for c in cells if c[3] in done]
    cell_root = store + ".cells"
    os.makedirs(cell_root, exist_ok=True)
    epochs = _epochs_per_cell(spec)
    bar = tqdm(total=len(cells) * epochs, initial=len(skipped) * epochs, desc="grid epochs",
               disable=not progress, postfix=f"cells {len(skipped)}/{len(cells)}")  # fmt: skip
    finished = [len(skipped)]

    def finish(name, out):
        summary = dict(out["summary"])
        if label_fn is not None:
            summary["label"] = label_fn(
                summary["w_ei"], summary["w_ie"], summary["rate_e_Hz"], summary["rate_i_Hz"]
            )
        add_cell(store, name, summary, out["metrics"], out["weights"], summary["run_dir"])
        finished[0] += 1
        bar.set_postfix_str(f"cells {finished[0]}/{len(cells)}", refresh=False)
        running(0)

    def running(epochs_done: int) -> None:  # completed epochs of the cells still training
        bar.n = max(bar.n, finished[0] * epochs + epochs_done)  # a cell may finish meanwhile
        bar.refresh()

    if executor == "vmap":
        from ei_sim.sweeps.vmapped import run_vmapped

        run_vmapped(spec, todo, cell_root, finish, running, on_epoch, memory_bytes, tqdm.write)
    elif client is None:
        for a, b, s, name in todo:
            finish(name, train_cell(spec, a, b, s, os.path.join(cell_root, name), on_epoch))
    else:
        _run_on_dask(client, spec, todo, cell_root, finish, running, on_epoch)
    bar.close()
    return {"done": [c[3] for c in todo], "skipped": skipped}


POLL_S = 2.0


def _epochs_per_cell(spec: GridSpec) -> int:
    from ei_sim.training.config import TrainConfig

    return int(spec.train.get("epochs") or TrainConfig.TIERS[spec.tier]["epochs"])


def epochs_done(cell_dir: str) -> int:
    """Completed epochs of a cell's run (0 before its first epoch is stored)."""
    import h5py

    try:
        with h5py.File(os.path.join(cell_dir, "run.h5"), "r") as fh:
            return int(fh.attrs.get("epochs_done", 0))
    except (OSError, ValueError):
        return 0


def _run_on_dask(client, spec, todo, cell_root, finish, running=None, on_epoch=None):
    """Submit every cell; store each as soon as it finishes (in completion order), and
    report the completed epochs of those still training every :data:`POLL_S` seconds."""
    quiet_workers(client)  # no tracebacks of the shutdown from the workers either
    futures = {}
    for a, b, s, name in todo:
        cell_dir = os.path.abspath(os.path.join(cell_root, name))
        fut = client.submit(train_cell, spec, a, b, s, cell_dir, on_epoch, key=f"cell-{name}",
                            pure=False)  # fmt: skip
        futures[fut] = (name, cell_dir)
    pending = set(futures)
    while pending:
        done = [fut for fut in pending if fut.done()]
        for fut in done:
            pending.discard(fut)
            finish(futures[fut][0], fut.result())
        if running is not None and pending:
            running(sum(epochs_done(futures[fut][1]) for fut in pending))
        if pending and not done:
            time.sleep(POLL_S)
