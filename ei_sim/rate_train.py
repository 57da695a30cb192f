"""Training the Wilson-Cowan rate model (:mod:`ei_sim.rate`) as an MNIST classifier, on the
shared loop (:func:`ei_sim.training.fit`).

Objective per batch::

    L = CE(logits, y) + w_spec [relu(rho_EE - t_EE)^2 + relu(rho_II - t_II)^2]
        + w_ratio (log(<r_E>/<r_I>) - log t_ratio)^2 + w_res * residual(r_K)

Optimiser: global-norm clip, Adam, then Dale's law on the four recurrent blocks
(:func:`ei_sim.optim.dale_adam` with :data:`ei_sim.rate.DALE_MASK`); a step with a
non-finite gradient is skipped and counted. Recipe: the one :class:`ei_sim.training.TrainConfig`
with the rate family's defaults (:func:`rate_config`: Adam step 3e-3, the tier's sample,
epochs and batches from :data:`TIERS`); data: the tier's sample of the MNIST pool, stratified
80/20 split with ``data_seed`` (42); batches shuffled with keys folded from the run seed.
After each epoch the test split is evaluated and the best-epoch weights are kept (ties: the
first epoch). The LDS monitor (:func:`ei_sim.perron.lds_monitor`) runs every
``lds_every_steps`` steps and at the end of every epoch.
"""

from __future__ import annotations

import dataclasses
import time
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ei_sim import rate as wc
from ei_sim.config import from_attrs, to_attrs
from ei_sim.data import Split, load_pool, sample_and_split
from ei_sim.optim import all_finite, dale_adam
from ei_sim.outputs import check_output_file
from ei_sim.perron import lds_monitor, perron_root, spectral_penalty
from ei_sim.storage import atomic_h5, provenance, read_attrs, write_attrs
from ei_sim.training import TIERS as FAMILY_TIERS
from ei_sim.training import Progress, Task, config_attrs, family_config, fit, resolve
from ei_sim.training import TrainConfig as Recipe

TIERS = FAMILY_TIERS["rate"]


def rate_config(**changes) -> Recipe:
    """The rate model's recipe: :class:`ei_sim.training.TrainConfig` with the rate family's
    defaults (Adam step 3e-3; sample, epochs and batch size None: the tier's), and
    ``changes`` (``pool`` is accepted for ``data_source``)."""
    if "pool" in changes:
        changes["data_source"] = changes.pop("pool")
    return family_config("rate", **changes)


# ``ei_sim.rate_train.TrainConfig(...)`` builds the rate recipe, as it always has.
TrainConfig = rate_config


class RateTrainResult(NamedTuple):
    params: wc.Params  # best-epoch weights
    final_params: wc.Params
    history: dict  # name -> np.ndarray (per epoch, per step, per LDS check)
    best_accuracy: float
    best_epoch: int  # 1-based, as a spiking run's (argmax + 1; ties: the first epoch)
    n_skipped: int
    seconds: float
    out: str | None


class StepStats(NamedTuple):
    loss: jax.Array
    min_recurrent_weight: jax.Array


def make_optimizer(train: Recipe) -> optax.GradientTransformation:
    return dale_adam(train.learning_rate, train.clip_norm, wc.DALE_MASK if train.dale else False)


def objective(params, x, y, config: wc.WCConfig, train: Recipe):
    """``(loss, (cross_entropy, accuracy, rates))`` for one batch."""
    drive = wc.input_drive(params, x, config)
    final, _ = wc.relax(params, drive, config)
    logits = wc.readout_logits(params, final)
    ce = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
    loss = ce
    if train.spectral_weight > 0:
        loss += train.spectral_weight * spectral_penalty(
            params.w_ee, params.w_ii, train.rho_ee_target, train.rho_ii_target, train.perron_steps
        )
    if train.ratio_weight > 0:
        loss += train.ratio_weight * wc.ei_ratio_penalty(final, train.ratio_target)
    if train.residual_weight > 0:
        loss += train.residual_weight * wc.fixed_point_residual(params, final, drive, config)
    accuracy = jnp.mean(jnp.argmax(logits, axis=-1) == y)
    return loss, (ce, accuracy, final)


_objective_jit = jax.jit(objective, static_argnums=(3, 4))
_perron_jit = jax.jit(perron_root, static_argnums=1)


def make_train_step(config: wc.WCConfig, train: Recipe, optimizer):
    """A jitted ``(params, opt_state, x, y) -> (params, opt_state, finite, StepStats)``; a
    non-finite gradient is skipped by the optimiser (``optax.apply_if_finite``)."""
    grad_fn = jax.value_and_grad(objective, has_aux=True)

    @jax.jit
    def train_step(params, opt_state, x, y):
        (loss, _), grads = grad_fn(params, x, y, config, train)
        finite = all_finite(grads)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
        min_w = jnp.min(jnp.stack([jnp.min(getattr(params, n)) for n in wc.RECURRENT]))
        return params, opt_state, finite, StepStats(loss, min_w)

    return train_step


def recurrent_zero_fraction(params) -> float:
    """Fraction of the recurrent weights sitting exactly at 0 (held there by the projection)."""
    blocks = [np.asarray(getattr(params, n)) for n in wc.RECURRENT]
    return float(sum((b == 0).sum() for b in blocks) / sum(b.size for b in blocks))


def evaluate(params, x, y, config: wc.WCConfig, train: Recipe) -> dict:
    """Test-split metrics plus the stability numbers logged per epoch."""
    _, (ce, acc, final) = _objective_jit(params, x, y, config, train)
    report = lds_monitor(params, config)
    return {
        "accuracy": float(acc),
        "test_loss": float(ce),
        "ei_ratio": float(wc.ei_ratio(final)),
        "rate_e": float(final.e.mean()),
        "rate_i": float(final.i.mean()),
        "rho_ee": float(_perron_jit(params.w_ee, train.perron_steps)),
        "rho_ii": float(_perron_jit(params.w_ii, train.perron_steps)),
        "frac_zero": recurrent_zero_fraction(params),
        "lds_stable": report.stable,
        "lds_margin": report.margin,
    }


def _batches(key, n: int, batch_size: int):
    order = np.asarray(jax.random.permutation(key, n))
    return [order[i : i + batch_size] for i in range(0, n, batch_size)]


STEP_SERIES = ("step_loss", "min_recurrent_weight", "skipped", "lds_check_step",
               "lds_check_stable", "lds_check_margin")  # fmt: skip


def train_rate(
    config: wc.WCConfig | None = None,
    tier: str = "tiny",
    epochs: int | None = None,
    seed: int = 42,
    out: str | None = None,
    train: Recipe | None = None,
    split: Split | None = None,
    params: wc.Params | None = None,
    log=None,
) -> RateTrainResult:
    """Train the rate model on a tier; write ``out`` (HDF5) when given. See the module doc.

    ``train`` is the recipe (:func:`rate_config`; its None sample, epochs and batch size are
    the tier's, ``epochs`` and ``seed`` override it); ``split`` overrides the tier's data,
    ``params`` the random initialisation; ``log`` is called with one line per epoch (e.g.
    ``print``).
    """
    config = wc.WCConfig() if config is None else config
    train = rate_config() if train is None else train
    if tier not in TIERS:
        raise ValueError(f"unknown tier {tier!r}; choose one of {', '.join(TIERS)}")
    changes = {"tier": tier, "seed": seed, **({} if epochs is None else {"epochs": epochs})}
    cfg = resolve(dataclasses.replace(train, **changes), "rate")
    if out is not None:
        check_output_file("out", out, "wilson_cowan", replace=True, command="train_rate")
    if split is None:
        split = sample_and_split(load_pool(cfg.data_source), cfg.n_samples, cfg.test_fraction,
                                 cfg.data_seed)  # fmt: skip
    key_init, key_shuffle = jax.random.split(jax.random.PRNGKey(seed))
    params = wc.init_params(key_init, config) if params is None else params
    optimizer = make_optimizer(cfg)
    train_step = make_train_step(config, cfg, optimizer)
    x_tr, y_tr = jnp.asarray(split.x_train), jnp.asarray(split.y_train)
    x_te, y_te = jnp.asarray(split.x_test), jnp.asarray(split.y_test)
    steps = {k: [] for k in STEP_SERIES}

    def on_step(progress, finite, stats):
        steps["step_loss"].append(float(stats.loss))
        steps["min_recurrent_weight"].append(float(stats.min_recurrent_weight))
        steps["skipped"].append(not bool(finite))
        if progress.steps_done % cfg.lds_every_steps == 0:
            report = lds_monitor(progress.params, config)
            steps["lds_check_step"].append(progress.steps_done)
            steps["lds_check_stable"].append(report.stable)
            steps["lds_check_margin"].append(report.margin)

    task = Task(
        step=lambda p, s, idx: train_step(p, s, x_tr[idx], y_tr[idx]),
        batches=lambda e: _batches(jax.random.fold_in(key_shuffle, e), len(y_tr), cfg.batch_size),
        evaluate=lambda p, c: (evaluate(p, x_te, y_te, config, cfg), None),
        score="accuracy", on_step=on_step, describe=_epoch_line,
    )  # fmt: skip
    started = time.perf_counter()
    progress = fit(task, Progress.fresh(params, optimizer.init(params), ()), cfg.epochs,
                   log=log)  # fmt: skip
    rows = progress.metrics[0]
    history = {k: np.asarray(v) for k, v in steps.items()}
    history.update({k: np.asarray(v) for k, v in rows.items()})
    acc = history["accuracy"]
    result = RateTrainResult(
        params=progress.best[0], final_params=progress.params, history=history,
        best_accuracy=float(acc.max()), best_epoch=int(np.argmax(acc)) + 1,
        n_skipped=int(np.sum(history["skipped"])), seconds=time.perf_counter() - started,
        out=out,
    )  # fmt: skip
    if out is not None:
        write_rate_run(out, result, config, cfg, tier, seed)
    return result


def _epoch_line(epoch: int, row: dict) -> str:
    return (
        f"epoch {epoch + 1}: acc {row['accuracy']:.3f} rho_EE {row['rho_ee']:.3f} "
        f"rho_II {row['rho_ii']:.3f} E/I {row['ei_ratio']:.2f} LDS {row['lds_stable']}"
    )


def summary_line(result: RateTrainResult) -> str:
    h = result.history
    line = (
        f"rate: best acc {result.best_accuracy:.3f} (epoch {result.best_epoch}), "
        f"rho_EE {h['rho_ee'][-1]:.3f}, rho_II {h['rho_ii'][-1]:.3f}, "
        f"LDS {'stable' if h['lds_stable'][-1] else 'not certified'}, "
        f"E/I {h['ei_ratio'][-1]:.2f}, {result.n_skipped} skipped, {result.seconds:.1f} s"
    )
    return line + (f" (wrote {result.out})" if result.out else "")


# The rate-model run's layout is schema_version 2: ``best_epoch`` counts from 1, as in a
# spiking run. Files of schema_version 1, and those written before schema_version existed
# (read as 1), stored it counting from 0; :func:`load_rate_run` adds 1 to theirs, so every
# reader sees it counting from 1.
ONE_BASED_BEST_EPOCH_SINCE = 2


def write_rate_run(path: str, result: RateTrainResult, config, train, tier: str, seed: int):
    """One HDF5 file (``kind = "wilson_cowan"``, ``schema_version`` 2): attributes (model.,
    train., provenance., ``best_accuracy``, ``best_epoch`` counting from 1), datasets per
    epoch/step (``history/*``), the best-epoch and final weights (``params/*``,
    ``final_params/*``)."""
    with atomic_h5(path, kind="wilson_cowan") as fh:
        write_attrs(fh, to_attrs(config, "model."))
        write_attrs(fh, config_attrs(train, "rate"))
        write_attrs(fh, provenance(seed))
        write_attrs(fh, {"tier": tier, "seed": seed})
        write_attrs(fh, {"best_accuracy": result.best_accuracy, "best_epoch": result.best_epoch})
        for name, values in result.history.items():
            fh.create_dataset(f"history/{name}", data=values)
        for group, params in (("params", result.params), ("final_params", result.final_params)):
            for name, value in params._asdict().items():
                fh.create_dataset(f"{group}/{name}", data=np.asarray(value))


def load_rate_run(path: str, which: str = "params"):
    """``(WCConfig, Params, attrs)`` of a run file (best-epoch weights by default);
    ``attrs["best_epoch"]`` counts from 1 whatever the file's schema_version (a version-1
    file's 0-based value is shifted; see :data:`ONE_BASED_BEST_EPOCH_SINCE`)."""
    from ei_sim.store import KINDS, open_readable, schema_version

    with open_readable(path, "write one with 'ei-sim rate train --out'") as fh:
        attrs = read_attrs(fh)
        if attrs.get("kind") != "wilson_cowan" or which not in fh:
            raise ValueError(f"{path} is not a rate-model run file (ei-sim rate train --out)")
        version, known = schema_version(fh), KINDS["wilson_cowan"].schema_version
        if version > known:
            raise ValueError(f"{path} is a rate-model run of schema_version {version}; this "
                             f"ei-sim reads up to {known}: upgrade ei-sim")  # fmt: skip
        if version < ONE_BASED_BEST_EPOCH_SINCE and "best_epoch" in attrs:
            attrs["best_epoch"] = int(attrs["best_epoch"]) + 1
        params = wc.Params(**{n: jnp.asarray(fh[f"{which}/{n}"][...]) for n in wc.Params._fields})
    return from_attrs(wc.WCConfig, attrs, "model."), params, attrs
