"""The one training loop of every model family: epochs of steps, evaluation, the best epoch,
a checkpoint after every epoch, non-finite steps and weights, progress.

:func:`fit` continues a :class:`Progress` (a fresh one, or one read back from a run file)
up to ``epochs``. Per epoch ``e``::

    for (b, batch) in task.batches(e):
        params, opt_state, finite, stats = task.step(params, opt_state, batch)
    train_<name>  = mean of stats.<name> over the finite steps   (name in task.train_stats)
    skipped_steps = number of the others (the optimiser skipped them: optax.apply_if_finite)
    row           = train_* | task.evaluate(weights) | epoch_wall_s
    best          = weights  if is_new_best(rows' task.score)     (ties: the first epoch)
    failure       = the trained blocks that are no longer finite, if any
    task.save(progress, e)                                        (atomic, every epoch)

then one progress line, and :class:`TrainingFailed` after a failure has been saved. Every
random draw of a step comes from ``(seed, epoch, batch)`` (the task's batches), never from
a global state, so a run resumed from its last completed epoch equals an uninterrupted one.

**Stacking axis.** With ``task.n_cells = C`` the parameters and optimiser state carry a
leading axis of C cells (networks of one shape) trained together by one vmapped step on the
same batches; the statistics of a step are then (C,) arrays, and evaluation, the best epoch,
failures and saving are per cell (``progress.metrics[c]``, ``progress.best[c]``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import jax
import numpy as np

from ei_sim.training.errors import TrainingFailed


@dataclass(frozen=True)
class Task:
    """What a model family gives the loop.

    ``step(params, opt_state, batch) -> (params, opt_state, finite, stats)``: one optimiser
    step (vmapped over cells when stacked); ``stats`` has the attributes ``train_stats``
    (and ``loss``). ``batches(epoch)``: that epoch's batches. ``weights(params, cell)``: one
    cell's network as evaluated and kept as best. ``evaluate(weights, cell) -> (row, probe)``:
    the epoch's metrics of a cell and anything ``save`` needs beside them (or None).
    ``save(progress, epoch)``: write the run atomically. ``on_step(progress, finite, stats)``:
    after every step (per-step series). ``describe(epoch, row)``: the progress line.
    ``first_step_error``: ValueError text when the loss of the very first step is not finite.
    ``failure_hint``: why trained weights that became non-finite did so and what to change
    (None: not checked); ``labels[c]``: cell c's name in that message (its run directory).
    """

    step: Callable
    batches: Callable[[int], Sequence]
    evaluate: Callable
    weights: Callable = lambda params, cell: params
    train_stats: tuple = ("loss",)
    score: str = "test_accuracy"
    n_cells: int | None = None
    save: Callable | None = None
    on_step: Callable | None = None
    describe: Callable | None = None
    first_step_error: str | None = None
    failure_hint: str | None = None
    labels: tuple = ()


@dataclass
class Progress:
    """A training after its last completed epoch; :func:`fit` advances it in place.

    ``metrics[c]``: metric -> one value per completed epoch of cell c (one cell unless
    stacked); ``best[c]``: cell c's weights of its best epoch so far; ``current[c]`` and
    ``probes[c]``: its weights and evaluation probe of the last epoch; ``failures[c]``: why
    it cannot go on, or None.
    """

    params: Any
    opt_state: Any
    metrics: list
    best: list
    epochs_done: int = 0
    steps_done: int = 0
    current: list = field(default_factory=list)
    probes: list = field(default_factory=list)
    failures: list = field(default_factory=list)

    @classmethod
    def fresh(cls, params, opt_state, metric_names, n_cells: int | None = None) -> Progress:
        cells = 1 if n_cells is None else n_cells
        return cls(params, opt_state, [{m: [] for m in metric_names} for _ in range(cells)],
                   [None] * cells)  # fmt: skip

    @property
    def cells(self) -> int:
        return len(self.metrics)


def is_new_best(scores) -> bool:
    """Whether the last epoch is the best one. Ties go to the **first** epoch that reached the
    best score, so ``best_epoch = argmax + 1`` and the best weights always agree."""
    return len(scores) == 1 or scores[-1] > max(scores[:-1])


def cell_of(tree, cell: int):
    """Cell ``cell`` of a tree stacked along a leading axis."""
    return jax.tree.map(lambda x: x[cell], tree)


def non_finite_blocks(tree) -> list[str]:
    """Names of the blocks (dict keys or NamedTuple fields) with a non-finite entry."""
    blocks = tree._asdict() if hasattr(tree, "_asdict") else dict(tree)
    return sorted(name for name, value in blocks.items()
                  if value is not None and not bool(jax.numpy.isfinite(value).all()))  # fmt: skip


def fit(task: Task, progress: Progress, epochs: int, show: bool = False, log=None) -> Progress:
    """Train from ``progress.epochs_done`` to ``epochs`` (see the module docstring); ``show``:
    a progress bar per epoch; ``log(line)``: called with one line per epoch."""
    for epoch in range(progress.epochs_done, epochs):
        t0 = time.perf_counter()
        stats = run_epoch(task, progress, epoch, epochs, show)
        rows, progress.current, progress.probes, progress.failures = [], [], [], []
        for c in range(progress.cells):
            weights = task.weights(progress.params, c)
            row, probe = task.evaluate(weights, c)
            rows.append({**{k: _cell_value(v, c, task.n_cells) for k, v in stats.items()},
                         **row})  # fmt: skip
            progress.current.append(weights)
            progress.probes.append(probe)
        wall_s = time.perf_counter() - t0
        for c, row in enumerate(rows):
            row["epoch_wall_s"] = wall_s
            metrics = progress.metrics[c]
            for name, value in row.items():
                metrics.setdefault(name, []).append(value)
            if is_new_best(metrics[task.score]):
                progress.best[c] = progress.current[c]
            progress.failures.append(_failure(task, progress.params, c, epoch))
        progress.epochs_done = epoch + 1
        if task.save is not None:
            task.save(progress, epoch)
        if log is not None and task.describe is not None:
            for row in rows:
                log(task.describe(epoch, row))
        failed = [(c, why) for c, why in enumerate(progress.failures) if why]
        if failed:
            raise TrainingFailed("; ".join(
                f"{task.labels[c]}: {why}; the run is marked failed" if task.labels else why
                for c, why in failed))  # fmt: skip
    return progress


def run_epoch(task: Task, progress: Progress, epoch: int, epochs: int, show: bool) -> dict:
    """One epoch of ``task.step`` over the epoch's batches; advances ``progress.params`` and
    ``opt_state`` and returns the epoch's mean statistics over the steps that were not
    skipped (``train_<name>``) and their count (``skipped_steps``), (C,) arrays when
    stacked."""
    from tqdm.auto import tqdm

    batches = task.batches(epoch)
    sums = dict.fromkeys(task.train_stats, 0.0)
    skipped = 0
    bar = tqdm(batches, desc=f"epoch {epoch + 1}/{epochs}", disable=not show, leave=False)
    for b, batch in enumerate(bar):
        progress.params, progress.opt_state, finite, stats = task.step(
            progress.params, progress.opt_state, batch
        )
        progress.steps_done += 1
        ok = np.asarray(finite).astype(np.float64)
        if (epoch == 0 and b == 0 and task.first_step_error
                and not np.all(np.isfinite(np.asarray(stats.loss)))):  # fmt: skip
            raise ValueError(task.first_step_error)
        skipped = skipped + (1.0 - ok)
        for name in task.train_stats:
            sums[name] = sums[name] + np.where(ok > 0, np.asarray(getattr(stats, name)), 0.0)
        if task.on_step is not None:
            task.on_step(progress, finite, stats)
        if show:
            bar.set_postfix({name: f"{float(np.mean(getattr(stats, name))):.3f}"
                             for name in task.train_stats[:1] + ("accuracy",)
                             if hasattr(stats, name)})  # fmt: skip
    n_ok = np.maximum(1.0, len(batches) - skipped)
    out = {f"train_{k}": v / n_ok for k, v in sums.items()}
    out["skipped_steps"] = skipped
    return out


def _cell_value(value, cell: int, n_cells: int | None):
    return value if n_cells is None else float(np.asarray(value)[cell])


def _failure(task: Task, params, cell: int, epoch: int) -> str | None:
    if task.failure_hint is None:
        return None
    bad = non_finite_blocks(params if task.n_cells is None else cell_of(params, cell))
    if not bad:
        return None
    return f"{', '.join(bad)} became non-finite in epoch {epoch + 1}: {task.failure_hint}"
