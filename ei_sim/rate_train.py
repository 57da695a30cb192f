"""Training the Wilson-Cowan rate model (SPEC section 5) as an MNIST classifier.

Objective per batch::

    L = CE(logits, y) + w_spec [relu(rho_EE - t_EE)^2 + relu(rho_II - t_II)^2]
        + w_ratio (log(<r_E>/<r_I>) - log t_ratio)^2 + w_res * residual(r_K)

Optimiser: global-norm clip, Adam, then the Dale projection on the four recurrent blocks
(:func:`ei_sim.optim.adam_with_dale` with :data:`models.wilson_cowan.DALE_MASK`); a step with a
non-finite gradient is skipped and counted. Data: the tier's sample of the MNIST pool,
stratified 80/20 split with ``data_seed`` (42); batches shuffled with keys folded from the
run seed. After each epoch the test split is evaluated and the best-epoch weights are kept.
The LDS monitor (:func:`models.perron.lds_monitor`) runs every ``lds_every_steps`` steps
and at the end of every epoch.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ei_sim import validate
from ei_sim.config import from_attrs, to_attrs
from ei_sim.data import Split, load_pool, sample_and_split
from ei_sim.optim import adam_with_dale, all_finite
from ei_sim.outputs import check_output_file
from ei_sim.storage import atomic_h5, provenance, read_attrs, write_attrs
from models import wilson_cowan as wc
from models.perron import check_target, lds_monitor, perron_root, spectral_penalty


class Tier(NamedTuple):
    n_samples: int
    epochs: int
    batch_size: int


# tiny: 240 train / 60 test; batches of 40 (6 equal steps per epoch, one compiled shape).
TIERS = {
    "tiny": Tier(n_samples=300, epochs=5, batch_size=40),
    "medium": Tier(n_samples=2000, epochs=10, batch_size=256),
    "long": Tier(n_samples=2000, epochs=100, batch_size=256),
}


@dataclass(frozen=True)
class TrainConfig:
    """Optimiser, regulariser and monitoring settings (plain values; see the module docstring).

    ``batch_size=None`` takes the tier's. ``dale=False`` drops the projection (ablation only:
    the recurrent blocks may then change sign).
    """

    learning_rate: float = 3e-3
    clip_norm: float = 1.0
    batch_size: int | None = None
    dale: bool = True
    spectral_weight: float = 1.0
    rho_ee_target: float = 0.9
    rho_ii_target: float = 9.0
    perron_steps: int = 20
    ratio_weight: float = 0.0
    ratio_target: float = 0.5
    residual_weight: float = 0.0
    lds_every_steps: int = 10
    data_seed: int = 42
    pool: str = field(default="embedded")

    def __post_init__(self):
        for name in ("learning_rate", "clip_norm", "ratio_target"):
            _require(name, getattr(self, name), lambda v: v > 0, "a positive number")
        for name in ("spectral_weight", "ratio_weight", "residual_weight"):
            _require(name, getattr(self, name), lambda v: v >= 0, "a number >= 0 (0 = off)")
        check_target("rho_ee_target", self.rho_ee_target)
        check_target("rho_ii_target", self.rho_ii_target)
        for name in ("perron_steps", "lds_every_steps"):
            value = getattr(self, name)
            if not (isinstance(value, int) and value >= 1):
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        if self.batch_size is not None and not (
            isinstance(self.batch_size, int) and self.batch_size >= 1
        ):
            raise ValueError(f"batch_size must be an integer >= 1, got {self.batch_size!r}")


def _require(name, value, ok, what):
    if not (isinstance(value, int | float) and math.isfinite(value) and ok(value)):
        raise ValueError(f"{name} must be {what}, got {value!r}")


class RateTrainResult(NamedTuple):
    params: wc.Params  # best-epoch weights
    final_params: wc.Params
    history: dict  # name -> np.ndarray (per epoch, per step, per LDS check)
    best_accuracy: float
    best_epoch: int
    n_skipped: int
    seconds: float
    out: str | None


def make_optimizer(train: TrainConfig) -> optax.GradientTransformation:
    if train.dale:
        return adam_with_dale(train.learning_rate, train.clip_norm, mask=wc.DALE_MASK)
    return optax.chain(optax.clip_by_global_norm(train.clip_norm), optax.adam(train.learning_rate))


def objective(params, x, y, config: wc.WCConfig, train: TrainConfig):
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


def make_train_step(config: wc.WCConfig, train: TrainConfig, optimizer):
    grad_fn = jax.value_and_grad(objective, has_aux=True)

    @jax.jit
    def train_step(params, opt_state, x, y):
        (loss, _), grads = grad_fn(params, x, y, config, train)
        ok = all_finite(grads)
        updates, new_state = optimizer.update(grads, opt_state, params)
        new_params = optax.apply_updates(params, updates)
        keep = lambda new, old: jax.tree.map(lambda a, b: jnp.where(ok, a, b), new, old)  # noqa: E731
        params, opt_state = keep(new_params, params), keep(new_state, opt_state)
        min_w = jnp.min(jnp.stack([jnp.min(getattr(params, n)) for n in wc.RECURRENT]))
        return params, opt_state, loss, min_w, ~ok

    return train_step


def recurrent_zero_fraction(params) -> float:
    """Fraction of the recurrent weights sitting exactly at 0 (held there by the projection)."""
    blocks = [np.asarray(getattr(params, n)) for n in wc.RECURRENT]
    return float(sum((b == 0).sum() for b in blocks) / sum(b.size for b in blocks))


def evaluate(params, x, y, config: wc.WCConfig, train: TrainConfig) -> dict:
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


def train_rate(
    config: wc.WCConfig | None = None,
    tier: str = "tiny",
    epochs: int | None = None,
    seed: int = 42,
    out: str | None = None,
    train: TrainConfig | None = None,
    split: Split | None = None,
    params: wc.Params | None = None,
    log=None,
) -> RateTrainResult:
    """Train the rate model on a tier; write ``out`` (HDF5) when given. See the module doc.

    ``split`` overrides the tier's data, ``params`` the random initialisation; ``log`` is
    called with one line per epoch (e.g. ``print``).
    """
    config = wc.WCConfig() if config is None else config
    train = TrainConfig() if train is None else train
    if tier not in TIERS:
        raise ValueError(f"unknown tier {tier!r}; choose one of {', '.join(TIERS)}")
    spec = TIERS[tier]
    epochs = spec.epochs if epochs is None else epochs
    if not (isinstance(epochs, int) and epochs >= 1):
        raise ValueError(f"epochs must be an integer >= 1, got {epochs!r}")
    validate.seed("seed", seed)
    if out is not None:
        check_output_file("out", out, "wilson_cowan", replace=True, command="train_rate")
    if split is None:
        split = sample_and_split(load_pool(train.pool), spec.n_samples, 0.2, train.data_seed)
    batch_size = train.batch_size or spec.batch_size
    key_init, key_shuffle = jax.random.split(jax.random.PRNGKey(seed))
    params = wc.init_params(key_init, config) if params is None else params
    optimizer = make_optimizer(train)
    opt_state = optimizer.init(params)
    train_step = make_train_step(config, train, optimizer)
    x_tr, y_tr = jnp.asarray(split.x_train), jnp.asarray(split.y_train)
    x_te, y_te = jnp.asarray(split.x_test), jnp.asarray(split.y_test)

    hist = {k: [] for k in ("step_loss", "min_recurrent_weight", "skipped", "train_loss")}
    hist.update({k: [] for k in ("lds_check_step", "lds_check_stable", "lds_check_margin")})
    epoch_rows, best, started, step_count = [], (-1.0, 0, params), time.perf_counter(), 0
    for epoch in range(epochs):
        losses = []
        for idx in _batches(jax.random.fold_in(key_shuffle, epoch), len(y_tr), batch_size):
            params, opt_state, loss, min_w, skipped = train_step(
                params, opt_state, x_tr[idx], y_tr[idx]
            )
            step_count += 1
            losses.append(float(loss))
            hist["step_loss"].append(float(loss))
            hist["min_recurrent_weight"].append(float(min_w))
            hist["skipped"].append(bool(skipped))
            if step_count % train.lds_every_steps == 0:
                report = lds_monitor(params, config)
                hist["lds_check_step"].append(step_count)
                hist["lds_check_stable"].append(report.stable)
                hist["lds_check_margin"].append(report.margin)
        row = evaluate(params, x_te, y_te, config, train)
        hist["train_loss"].append(float(np.mean(losses)))
        epoch_rows.append(row)
        if row["accuracy"] > best[0]:
            best = (row["accuracy"], epoch, params)
        if log is not None:
            log(_epoch_line(epoch, row))
    history = {k: np.asarray(v) for k, v in hist.items()}
    history.update({k: np.asarray([r[k] for r in epoch_rows]) for k in epoch_rows[0]})
    result = RateTrainResult(
        params=best[2], final_params=params, history=history, best_accuracy=best[0],
        best_epoch=best[1], n_skipped=int(np.sum(history["skipped"])),
        seconds=time.perf_counter() - started, out=out,
    )  # fmt: skip
    if out is not None:
        write_rate_run(out, result, config, train, tier, seed)
    return result


def _epoch_line(epoch: int, row: dict) -> str:
    return (
        f"epoch {epoch + 1}: acc {row['accuracy']:.3f} rho_EE {row['rho_ee']:.3f} "
        f"rho_II {row['rho_ii']:.3f} E/I {row['ei_ratio']:.2f} LDS {row['lds_stable']}"
    )


def summary_line(result: RateTrainResult) -> str:
    h = result.history
    line = (
        f"rate: best acc {result.best_accuracy:.3f} (epoch {result.best_epoch + 1}), "
        f"rho_EE {h['rho_ee'][-1]:.3f}, rho_II {h['rho_ii'][-1]:.3f}, "
        f"LDS {'stable' if h['lds_stable'][-1] else 'not certified'}, "
        f"E/I {h['ei_ratio'][-1]:.2f}, {result.n_skipped} skipped, {result.seconds:.1f} s"
    )
    return line + (f" (wrote {result.out})" if result.out else "")


def write_rate_run(path: str, result: RateTrainResult, config, train, tier: str, seed: int):
    """One HDF5 file: attributes (model., train., provenance.), datasets per epoch/step."""
    with atomic_h5(path) as fh:
        write_attrs(fh, to_attrs(config, "model."))
        write_attrs(fh, to_attrs(train, "train."))
        write_attrs(fh, provenance(seed))
        write_attrs(fh, {"kind": "wilson_cowan", "tier": tier, "seed": seed})
        write_attrs(fh, {"best_accuracy": result.best_accuracy, "best_epoch": result.best_epoch})
        for name, values in result.history.items():
            fh.create_dataset(f"history/{name}", data=values)
        for group, params in (("params", result.params), ("final_params", result.final_params)):
            for name, value in params._asdict().items():
                fh.create_dataset(f"{group}/{name}", data=np.asarray(value))


def load_rate_run(path: str, which: str = "params"):
    """``(WCConfig, Params, attrs)`` of a run file (best-epoch weights by default)."""
    from ei_sim.storage import open_readable

    with open_readable(path, "write one with 'ei-sim rate train --out'") as fh:
        attrs = read_attrs(fh)
        if attrs.get("kind") != "wilson_cowan" or which not in fh:
            raise ValueError(f"{path} is not a rate-model run file (ei-sim rate train --out)")
        params = wc.Params(**{n: jnp.asarray(fh[f"{which}/{n}"][...]) for n in wc.Params._fields})
    return from_attrs(wc.WCConfig, attrs, "model."), params, attrs
