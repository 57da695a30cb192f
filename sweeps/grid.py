"""The (W_EI, W_IE) training grid on Dask distributed.

One PING-architecture training per (W_EI mean, W_IE mean, seed) cell. Cells run as tasks on
a Dask cluster: by default an in-process ``LocalCluster`` whose workers are *spawned*
processes (JAX and fork do not mix) with one XLA thread each; ``scheduler="tcp://..."`` uses
an existing cluster; ``slurm=SlurmJobs(...)`` starts the workers as SLURM jobs through
dask-jobqueue (:mod:`ei_sim.sweeps.cluster`, which also bounds the wait for workers on any
deployment). ``executor="serial"``
trains the cells one after another in this process; ``executor="vmap"`` trains the cells of
a seed together in one compiled program, in groups that fit in memory
(:mod:`ei_sim.sweeps.vmapped`).

Each cell trains into its own run directory beside the store (``<store>.cells/<name>``), so
an interrupted cell resumes from its last completed epoch; a finished cell is copied into the
store atomically and skipped by later runs of the same command. While Dask cells train, the
progress bar counts their completed epochs (read from the cells' run files) and shows the
workers (and on SLURM the jobs pending and running). On Dask, at most as many cells are
submitted as the workers have threads; the others wait in this process, so that a worker
that joins late, or replaces one that died, takes the next cell. A cell whose worker dies is
rerun by Dask on another worker and resumes from its last completed epoch.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass

import numpy as np

from ei_sim import validate
from ei_sim.store.paths import cells_dir, run_path
from ei_sim.sweeps.cluster import (
    DEFAULT_WORKER_TIMEOUT_S,
    SlurmJobs,
    SlurmWatch,
    WorkerWatch,
    default_jobs,
    remove_if_empty,
    slurm_job_kwargs,
    start_slurm_cluster,
)
from ei_sim.sweeps.quiet import drop_closed_connections, quiet_after_interrupt, quiet_workers
from ei_sim.sweeps.store import (
    add_cell,
    cell_epochs,
    cell_name,
    holding_store,
    open_or_create,
    resumable_cells,
)

log = logging.getLogger(__name__)  # what a worker trains (shown in SLURM jobs' error files)

WORKER_ENV = {
    "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1",
    "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
}  # fmt: skip


@dataclass(frozen=True)
class GridSpec:
    """The cells of a grid and the network and recipe every cell trains with.

    ``model`` is the network at the grid's size (a frozen model, e.g. the PING classifier of
    the tier) and ``train`` the recipe; a cell replaces only the W_EI and W_IE means of the
    model and the recipe's seed (:meth:`cell_model`, :meth:`cell_recipe`). ``diagonal_ratio``
    set: W_IE = ratio * W_EI and the ``w_ie`` axis is unused. Cells are ordered seed by seed,
    so that the first seed's cells finish first.
    """

    model: object
    train: object  # ei_sim.training.config.TrainConfig
    w_ei: tuple
    w_ie: tuple = ()
    seeds: tuple = (42,)
    diagonal_ratio: float | None = None

    @classmethod
    def build(cls, w_ei, w_ie=(), *, preset: str = "ping", tier: str = "medium",
              setting: str = "canonical", seeds=(42,), diagonal_ratio=None,
              model: dict | None = None, train: dict | None = None) -> GridSpec:  # fmt: skip
        """A spec from names: the ``preset`` under ``setting`` sized by ``tier``, with the
        network ``model`` changes (preset or config fields, e.g. ``{"n_e": 16}``) and the
        recipe ``train`` changes (e.g. ``{"epochs": 2}``)."""
        from ei_sim.models import get_model
        from ei_sim.training.config import TrainConfig, tier_model

        net = tier_model(get_model(preset, setting=setting), tier)
        net = net.replace(**model) if model else net
        recipe = TrainConfig.for_tier(tier, **(train or {}))
        return cls(model=net, train=recipe, w_ei=tuple(w_ei), w_ie=tuple(w_ie),
                   seeds=tuple(seeds), diagonal_ratio=diagonal_ratio)  # fmt: skip

    def cells(self) -> list[tuple[float, float, int]]:
        if self.diagonal_ratio is not None:
            pairs = [(w, self.diagonal_ratio * w) for w in self.w_ei]
        else:
            pairs = [(a, b) for a in self.w_ei for b in self.w_ie]
        return [(a, b, s) for s in self.seeds for a, b in pairs]

    def cell_model(self, w_ei: float, w_ie: float):
        return self.model.replace(w_ei_mean=w_ei, w_ie_mean=w_ie)

    def cell_recipe(self, seed: int):
        return dataclasses.replace(self.train, seed=seed)

    @property
    def epochs(self) -> int:
        return int(self.train.resolved().epochs)

    def settings(self) -> dict:
        """What must match for a store to be resumed (flattened to attributes): the axes, the
        seeds, and the network and recipe every cell shares; not the epoch count (a finished
        store is continued to more epochs) nor what may change on a resume."""
        out = {
            "grid.settings_version": SETTINGS_VERSION,
            "grid.seeds": repr(tuple(self.seeds)), "grid.w_ei": repr(tuple(self.w_ei)),
            "grid.w_ie": repr(tuple(self.w_ie)),
            "grid.diagonal_ratio": "none" if self.diagonal_ratio is None else self.diagonal_ratio,
        }  # fmt: skip
        out.update(shared_settings(self.model, self.train))
        return out


SETTINGS_VERSION = 2  # 1: the flat grid.train/grid.model/grid.size dicts of earlier releases
PER_CELL = ("model.w_ei_mean", "model.w_ie_mean", "train.seed")


def shared_keys(attrs: dict) -> list[str]:
    """The run-file attributes (``model.*``, ``train.*``) that every cell of a grid shares:
    not the per-cell couplings and seed, nor what may change on a resume (the epochs)."""
    from ei_sim.store.run import RESUMABLE_CHANGES

    skip = set(PER_CELL) | set(RESUMABLE_CHANGES)
    return [k for k in attrs if k.startswith(("model.", "train.")) and k not in skip]


def shared_settings(model, train) -> dict:
    """The model's and recipe's attributes (as a run file stores them) that every cell of a
    grid shares, as ``grid.model.*`` / ``grid.train.*``."""
    from ei_sim.training.config import run_attrs

    attrs = run_attrs(model, train)
    return {f"grid.{k}": attrs[k] for k in shared_keys(attrs)}


def train_cell(
    spec: GridSpec, w_ei: float, w_ie: float, seed: int, cell_dir: str, on_epoch=None,
    after_epoch=None,
) -> dict:  # fmt: skip
    """Train one cell (runs in a worker), or continue it from its run directory; returns what
    the store keeps of it.

    ``on_epoch`` is the trainer's per-epoch hook (:func:`ei_sim.training.spiking.train`), e.g.
    the video-snapshot writer the CLI passes for ``--video``; on Dask it must be picklable (a
    module-level function is). ``after_epoch(epochs_done)``: the trainer's hook after each
    epoch's run file is written.
    """
    drop_closed_connections()  # a worker stopped with its grid: no tracebacks of the shutdown
    from ei_sim.sim.compile_cache import enable
    from ei_sim.sim.spectrum import verdict_word
    from ei_sim.store.paths import run_path
    from ei_sim.training.spiking import discard_damaged_run, train

    enable()  # workers share the persistent compilation cache (atomic entries)
    _no_semaphores()
    model, cfg = spec.cell_model(w_ei, w_ie), spec.cell_recipe(seed)
    discard_damaged_run(cell_dir)  # a damaged cell run trains again, never resumes
    resume = os.path.exists(run_path(cell_dir))
    name, host = os.path.basename(cell_dir), socket.gethostname()
    done = epochs_done(cell_dir)
    log.info("cell %s: %d of %d epochs done; %s on %s (pid %d)", name, done, cfg.epochs,
             "training" if done < cfg.epochs else "reading its finished run", host,
             os.getpid())  # fmt: skip
    result = train(model, cfg, cell_dir, resume=resume, progress=False, on_epoch=on_epoch,
                   after_epoch=after_epoch)  # fmt: skip
    log.info("cell %s: finished on %s", name, host)
    m, b = result.metrics, result.best_epoch - 1
    summary = {
        "w_ei": w_ei, "w_ie": w_ie, "seed": seed, "best_accuracy": result.best_accuracy,
        "final_accuracy": result.final_accuracy, "best_epoch": result.best_epoch,
        "rate_e_Hz": float(m["test_rate_e_Hz"][b]), "rate_i_Hz": float(m["test_rate_i_Hz"][b]),
        "gamma_peak_Hz": float(m["gamma_peak_Hz"][b]),
        "gamma_rhythmic": float(m["gamma_rhythmic"][b]),
        "gamma_verdict": verdict_word(m["gamma_rhythmic"][b], m["gamma_p_value"][b],
                                      m["ref_gamma_peak_Hz"][b]), "run_dir": cell_dir,
        "epochs": len(m["test_accuracy"]),
    }  # fmt: skip
    weights = {k: np.asarray(v) for k, v in result.best_weights._asdict().items() if v is not None}
    return {"summary": summary, "metrics": m, "weights": weights}


def train_cell_on_worker(spec, w_ei, w_ie, seed, cell_dir, on_epoch=None) -> dict:
    """:func:`train_cell` in a Dask worker, after checking that the worker sees the cells'
    folder (made by the client): the cells' run directories must be on a file system that
    the client and every worker share."""
    root = os.path.dirname(cell_dir)
    if not os.path.isdir(root):
        raise FileNotFoundError(
            f"{root} (where the grid's cells train) is not visible on the worker host "
            f"{socket.gethostname()}: the store's folder must be on a file system shared "
            "by this machine and the workers"
        )
    return train_cell(spec, w_ei, w_ie, seed, cell_dir, on_epoch)


class CellLost(RuntimeError):
    """A cell's workers died more often than the scheduler allows (its epochs are kept)."""


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
        os.rmdir(cells_dir(store))


def cells_to_train(spec: GridSpec, store: str, force: bool = False) -> list[tuple]:
    """The cells of ``spec`` that ``store`` does not hold yet, as (w_ei, w_ie, seed, name);
    reads only (ValueError for a store of other settings without ``force``)."""
    stored = resumable_cells(store, spec.settings(), force) or set()
    trained = cell_epochs(store, stored) if stored else {}
    done = {name for name in stored if trained[name] >= spec.epochs}  # fewer: continued
    return [(a, b, s, cell_name(a, b, s)) for a, b, s in spec.cells()
            if cell_name(a, b, s) not in done]  # fmt: skip


def slurm_plan(spec: GridSpec, store: str, slurm: SlurmJobs, n_cells: int) -> tuple[dict, int]:
    """The ``SLURMCluster`` keywords of ``slurm`` for this grid and how many jobs it asks
    for (``slurm.jobs``, else one per job's cores of the ``n_cells`` to train). The memory
    per job defaults from a cell's estimated peak (:func:`ei_sim.sweeps.vmapped.cell_bytes`);
    the job output goes to ``<store>.jobs``."""
    from ei_sim.sweeps.vmapped import cell_bytes, cell_setup

    models, cfg = cell_setup(spec, spec.cells()[:1])
    kwargs = slurm_job_kwargs(slurm, cell_bytes(models[0], cfg), store + ".jobs", WORKER_ENV)
    return kwargs, slurm.jobs or default_jobs(n_cells, kwargs["processes"])


def say(progress: bool, line: str) -> None:
    """A line on stderr about what the grid is doing (with progress shown)."""
    if progress:
        print(line, file=sys.stderr, flush=True)


def starting_line(n_cells: int, scheduler, n_workers, slurm) -> str:
    if slurm is not None:
        return f"submitting SLURM worker jobs for {n_cells} cells (dask-jobqueue)"
    if scheduler:
        return f"connecting to the Dask scheduler at {scheduler}"
    n = n_workers or os.cpu_count() or 1
    return (f"starting {n} Dask worker processes on this machine for {n_cells} cells (each "
            "imports JAX: a few seconds)")


def start_workers(spec, store, n_cells, scheduler=None, n_workers=None, slurm=None,
                  worker_timeout_s=DEFAULT_WORKER_TIMEOUT_S):  # fmt: skip
    """A Dask client for the grid and the watch of its workers: a LocalCluster, the
    scheduler at ``scheduler``, or a SLURMCluster of :func:`slurm_plan`."""
    if slurm is None:
        client = make_client(scheduler, n_workers)
        return client, WorkerWatch(client, worker_timeout_s)
    if scheduler or n_workers is not None:
        raise ValueError("--cluster slurm starts its own scheduler and workers; drop "
                         "--scheduler and --workers (use --jobs and --cores)")  # fmt: skip
    kwargs, n_jobs = slurm_plan(spec, store, slurm, n_cells)
    client, cluster = start_slurm_cluster(kwargs, n_jobs)
    watch = SlurmWatch(client, cluster, n_jobs, kwargs["processes"], worker_timeout_s,
                       kwargs["log_directory"])  # fmt: skip
    return client, watch


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
    slurm: SlurmJobs | None = None,
    worker_timeout_s: float = DEFAULT_WORKER_TIMEOUT_S,
    after_epoch=None,
    skip=(),
    on_stored=None,
) -> dict:
    """Train every unfinished cell; return {"done": [...], "skipped": [...]}.

    ``skip``: names of cells not to train here (the caller holds their numbers elsewhere, as
    a reproduction does with its cell records); they count as skipped. ``on_stored(name,
    summary, metrics)``, if given, runs in this process after each cell is stored.

    ``after_epoch(n)``, if given, runs in this process after each epoch of the cells trained
    here (the serial and vmap executors; not on Dask's workers; n: the cell's epochs done,
    serially, or those of its vmapped group): the CLI checks there for a Ctrl-C that a
    library swallowed (:mod:`ei_sim.cli.interrupts`).

    ``label_fn(w_ei, w_ie, rate_e_Hz, rate_i_Hz) -> str``, if given, labels each finished
    cell (stored as its ``label``); ``on_epoch`` is passed to every cell's training
    (:func:`train_cell`, or the vmapped groups). Both come from the caller, so that this
    package needs nothing of ``analysis``. ``memory_bytes``: what the vmapped groups may take
    together (None: :func:`ei_sim.sweeps.vmapped.memory_budget`). ``slurm``: start the Dask
    workers as SLURM jobs (:class:`ei_sim.sweeps.cluster.SlurmJobs`). ``worker_timeout_s``:
    on Dask, how long the grid waits when the cluster has no worker before it stops with
    :class:`ei_sim.sweeps.cluster.NoWorkers` (the store then holds what had finished).
    """
    from tqdm.auto import tqdm

    validate.positive("--worker-timeout", worker_timeout_s)
    if slurm is not None and executor != "dask":
        raise ValueError(f"--cluster slurm runs the dask executor, not {executor}")
    skip = frozenset(skip)
    todo = cells_to_train(spec, store, force) if executor == "dask" else None
    todo = None if todo is None else [c for c in todo if c[3] not in skip]
    client = watch = None
    if todo:  # fail fast, before the store is touched; no workers when nothing is left
        t0 = time.perf_counter()
        say(progress, starting_line(len(todo), scheduler, n_workers, slurm))
        client, watch = start_workers(spec, store, len(todo), scheduler, n_workers, slurm,
                                      worker_timeout_s)  # fmt: skip
        say(progress, f"Dask client ready after {time.perf_counter() - t0:.1f} s; a cell's "
            "first epoch includes compiling its training step (cached on disk for later "
            "runs)")  # fmt: skip
    elif progress and executor != "dask":
        say(progress, f"training {len(spec.cells())} cells in this process ({executor}); the "
            "first epoch includes compiling the training step (cached on disk)")  # fmt: skip
    created, had_cells = not os.path.exists(store), os.path.isdir(cells_dir(store))
    try:
        return _run_cells(spec, store, client, executor, force, progress, label_fn, on_epoch,
                          tqdm, memory_bytes, watch, after_epoch, skip, on_stored)  # fmt: skip
    except BaseException:
        if created and os.path.exists(store):
            _remove_stub(store)
        elif not had_cells:
            remove_if_empty(cells_dir(store))
        raise
    finally:
        if client is not None:
            cluster = client.cluster
            client.close()
            if cluster is not None and scheduler is None:
                cluster.close()
        if slurm is not None:
            remove_if_empty(getattr(watch, "log_dir", None))


def _run_cells(spec, store, client, executor, force, progress, label_fn, on_epoch, tqdm,
               memory_bytes=None, watch=None, after_epoch=None, skip=frozenset(),
               on_stored=None):  # fmt: skip
    stored = open_or_create(store, spec.settings(), force)
    trained = cell_epochs(store, stored)
    done = {name for name in stored if trained[name] >= spec.epochs}  # fewer: continued
    done |= skip
    cells = [(a, b, s, cell_name(a, b, s)) for a, b, s in spec.cells()]
    todo = [c for c in cells if c[3] not in done]
    skipped = [c[3] for c in cells if c[3] in done]
    cell_root = cells_dir(store)
    os.makedirs(cell_root, exist_ok=True)
    epochs = spec.epochs
    bar = tqdm(total=len(cells) * epochs, initial=len(skipped) * epochs, desc="grid epochs",
               disable=not progress, postfix=f"cells {len(skipped)}/{len(cells)}")  # fmt: skip
    try:
        return _train_cells(spec, store, client, executor, label_fn, on_epoch, tqdm, memory_bytes,
                            watch, bar, cells, todo, skipped, cell_root, epochs,
                            after_epoch, on_stored)  # fmt: skip
    finally:
        bar.close()


def _train_cells(spec, store, client, executor, label_fn, on_epoch, tqdm, memory_bytes, watch,
                 bar, cells, todo, skipped, cell_root, epochs, after_epoch=None,
                 on_stored=None):  # fmt: skip
    finished = [len(skipped)]
    workers = [""]  # the cluster's state, as the last poll saw it

    def postfix() -> None:
        more = f"; {workers[0]}" if workers[0] else ""
        bar.set_postfix_str(f"cells {finished[0]}/{len(cells)}{more}", refresh=False)

    def status(text: str) -> None:
        workers[0] = text
        postfix()

    def finish(name, out):
        summary = dict(out["summary"])
        if label_fn is not None:
            summary["label"] = label_fn(
                summary["w_ei"], summary["w_ie"], summary["rate_e_Hz"], summary["rate_i_Hz"]
            )
        add_cell(store, name, summary, out["metrics"], out["weights"], summary["run_dir"])
        if on_stored is not None:
            on_stored(name, summary, out["metrics"])
        finished[0] += 1
        postfix()
        running(0)

    def running(epochs_done: int) -> None:  # completed epochs of the cells still training
        bar.n = max(bar.n, finished[0] * epochs + epochs_done)  # a cell may finish meanwhile
        bar.refresh()

    if executor == "vmap":
        from ei_sim.sweeps.vmapped import run_vmapped

        def running_here(epochs_done: int) -> None:
            running(epochs_done)
            if after_epoch is not None:
                after_epoch(epochs_done)

        run_vmapped(spec, todo, cell_root, finish, running_here, on_epoch, memory_bytes,
                    tqdm.write)  # fmt: skip
    elif client is None:
        for a, b, s, name in todo:
            finish(name, train_cell(spec, a, b, s, os.path.join(cell_root, name), on_epoch,
                                    after_epoch))  # fmt: skip
    else:
        watch = watch or WorkerWatch(client)
        _run_on_dask(client, spec, todo, cell_root, finish, running, on_epoch, watch, status,
                     tqdm.write)  # fmt: skip
    return {"done": [c[3] for c in todo], "skipped": skipped}


POLL_S = 2.0


def epochs_done(cell_dir: str) -> int:
    """Completed epochs of a cell's run (0 before its first epoch is stored)."""
    import h5py

    try:
        with h5py.File(run_path(cell_dir), "r") as fh:
            return int(fh.attrs.get("epochs_done", 0))
    except (OSError, ValueError):
        return 0


def _run_on_dask(client, spec, todo, cell_root, finish, running=None, on_epoch=None,
                 watch=None, status=None, log=print):  # fmt: skip
    """Train the cells ``todo`` on the cluster of ``client``, at most as many at a time as its
    workers have threads; store each as soon as it finishes (in completion order). After
    each finished cell, and at least every :data:`POLL_S` seconds: ask ``watch`` about the
    workers (it raises :class:`ei_sim.sweeps.cluster.NoWorkers` after its timeout without
    any) and pass its text to ``status``, report the completed epochs of the unfinished
    cells to ``running``, and ``log`` the watch's notes."""
    quiet_workers(client)  # no tracebacks of the shutdown from the workers either
    watch = watch or WorkerWatch(client)
    waiting = [(a, b, s, name, os.path.abspath(os.path.join(cell_root, name)))
               for a, b, s, name in todo]  # fmt: skip
    futures = {}
    while waiting or futures:
        done = [fut for fut in futures if fut.done()]
        for fut in done:
            name, cell_dir = futures.pop(fut)
            out = _cell_result(fut, name, cell_dir)
            fut.release()  # nothing of a stored cell is kept (or recomputed) on the cluster
            finish(name, out)
        if not (waiting or futures):
            break
        text = watch.poll(len(waiting) + len(futures), len(waiting))
        for line in watch.notes:
            log(line)
        watch.notes.clear()
        if status is not None:
            status(text)
        while waiting and len(futures) < watch.threads:
            a, b, s, name, cell_dir = waiting.pop(0)
            fut = client.submit(train_cell_on_worker, spec, a, b, s, cell_dir, on_epoch,
                                key=f"cell-{name}", pure=False)  # fmt: skip
            futures[fut] = (name, cell_dir)
        if running is not None:
            running(sum(epochs_done(d) for *_, d in waiting) +
                    sum(epochs_done(d) for _, d in futures.values()))  # fmt: skip
        if not done:
            _wait_for_one(futures)
    final = getattr(watch, "final_notes", None)  # a SLURM job that left as the grid ended
    if final is not None:
        final()
    for line in watch.notes:
        log(line)
    watch.notes.clear()


def _wait_for_one(futures) -> None:
    """Return when one of ``futures`` is done, or after :data:`POLL_S` seconds."""
    from distributed import wait

    if not futures:
        time.sleep(POLL_S)
        return
    with contextlib.suppress(TimeoutError):
        wait(list(futures), timeout=POLL_S, return_when="FIRST_COMPLETED")


def _cell_result(fut, name: str, cell_dir: str) -> dict:
    """A finished cell's result; :class:`CellLost` when its workers kept dying."""
    from distributed.scheduler import KilledWorker

    try:
        return fut.result()
    except KilledWorker as err:
        raise CellLost(f"cell {name}: its worker died on every try ({err}); its completed "
                       f"epochs are kept in {cell_dir}: run the same command to resume "
                       "it") from None  # fmt: skip
