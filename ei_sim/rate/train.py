"""Training the Wilson-Cowan rate model (:mod:`ei_sim.rate.network`) as an MNIST classifier, on the
shared loop (:func:`ei_sim.training.fit`).

Objective per batch::

    L = CE(logits, y) + w_spec [relu(rho_EE - t_EE)^2 + relu(rho_II - t_II)^2]
        + w_ratio (log(<r_E>/<r_I>) - log t_ratio)^2 + w_res * residual(r_K)

Optimiser: global-norm clip, Adam, then Dale's law on the four recurrent blocks
(:func:`ei_sim.training.optim.dale_adam` with :data:`ei_sim.rate.network.DALE_MASK`); a step with a
non-finite gradient is skipped and counted. Recipe: :class:`RateTrainConfig` (Adam step 3e-3,
the tier's sample, epochs and batches from :data:`TIERS`); data: the tier's sample of the MNIST
pool, stratified
80/20 split with ``data_seed`` (42); batches shuffled with keys folded from the run seed.
After each epoch the test split is evaluated and the best-epoch weights are kept (ties: the
first epoch). The LDS monitor (:func:`ei_sim.rate.perron.lds_monitor`) runs every
``lds_every_steps`` steps and at the end of every epoch.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import ClassVar, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ei_sim import validate
from ei_sim.data.mnist import Split, load_pool, sample_and_split
from ei_sim.rate import network as wc
from ei_sim.rate.perron import check_target, lds_monitor, perron_root, spectral_penalty
from ei_sim.store.atomic import check_output_path
from ei_sim.training.config import Recipe
from ei_sim.training.loop import Progress, Task, fit
from ei_sim.training.optim import all_finite, dale_adam


@dataclass(frozen=True)
class RateTrainConfig(Recipe):
    """The rate model's recipe: the common fields (:class:`ei_sim.training.config.Recipe`;
    here Adam's step 3e-3 and the tiny tier, whose sample, epochs and batch size apply while
    those fields are None) and the objective's terms.

    ``dale`` (False drops the projection, an ablation); the spectral hinge ``spectral_weight
    * (relu(rho_EE - rho_ee_target)^2 + relu(rho_II - rho_ii_target)^2)`` with
    ``perron_steps`` power iterations; ``ratio_weight`` towards the E/I rate ratio
    ``ratio_target``; ``residual_weight`` on the fixed-point residual; the LDS monitor every
    ``lds_every_steps`` steps.
    """

    TIERS: ClassVar[dict] = {
        # tiny: 240 train / 60 test; batches of 40 (6 equal steps per epoch, one shape).
        "tiny": dict(n_samples=300, epochs=5, batch_size=40),
        "medium": dict(n_samples=2000, epochs=10, batch_size=256),
        "long": dict(n_samples=2000, epochs=100, batch_size=256),
    }

    tier: str = "tiny"
    n_samples: int | None = None
    epochs: int | None = None
    batch_size: int | None = None
    learning_rate: float = 3e-3
    dale: bool = True
    spectral_weight: float = 1.0
    rho_ee_target: float = 0.9
    rho_ii_target: float = 9.0
    perron_steps: int = 20
    ratio_weight: float = 0.0
    ratio_target: float = 0.5
    residual_weight: float = 0.0
    lds_every_steps: int = 10

    def __post_init__(self):
        super().__post_init__()
        validate.positive("ratio_target", self.ratio_target)
        for name in ("spectral_weight", "ratio_weight", "residual_weight"):
            validate.non_negative(name, getattr(self, name), hint="0 = off")
        for name in ("perron_steps", "lds_every_steps"):
            validate.count(name, getattr(self, name), 1)
        check_target("rho_ee_target", self.rho_ee_target)
        check_target("rho_ii_target", self.rho_ii_target)


TIERS = RateTrainConfig.TIERS


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


def make_optimizer(train: RateTrainConfig) -> optax.GradientTransformation:
    return dale_adam(train.learning_rate, train.clip_norm, wc.DALE_MASK if train.dale else False)


def objective(params, x, y, config: wc.WCConfig, train: RateTrainConfig):
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


def make_train_step(config: wc.WCConfig, train: RateTrainConfig, optimizer):
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


def evaluate(params, x, y, config: wc.WCConfig, train: RateTrainConfig) -> dict:
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
    model: wc.WCConfig | None = None,
    cfg: RateTrainConfig | None = None,
    out: str | None = None,
    *,
    progress: bool = True,
    split: Split | None = None,
    params: wc.Params | None = None,
    log=None,
) -> RateTrainResult:
    """Train the rate network ``model`` with recipe ``cfg`` and write ``out`` (HDF5; the
    layout of :mod:`ei_sim.rate.store`) when given. See the module doc.

    ``split`` overrides the recipe's data, ``params`` the random initialisation (seeded by
    ``cfg.seed``); ``log`` is called with one line per epoch (default: ``print`` when
    ``progress``).
    """
    config = wc.WCConfig() if model is None else model
    cfg = (RateTrainConfig() if cfg is None else cfg).resolved()
    seed, tier = cfg.seed, cfg.tier
    log = log if log is not None else (print if progress else None)
    if out is not None:
        check_output_path(out)  # before any work: a missing folder fails now, not at the end
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
        from ei_sim.rate.store import write_rate_run

        write_rate_run(out, result, config, cfg, tier, seed)
    return result


def _epoch_line(epoch: int, row: dict) -> str:
    return (
        f"epoch {epoch + 1}: acc {100 * row['accuracy']:.1f} % rho_EE {row['rho_ee']:.3f} "
        f"rho_II {row['rho_ii']:.3f} E/I {row['ei_ratio']:.2f} LDS {row['lds_stable']}"
    )


def summary_line(result: RateTrainResult) -> str:
    h = result.history
    line = (
        f"rate: best acc {100 * result.best_accuracy:.1f} % (epoch {result.best_epoch}), "
        f"rho_EE {h['rho_ee'][-1]:.3f}, rho_II {h['rho_ii'][-1]:.3f}, "
        f"LDS {'stable' if h['lds_stable'][-1] else 'not certified'}, "
        f"E/I {h['ei_ratio'][-1]:.2f}, {result.n_skipped} skipped, {result.seconds:.1f} s"
    )
    return line + (f" (wrote {result.out})" if result.out else "")
