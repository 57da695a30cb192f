"""Surrogate-gradient training of the COBA/PING classifier (SPEC section 2).

``train(model, TrainConfig(...), run_dir)`` runs the recipe: seeded sample-and-split of the
MNIST pool, shuffled batches, Poisson-encoded inputs (fresh spikes every batch; one fixed
encoder seed for every evaluation), BPTT with chunked checkpointing, Adam with global-norm
clipping and the Dale projection, evaluation on the test split after every epoch, the best
epoch's weights kept. After every epoch the run file is rewritten atomically, so a run can be
killed at any moment and resumed (``resume=True``) to the same result as an uninterrupted run.

Randomness: every draw comes from ``(seed, epoch, batch)`` through explicit keys, never
from a global state, which is what makes resumption exact.
"""

from __future__ import annotations

import dataclasses
import math
import os
import sys
import time
from dataclasses import dataclass
from typing import NamedTuple

import jax
import numpy as np

from ei_sim import validate
from ei_sim.config import to_attrs
from ei_sim.data import Split, load_pool, sample_and_split
from ei_sim.encoding import pad_events, poisson_events, round_up
from ei_sim.engine import Weights
from ei_sim.evaluate import evaluate, reference_trial
from ei_sim.objective import assemble, make_train_step
from ei_sim.optim import adam_with_dale
from ei_sim.parallel import batch_mesh, replicate
from ei_sim.runstore import METRICS, config_differences, load_run, run_path, save_run
from ei_sim.storage import provenance, remove_stale_temporaries

BUDGETS = ("off", "5", "2", "1", "0.5", "0.2")
TIERS = {
    # tiny: for tests and the quick start; small network, short trials.
    "tiny": dict(n_samples=400, epochs=4, batch_size=32, n_e=64, t_ms=100.0),
    "medium": dict(n_samples=2000, epochs=10, batch_size=256, n_e=1024, t_ms=200.0),
    "long": dict(n_samples=2000, epochs=100, batch_size=256, n_e=1024, t_ms=200.0),
}
BLOCKS = ("w_in", "w_ee", "w_ei", "w_ie", "w_ii", "w_out")


@dataclass(frozen=True)
class TrainConfig:
    """The training recipe; defaults are the canonical ("medium") values of SPEC section 2."""

    tier: str = "medium"
    n_samples: int = 2000
    test_fraction: float = 0.2
    epochs: int = 10
    batch_size: int = 256
    learning_rate: float = 4e-4
    clip_norm: float = 1.0
    budget: float | None = None  # spikes per E cell per trial; None = off
    budget_strength: float = 1e-3
    trained: tuple = ("w_in", "w_out")
    seed: int = 42
    data_seed: int = 42
    checkpoint_every: int = 50
    data_source: str = "embedded"
    ref_drop_ms: float = 20.0
    devices: int = 0  # split each batch over this many devices (0: all that divide it)

    def __post_init__(self):
        if self.tier not in TIERS:
            raise ValueError(f"unknown tier {self.tier!r}; choose one of {', '.join(TIERS)}")
        if self.budget is not None and not (math.isfinite(self.budget) and self.budget > 0):
            raise ValueError(f"budget must be > 0 spikes per trial or off, got {self.budget}")
        validate.positive("learning_rate", self.learning_rate, 1.0)
        validate.positive("clip_norm", self.clip_norm)
        validate.non_negative("budget_strength", self.budget_strength)
        validate.between("test_fraction", self.test_fraction, 0.01, 0.99)
        validate.non_negative("ref_drop_ms", self.ref_drop_ms)
        validate.seed("seed", self.seed)
        validate.seed("data_seed", self.data_seed)
        for name in ("epochs", "batch_size", "n_samples", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.devices < 0:
            raise ValueError(f"devices must be >= 0 (0 = all), got {self.devices}")
        unknown = set(self.trained) - set(BLOCKS)
        if unknown or not self.trained:
            raise ValueError(f"trained weights must be a non-empty subset of {BLOCKS}")


def parse_budget(text) -> float | None:
    """``"off"`` -> None, else one of the SPEC budgets as a float."""
    text = str(text)
    if text not in BUDGETS:
        raise ValueError(f"budget must be one of {', '.join(BUDGETS)}, got {text!r}")
    return None if text == "off" else float(text)


def tier_config(tier: str, **overrides) -> TrainConfig:
    """The TrainConfig of a tier, with flag overrides (None values are ignored)."""
    if tier not in TIERS:
        raise ValueError(f"unknown tier {tier!r}; choose one of {', '.join(TIERS)}")
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    values = {k: v for k, v in TIERS[tier].items() if k in fields}
    values.update({k: v for k, v in overrides.items() if v is not None})
    return TrainConfig(tier=tier, **values)


def tier_model(model, tier: str, n_e: int | None = None, t_ms: float | None = None):
    """Apply a tier's network size and trial length to a preset (N_I = N_E / 4); ``n_e`` and
    ``t_ms`` override the tier's values."""
    spec = TIERS[tier]
    n_e = spec["n_e"] if n_e is None else n_e
    if n_e < 4:
        raise ValueError(f"N_E must be >= 4 (N_I = N_E / 4), got {n_e}")
    return model.replace(n_e=n_e, n_i=n_e // 4, t_ms=spec["t_ms"] if t_ms is None else t_ms)


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


class TrainingFailed(RuntimeError):
    """The weights became non-finite; the run file is marked ``status = "failed"``."""


def failure_reason(trainable, epoch: int, cfg: TrainConfig) -> str | None:
    """Why the run cannot go on (its trained weights are no longer finite), or None."""
    bad = [name for name, value in trainable.items()
           if not bool(jax.numpy.isfinite(value).all())]  # fmt: skip
    if not bad:
        return None
    return (f"{', '.join(sorted(bad))} became non-finite in epoch {epoch + 1}: the learning "
            f"rate {cfg.learning_rate:g} is likely too large for these weights, or the "
            "initial weights (--w-*) drive the network to overflow; lower --lr")  # fmt: skip


class TrainResult(NamedTuple):
    run_dir: str
    best_epoch: int
    best_accuracy: float
    final_accuracy: float
    metrics: dict
    best_weights: Weights


def run_attrs(model, cfg: TrainConfig) -> dict:
    attrs = {**to_attrs(model, "model."), **to_attrs(cfg, "train.")}
    attrs["train.budget"] = "off" if cfg.budget is None else cfg.budget
    return attrs


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
) -> TrainResult:
    """Train ``model`` with recipe ``cfg`` into ``run_dir`` (created if missing).

    ``on_epoch(h5file, epoch, weights, metrics, reference_trial, (image, label))``, if given,
    is called inside each epoch's atomic write (used to store video snapshots); it runs after
    the epoch's numbers are computed, and an exception in it is reported, not fatal.
    Returns the best epoch's result. A run directory this call created is removed again
    when it fails or is interrupted before its first epoch is stored.
    """
    made = _made_dirs(run_dir)
    os.makedirs(run_dir, exist_ok=True)
    remove_stale_temporaries(run_dir)  # of a write that was killed: never resumed from
    try:
        return _train(model, cfg, run_dir, resume, progress, on_epoch, split)
    except BaseException:
        for folder in made:  # deepest first; only those still empty
            try:
                os.rmdir(folder)
            except OSError:
                break
        raise


def _made_dirs(run_dir: str) -> list[str]:
    """The folders ``os.makedirs(run_dir)`` will create, deepest first."""
    made, path = [], os.path.abspath(run_dir)
    while not os.path.exists(path) and os.path.dirname(path) != path:
        made.append(path)
        path = os.path.dirname(path)
    return made


def _train(model, cfg, run_dir, resume, progress, on_epoch, split) -> TrainResult:
    split = split or sample_and_split(
        load_pool(cfg.data_source), cfg.n_samples, cfg.test_fraction, cfg.data_seed
    )
    attrs = run_attrs(model, cfg)
    key = jax.random.PRNGKey(cfg.seed)
    weights = model.init_weights(jax.random.fold_in(key, 0))
    trainable, frozen = split_weights(weights, cfg.trained)
    optimizer = adam_with_dale(cfg.learning_rate, cfg.clip_norm)
    opt_state = optimizer.init(trainable)
    metrics = {m: [] for m in METRICS}
    best = weights
    if resume and os.path.exists(run_path(run_dir)):
        trainable, opt_state, metrics, best = _resume(run_dir, attrs, cfg, opt_state, frozen)
    elif os.path.exists(run_path(run_dir)):
        raise ValueError(
            f"{run_dir} already holds a run; use --resume to continue it or another --out"
        )
    mesh = batch_mesh(cfg.batch_size, cfg.devices)
    attrs["devices_used"] = 1 if mesh is None else mesh.size
    trainable, opt_state, frozen = replicate((trainable, opt_state, frozen), mesh)
    step = make_train_step(
        optimizer, model.config, cfg.budget, cfg.budget_strength, cfg.checkpoint_every, mesh
    )
    for epoch in range(len(metrics["test_accuracy"]), cfg.epochs):
        t0 = time.perf_counter()
        trainable, opt_state, train_stats = train_epoch(
            step, trainable, opt_state, frozen, model, cfg, split, epoch, key, progress
        )
        current = jax.device_put(assemble(trainable, frozen), jax.devices()[0])
        ev = evaluate(current, model, split.x_test, split.y_test, cfg.seed,
                      devices=attrs["devices_used"])  # fmt: skip
        ref = reference_trial(current, model, split.x_test[0], cfg.seed, cfg.ref_drop_ms)
        for name, value in epoch_row(train_stats, ev, ref, t0).items():
            metrics[name].append(value)
        if is_new_best(metrics["test_accuracy"]):
            best = current
        failure = failure_reason(trainable, epoch, cfg)
        _save(run_dir, attrs, metrics, best, current, opt_state, cfg, on_epoch, epoch, ref, split,
              failure)  # fmt: skip
        if progress:
            print(_epoch_line(epoch, metrics), flush=True)
        if failure:
            raise TrainingFailed(f"{run_dir}: {failure}; the run is marked failed")
    return _result(run_dir, metrics, best)


def is_new_best(accuracies) -> bool:
    """Whether the last epoch is the best one. Ties go to the **first** epoch that reached the
    best accuracy, so ``best_epoch = argmax + 1`` and the best weights always agree."""
    return len(accuracies) == 1 or accuracies[-1] > max(accuracies[:-1])


def epoch_row(train_stats: dict, ev, ref, t0: float) -> dict:
    """One epoch's entry of every metric in :data:`ei_sim.runstore.METRICS`."""
    return {
        **train_stats, "test_accuracy": ev.accuracy, "test_rate_e_Hz": ev.rate_e_Hz,
        "test_rate_i_Hz": ev.rate_i_Hz, "gamma_peak_Hz": ev.gamma_peak_Hz,
        "gamma_significance": ev.gamma_significance,
        "ref_rate_e_Hz": ref.rate_e_Hz, "ref_rate_i_Hz": ref.rate_i_Hz,
        "epoch_wall_s": time.perf_counter() - t0,
    }  # fmt: skip


def train_epoch(step, trainable, opt_state, frozen, model, cfg, split, epoch, key, progress):
    """One epoch of ``step`` over the shuffled batches; returns the new parameters, optimiser
    state and the epoch's mean training statistics over the steps that were not skipped.

    ``step`` may be vmapped over stacked networks (the sweeps train several cells at once):
    then ``finite`` and the loss parts are arrays with one entry per network.
    """
    from tqdm.auto import tqdm

    batches = epoch_batches(split, cfg, model.config, epoch)
    names = ("loss", "cross_entropy", "budget_penalty", "accuracy")
    sums = dict.fromkeys(names, 0.0)
    skipped = 0
    bar = tqdm(batches, desc=f"epoch {epoch + 1}/{cfg.epochs}", disable=not progress, leave=False)
    for events, labels, b in bar:
        batch_key = jax.random.fold_in(jax.random.fold_in(key, epoch + 1), b)
        state0 = model.init_state(batch_key, len(labels))
        trainable, opt_state, finite, parts = step(
            trainable, opt_state, frozen, state0, events, labels
        )
        ok = np.asarray(finite).astype(np.float64)
        if epoch == 0 and b == 0 and not np.all(np.isfinite(np.asarray(parts.loss))):
            raise ValueError(
                "loss is not finite at step 0: the initial weights are non-finite or too "
                "large, or dt_ms is too large for the conductances; check --w-* and --dt-ms"
            )
        skipped = skipped + (1.0 - ok)
        for name in names:
            sums[name] = sums[name] + np.where(ok > 0, np.asarray(getattr(parts, name)), 0.0)
        bar.set_postfix(loss=f"{float(np.mean(parts.loss)):.3f}",
                        acc=f"{float(np.mean(parts.accuracy)):.2f}")  # fmt: skip
    n_ok = np.maximum(1.0, len(batches) - skipped)
    stats = {f"train_{k}": v / n_ok for k, v in sums.items()}
    stats["skipped_steps"] = skipped
    return trainable, opt_state, stats


def _resume(run_dir, attrs, cfg, opt_state, frozen):
    stored, metrics, best, last, restored_opt = load_run(run_dir, opt_template=opt_state)
    if stored.get("status") == "failed":
        reason = stored.get("failure", "non-finite weights")
        raise ValueError(f"{run_dir} is a failed run ({reason}); train into another --out")
    diffs = config_differences(stored, attrs)
    if diffs:
        raise ValueError(
            f"{run_dir} holds a different configuration ({', '.join(diffs[:4])}); "
            "resume with the same flags or train into another --out"
        )
    trainable = {k: v for k, v in last._asdict().items() if k in cfg.trained and v is not None}
    return trainable, restored_opt, metrics, best


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


def _epoch_line(epoch, metrics) -> str:
    m = {k: v[-1] for k, v in metrics.items()}
    gamma = "none" if not np.isfinite(m["gamma_peak_Hz"]) else f"{m['gamma_peak_Hz']:.1f} Hz"
    return (
        f"epoch {epoch + 1}: loss {m['train_loss']:.3f}, test acc {100 * m['test_accuracy']:.1f} %, "
        f"E {m['test_rate_e_Hz']:.2f} Hz, I {m['test_rate_i_Hz']:.2f} Hz, gamma {gamma}, "
        f"{m['epoch_wall_s']:.1f} s"
    )


def _result(run_dir, metrics, best) -> TrainResult:
    acc = np.asarray(metrics["test_accuracy"])
    return TrainResult(
        run_dir, int(np.argmax(acc)) + 1, float(acc.max()), float(acc[-1]),
        {k: np.asarray(v) for k, v in metrics.items()}, best,
    )  # fmt: skip
