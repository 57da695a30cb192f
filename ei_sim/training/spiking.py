"""Surrogate-gradient training of the COBA/PING classifier, on the shared loop.

``train(model, TrainConfig(...), run_dir)`` runs the recipe: seeded sample-and-split of the
MNIST pool, shuffled batches, Poisson-encoded inputs (fresh spikes every batch; one fixed
encoder seed for every evaluation), BPTT with chunked checkpointing, Adam with global-norm
clipping and Dale's law (:func:`ei_sim.training.optim.dale_adam`), evaluation on the test split
after
every epoch, the best epoch's weights kept. After every epoch the run file is rewritten
atomically, so a run can be killed at any moment and resumed (``resume=True``) to the same
result as an uninterrupted run. The epochs, the bookkeeping and the checkpoints are those
of the one training loop (:func:`ei_sim.training.fit`); this module gives it the classifier's
step, batches, evaluation and run file.

``train_stacked(models, cfg, run_dirs)`` trains several networks of one shape together
(grid cells differing in their weights): one vmapped step over a leading cell axis, the
same batches and draws for all, one run file per network exactly as :func:`train` writes
it, so each resumes from its last completed epoch (and either trainer can continue it).

Randomness: every draw comes from ``(seed, epoch, batch)`` through explicit keys, never
from a global state, which is what makes resumption exact.
"""

from __future__ import annotations

import contextlib
import os
import sys
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ei_sim.data.encoding import pad_events, poisson_events, round_up
from ei_sim.data.mnist import Split, load_pool, sample_and_split
from ei_sim.sim.engine import Weights
from ei_sim.sim.parallel import batch_mesh, replicate
from ei_sim.store.atomic import remove_stale_temporaries
from ei_sim.store.attrs import provenance
from ei_sim.store.paths import run_path
from ei_sim.store.run import (
    METRICS,
    VERDICT_METRICS,
    check_run_file,
    config_differences,
    holding_run,
    load_run,
    open_run,
    save_run,
)
from ei_sim.training.config import SPIKING_BLOCKS as BLOCKS
from ei_sim.training.config import TrainConfig, run_attrs, tier_model
from ei_sim.training.evaluate import eval_trials, evaluate, reference_trial
from ei_sim.training.loop import Progress, Task, TrainingFailed, cell_of, fit, is_new_best
from ei_sim.training.objective import assemble, make_train_step
from ei_sim.training.optim import adam_with_dale, with_skip_counters

BUDGETS = ("off", "5", "2", "1", "0.5", "0.2")
TIERS = TrainConfig.TIERS
TRAIN_STATS = ("loss", "cross_entropy", "budget_penalty", "accuracy")

__all__ = [
    "BLOCKS", "BUDGETS", "TIERS", "TrainConfig", "TrainResult", "TrainingFailed",
    "epoch_batches", "is_new_best", "parse_budget", "run_attrs", "split_weights",
    "tier_model", "train", "train_stacked",
]  # fmt: skip


def parse_budget(text) -> float | None:
    """``"off"`` -> None, else one of the canonical budgets as a float."""
    text = str(text)
    if text not in BUDGETS:
        raise ValueError(f"budget must be one of {', '.join(BUDGETS)}, got {text!r}")
    return None if text == "off" else float(text)


def epoch_batches(split: Split, cfg: TrainConfig, config, epoch: int):
    """This epoch's shuffled full batches (the remainder is dropped), encoded with one shared
    event width so that one compiled step serves them all. Yields (events, labels, index)."""
    rng = np.random.default_rng((cfg.seed, epoch))
    order = rng.permutation(len(split.y_train))
    n_batches = max(1, len(order) // cfg.batch_size)
    chunks = [order[b * cfg.batch_size : (b + 1) * cfg.batch_size] for b in range(n_batches)]
    events = [
        poisson_events(split.x_train[idx], config.n_steps, config.p_spike_per_unit_intensity,
                       (cfg.seed, epoch, b))
        for b, idx in enumerate(chunks)
    ]  # fmt: skip
    width = round_up(max(ev.sample.shape[1] for ev in events))
    return [
        (pad_events(ev, width, len(idx)), split.y_train[idx], b)
        for b, (ev, idx) in enumerate(zip(events, chunks, strict=True))
    ]


def failure_hint(cfg: TrainConfig) -> str:
    """Why the trained weights of a run became non-finite, and what to change."""
    return (f"the learning rate {cfg.learning_rate:g} is likely too large for these weights, "
            "or the initial weights (--w-*) drive the network to overflow; lower --lr")  # fmt: skip


FIRST_STEP_ERROR = (
    "loss is not finite at step 0: the initial weights are non-finite or too large, or dt_ms "
    "is too large for the conductances; check --w-* and --dt-ms"
)


class TrainResult(NamedTuple):
    run_dir: str
    best_epoch: int
    best_accuracy: float
    final_accuracy: float
    metrics: dict
    best_weights: Weights


def split_weights(weights: Weights, trained):
    full = weights._asdict()
    trainable = {k: v for k, v in full.items() if k in trained and v is not None}
    frozen = {k: v for k, v in full.items() if k not in trainable}
    return trainable, frozen


def train(
    model,
    cfg: TrainConfig,
    run_dir: str,
    resume: bool = False,
    progress: bool = True,
    on_epoch=None,
    split: Split | None = None,
    after_epoch=None,
) -> TrainResult:
    """Train ``model`` with recipe ``cfg`` into ``run_dir`` (created if missing).

    ``on_epoch(h5file, epoch, weights, metrics, reference_trial, (image, label))``, if given,
    is called inside each epoch's atomic write (used to store video snapshots); it runs after
    the epoch's numbers are computed, and an exception in it is reported, not fatal.
    ``after_epoch(epochs_done)``, if given, runs once the epoch's run file is written (an
    exception in it ends the training, as it would there).
    Returns the best epoch's result. A run directory this call created is removed again
    when it fails or is interrupted before its first epoch is stored. The run is locked
    while it trains (:func:`ei_sim.store.run.holding_run`): another process training the
    same run is refused at once (:class:`ei_sim.store.lock.Busy`). ``resume`` refuses a run
    file that fails its checksum or lacks its optimiser state, in one line.
    """
    with _holding([run_dir]):
        return _train([model], cfg, [run_dir], resume, progress, on_epoch, split, False,
                      after_epoch)[0]  # fmt: skip


def train_stacked(
    models, cfg: TrainConfig, run_dirs, resume: bool = True, on_epoch=None,
    split: Split | None = None, progress: bool = False, after_epoch=None,
) -> list[TrainResult]:  # fmt: skip
    """Train the networks ``models`` (one shape and config, different weights) together with
    one recipe ``cfg``, each into its run directory (as :func:`train` writes it).

    ``resume``: networks whose run file exists continue from it; all must then have completed
    the same number of epochs (group them by :func:`epochs_done`). Returns one result per
    network. A failed network stops the group (:class:`TrainingFailed`), as it stops a serial
    grid; the others keep their completed epochs. ``on_epoch`` is :func:`train`'s hook, called
    for every network; ``after_epoch(epochs_done)`` runs once all run files of an epoch are
    written.
    """
    if len({m.config for m in models}) != 1:
        raise ValueError("stacked networks must share one network config (sizes, trial, dt)")
    if len(run_dirs) != len(models):
        raise ValueError(f"{len(models)} networks need {len(models)} run directories")
    with _holding(run_dirs):
        return _train(list(models), cfg, list(run_dirs), resume, progress, on_epoch, split,
                      True, after_epoch)  # fmt: skip


def discard_damaged_run(run_dir: str, log=None) -> str | None:
    """Remove the run file of ``run_dir`` when it is damaged or incomplete (unreadable, fails
    its checksum, or lacks what resuming needs), so that the run trains again from its start;
    return why (None: no run file, or a sound one). For the runs a grid or a reproduction
    keeps as its own working copies; ``log(line)`` (default: stderr) is told. A user's run
    given to ``train(resume=True)`` is refused instead."""
    path = run_path(run_dir)
    if not os.path.exists(path):
        return None
    try:
        with open_run(run_dir) as fh:
            check_run_file(fh, path, optimizer=True)
        return None
    except ValueError as err:
        reason = str(err)
    with holding_run(run_dir):
        os.unlink(path)
    line = f"note: {reason}; training it again from the start"
    (log or (lambda text: print(text, file=sys.stderr)))(line)
    return reason


def epochs_done(run_dir: str) -> int:
    """Completed epochs of the run in ``run_dir`` (0 before its first epoch is stored)."""
    import h5py

    try:
        with h5py.File(run_path(run_dir), "r") as fh:
            return int(fh.attrs.get("epochs_done", 0))
    except (OSError, ValueError):
        return 0


@contextlib.contextmanager
def _holding(run_dirs):
    """Hold every run directory (made when missing, locked: :func:`holding_run`; a run that
    another process writes is refused at once) and remove the stale temporaries of killed
    writes in it; on exit, folders this call made that stayed empty (a training that failed
    or was interrupted before its first epoch was stored) are removed again."""
    with contextlib.ExitStack() as stack:
        for d in run_dirs:
            stack.enter_context(holding_run(d))
            remove_stale_temporaries(d)  # of a write that was killed: never resumed from
        yield


def _stack(trees):
    return jax.tree.map(lambda *xs: jnp.stack(xs), *trees)


def _train(models, cfg, run_dirs, resume, progress, on_epoch, split, stacked, after_epoch=None):
    split = split or sample_and_split(
        load_pool(cfg.data_source), cfg.n_samples, cfg.test_fraction, cfg.data_seed
    )
    key = jax.random.PRNGKey(cfg.seed)
    optimizer = adam_with_dale(cfg.learning_rate, cfg.clip_norm)
    starts, frozen = [], []
    for model, run_dir in zip(models, run_dirs, strict=True):
        trainable, fixed = split_weights(model.init_weights(jax.random.fold_in(key, 0)),
                                         cfg.trained)  # fmt: skip
        fresh = Progress.fresh(trainable, optimizer.init(trainable), METRICS)
        exists = os.path.exists(run_path(run_dir))
        if exists and not resume:
            raise ValueError(
                f"{run_dir} already holds a run; pass resume=True to continue it, or train into "
                "another run directory"
            )
        attrs = run_attrs(model, cfg)
        starts.append(_resume(run_dir, attrs, cfg, fresh) if exists else fresh)
        frozen.append(fixed)
    done = {p.epochs_done for p in starts}
    if len(done) > 1:
        raise ValueError(f"stacked runs must resume from one epoch, found {sorted(done)}")
    if stacked:
        mesh, devices = None, 1
        start = Progress(_stack([p.params for p in starts]), _stack([p.opt_state for p in starts]),
                         [p.metrics[0] for p in starts], [p.best[0] for p in starts],
                         done.pop())  # fmt: skip
        frozen = _stack(frozen)
    else:
        mesh = batch_mesh(cfg.batch_size, cfg.devices)
        devices = 1 if mesh is None else mesh.size
        start, frozen = starts[0], frozen[0]
        start.params, start.opt_state, frozen = replicate((start.params, start.opt_state, frozen),
                                                          mesh)  # fmt: skip
    # stacked cells: the engine's path, whose kernels vmap batches over the cells (the fused
    # path's native calls would run once per cell; measured slower: benchmarks/bench_grid.py)
    fused = False if stacked else None
    step = make_train_step(optimizer, models[0].config, cfg.budget, cfg.budget_strength,
                           cfg.checkpoint_every, mesh, fused)  # fmt: skip
    if stacked:
        step = jax.jit(jax.vmap(step, in_axes=(0, 0, 0, None, None, None)))
    attrs = [{**run_attrs(m, cfg), "devices_used": devices} for m in models]
    task = _task(step, models, cfg, split, frozen, key, run_dirs, attrs, on_epoch, stacked,
                 devices, after_epoch)  # fmt: skip
    fit(task, start, cfg.epochs, show=progress, log=_print if progress else None)
    return [_result(d, m, b) for d, m, b in zip(run_dirs, start.metrics, start.best, strict=True)]


def _print(line: str) -> None:
    print(line, flush=True)


def _task(step, models, cfg, split, frozen, key, run_dirs, attrs, on_epoch, stacked, devices,
          after_epoch=None):  # fmt: skip
    """The classifier's part of the loop: its step, batches, evaluation and run files."""
    model = models[0]

    def step_fn(trainable, opt_state, batch):
        events, labels, b, epoch = batch
        batch_key = jax.random.fold_in(jax.random.fold_in(key, epoch + 1), b)
        state0 = model.init_state(batch_key, len(labels))
        return step(trainable, opt_state, frozen, state0, events, labels)

    def batches(epoch):
        return [(*batch, epoch) for batch in epoch_batches(split, cfg, model.config, epoch)]

    def weights(trainable, c):
        if stacked:
            return assemble(cell_of(trainable, c), cell_of(frozen, c))
        return jax.device_put(assemble(trainable, frozen), jax.devices()[0])

    eval_sets = {}  # each cell's test trials, drawn once: the same every epoch

    def evaluate_cell(current, c):
        if c not in eval_sets:
            eval_sets[c] = list(eval_trials(models[c], split.x_test, split.y_test, cfg.seed))
        ev = evaluate(current, models[c], split.x_test, split.y_test, cfg.seed, devices=devices,
                      trials=eval_sets[c])  # fmt: skip
        ref = reference_trial(current, models[c], split.x_test[0], cfg.seed, cfg.ref_drop_ms)
        row = {"test_accuracy": ev.accuracy, "test_rate_e_Hz": ev.rate_e_Hz,
               "test_rate_i_Hz": ev.rate_i_Hz, "gamma_peak_Hz": ev.gamma_peak_Hz,
               "gamma_significance": ev.gamma_significance,
               "ref_rate_e_Hz": ref.rate_e_Hz, "ref_rate_i_Hz": ref.rate_i_Hz,
               **verdict_metrics(ref.verdict)}  # fmt: skip
        return row, ref

    def save(progress, epoch):
        for c, run_dir in enumerate(run_dirs):
            opt_state = cell_of(progress.opt_state, c) if stacked else progress.opt_state
            _save(run_dir, attrs[c], progress.metrics[c], progress.best[c], progress.current[c],
                  opt_state, cfg, on_epoch, epoch, progress.probes[c], split,
                  progress.failures[c])  # fmt: skip
        if after_epoch is not None:
            after_epoch(epoch + 1)

    return Task(
        step=step_fn, batches=batches, evaluate=evaluate_cell, weights=weights,
        train_stats=TRAIN_STATS, score="test_accuracy", n_cells=len(models) if stacked else None,
        save=save, describe=lambda e, m: _epoch_line(e, m, 1000.0 / model.config.t_ms),
        first_step_error=FIRST_STEP_ERROR,
        failure_hint=failure_hint(cfg), labels=tuple(run_dirs),
    )  # fmt: skip


def _resume(run_dir, attrs, cfg, fresh: Progress) -> Progress:
    with open_run(run_dir) as fh:  # a failed run is named as such before it is read
        status, reason = fh.attrs.get("status"), fh.attrs.get("failure", "non-finite weights")
    if status in ("failed", b"failed"):
        reason = reason.decode() if isinstance(reason, bytes) else reason
        raise ValueError(f"{run_dir} is a failed run ({reason}); train into another run "
                         "directory")  # fmt: skip
    stored, metrics, best, last, restored_opt = _load_with_optimizer(run_dir, fresh.opt_state)
    diffs = config_differences(stored, attrs)
    if diffs:
        raise ValueError(
            f"{run_dir} holds a different configuration ({', '.join(diffs[:4])}); "
            "resume with the same flags or train into another --out"
        )
    trainable = {k: v for k, v in last._asdict().items() if k in cfg.trained and v is not None}
    done = len(metrics["test_accuracy"])
    return Progress(trainable, restored_opt, [metrics], [best], done)


def _load_with_optimizer(run_dir, template):
    """:func:`ei_sim.store.run.load_run` with the optimiser state of ``template``'s layout; a
    run file written before the chain counted skipped steps (its state is the inner chain's
    alone) resumes with the counters at 0."""
    try:
        return load_run(run_dir, opt_template=template)
    except ValueError as err:
        if "optimiser state" not in str(err) or not hasattr(template, "inner_state"):
            raise
    loaded = load_run(run_dir, opt_template=template.inner_state)
    return (*loaded[:4], with_skip_counters(template, loaded[4]))


def _save(run_dir, attrs, metrics, best, current, opt_state, cfg, on_epoch, epoch, ref, split,
          failure=None):  # fmt: skip
    done = len(metrics["test_accuracy"])
    acc = np.asarray(metrics["test_accuracy"])
    attrs = {**attrs, **provenance(cfg.seed), "epochs_done": done,
             "best_epoch": int(np.argmax(acc)) + 1, "best_accuracy": float(acc.max())}  # fmt: skip
    if failure:
        attrs["failure"] = failure
    writer = None
    if on_epoch is not None:

        def writer(fh):
            try:
                on_epoch(fh, epoch, current, metrics, ref, (split.x_test[0], int(split.y_test[0])))
            except Exception as err:  # a failed snapshot never costs the epoch's results
                print(f"warning: epoch {epoch + 1} snapshot not stored: {err}", file=sys.stderr)
                name = f"snapshots/epoch_{epoch + 1:04d}"
                if name in fh:
                    del fh[name]

    status = "failed" if failure else "complete" if done >= cfg.epochs else "running"
    save_run(run_dir, attrs, metrics, best, current, opt_state, status, writer)


def verdict_metrics(verdict) -> dict:
    """The per-epoch metrics of a reference trial's gamma verdict (:data:`VERDICT_METRICS`)."""
    nan = float("nan")
    if verdict is None:
        return dict.fromkeys(VERDICT_METRICS, nan)
    f = verdict.frequency_Hz
    return {"gamma_rhythmic": verdict.as_number(), "gamma_p_value": float(verdict.p_value),
            "gamma_depth": float(verdict.depth),
            "ref_gamma_peak_Hz": nan if f is None else float(f)}  # fmt: skip


def gamma_summary(m, resolution_Hz: float | None = None) -> str:
    """``gamma 42.3 Hz (5 Hz bins), rhythm in the reference trial`` from one epoch's metrics
    (``resolution_Hz``: that of the test-set spectrum, 1000 / t_ms)."""
    f = m["gamma_peak_Hz"]
    bins = "" if resolution_Hz is None else f" ({resolution_Hz:.3g} Hz bins)"
    gamma = "none" if not np.isfinite(f) else f"{f:.1f} Hz{bins}"
    from ei_sim.sim.spectrum import verdict_word

    nan = float("nan")
    word = verdict_word(m.get("gamma_rhythmic", nan), m.get("gamma_p_value", nan),
                        m.get("ref_gamma_peak_Hz", nan))  # fmt: skip
    if word == "no verdict stored":
        return f"gamma {gamma}"
    return f"gamma {gamma}, {word} in the reference trial"


def _epoch_line(epoch, m, resolution_Hz: float | None = None) -> str:
    return (
        f"epoch {epoch + 1}: loss {m['train_loss']:.3f}, "
        f"test acc {100 * m['test_accuracy']:.1f} %, "
        f"E {m['test_rate_e_Hz']:.2f} Hz, I {m['test_rate_i_Hz']:.2f} Hz, "
        f"{gamma_summary(m, resolution_Hz)}, "
        f"{m['epoch_wall_s']:.1f} s"
    )


def _result(run_dir, metrics, best) -> TrainResult:
    acc = np.asarray(metrics["test_accuracy"])
    return TrainResult(
        run_dir, int(np.argmax(acc)) + 1, float(acc.max()), float(acc[-1]),
        {k: np.asarray(v) for k, v in metrics.items()}, best,
    )  # fmt: skip
