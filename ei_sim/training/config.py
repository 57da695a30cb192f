"""Training recipes: what every trainer reads (:class:`Recipe`) and the spiking classifier's
recipe (:class:`TrainConfig`); the rate model's recipe extends the same base
(:class:`ei_sim.rate.train.RateTrainConfig`).

A recipe is a frozen dataclass; its domain rules are checked when it is built (one-line
ValueError naming the field). Each recipe class has a table of tiers (``TIERS``): the values
a tier gives the recipe and, for the spiking classifier, the network size (``n_e``, N_I =
N_E / 4) and trial length (``t_ms``). ``n_samples``, ``epochs`` and ``batch_size`` may be
None in a recipe: "the tier's" (:meth:`Recipe.resolved`). A run file stores every field of
its recipe as a ``train.*`` attribute (:func:`config_attrs`).
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from dataclasses import dataclass
from typing import ClassVar

from ei_sim import validate

SPIKING_BLOCKS = ("w_in", "w_ee", "w_ei", "w_ie", "w_ii", "w_out")
TIER_NAMES = ("tiny", "medium", "long")  # every recipe class has these three


@dataclass(frozen=True)
class Recipe:
    """What every trainer reads.

    ``n_samples`` drawn from the MNIST pool ``data_source`` and split stratified
    ``1 - test_fraction`` / ``test_fraction`` with ``data_seed``; ``epochs`` of shuffled
    ``batch_size`` batches drawn from ``seed``; Adam with ``learning_rate`` after global-norm
    clipping at ``clip_norm`` (:func:`ei_sim.training.optim.dale_adam`).
    """

    TIERS: ClassVar[dict] = {}

    tier: str = "medium"
    n_samples: int | None = 2000
    test_fraction: float = 0.2
    epochs: int | None = 10
    batch_size: int | None = 256
    learning_rate: float = 4e-4
    clip_norm: float = 1.0
    seed: int = 42
    data_seed: int = 42
    data_source: str = "embedded"

    def __post_init__(self):
        if self.tier not in TIER_NAMES:
            raise ValueError(f"unknown tier {self.tier!r}; choose one of {', '.join(TIER_NAMES)}")
        validate.positive("learning_rate", self.learning_rate, 1.0)
        validate.positive("clip_norm", self.clip_norm)
        validate.between("test_fraction", self.test_fraction, 0.01, 0.99)
        validate.seed("seed", self.seed)
        validate.seed("data_seed", self.data_seed)
        for name in ("epochs", "batch_size", "n_samples"):
            if getattr(self, name) is not None:
                _count(name, getattr(self, name))

    @classmethod
    def for_tier(cls, tier: str, **overrides):
        """The recipe of ``tier`` (its values from :attr:`TIERS`) with ``overrides`` (None
        values are ignored: "the tier's")."""
        if tier not in cls.TIERS:
            raise ValueError(f"unknown tier {tier!r}; choose one of {', '.join(cls.TIERS)}")
        names = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in cls.TIERS[tier].items() if k in names}
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(tier=tier, **values)

    def resolved(self):
        """This recipe with its None ``n_samples``, ``epochs`` and ``batch_size`` taken from
        its tier."""
        row = self.TIERS[self.tier]
        fill = {k: row[k] for k in ("n_samples", "epochs", "batch_size")
                if getattr(self, k) is None}  # fmt: skip
        return dataclasses.replace(self, **fill) if fill else self


def _count(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")


@dataclass(frozen=True)
class TrainConfig(Recipe):
    """The spiking classifier's recipe; defaults are the canonical ("medium") values.

    ``budget`` spikes per E cell per trial (None = off) with strength ``budget_strength``
    (the loss's ``lambda sum_n ReLU(zbar_n - budget)^2``); the ``trained`` blocks (all >= 0);
    BPTT stores the state every ``checkpoint_every`` steps and recomputes in between (a
    memory/time trade only: the numbers do not depend on it, so a run resumes with another
    value); the reference trial drops its first ``ref_drop_ms``; each batch split over
    ``devices`` devices (0: all that divide it).
    """

    TIERS: ClassVar[dict] = {
        # tiny: for tests and the quick start; small network, short trials.
        "tiny": dict(n_samples=400, epochs=4, batch_size=32, n_e=64, t_ms=100.0),
        "medium": dict(n_samples=2000, epochs=10, batch_size=256, n_e=1024, t_ms=200.0),
        "long": dict(n_samples=2000, epochs=100, batch_size=256, n_e=1024, t_ms=200.0),
    }

    budget: float | None = None
    budget_strength: float = 1e-3
    trained: tuple = ("w_in", "w_out")
    checkpoint_every: int = 50  # fastest for the fused path (docs/benchmarks.md, Training)
    ref_drop_ms: float = 20.0
    devices: int = 0

    def __post_init__(self):
        super().__post_init__()
        if self.budget is not None and not (math.isfinite(self.budget) and self.budget > 0):
            raise ValueError(f"budget must be > 0 spikes per trial or off, got {self.budget}")
        validate.non_negative("budget_strength", self.budget_strength)
        validate.non_negative("ref_drop_ms", self.ref_drop_ms)
        _count("checkpoint_every", self.checkpoint_every)
        if self.devices < 0:
            raise ValueError(f"devices must be >= 0 (0 = all), got {self.devices}")
        unknown = set(self.trained) - set(SPIKING_BLOCKS)
        if unknown or not self.trained:
            raise ValueError(f"trained weights must be a non-empty subset of {SPIKING_BLOCKS}")


def config_attrs(cfg: Recipe, prefix: str = "train.") -> dict:
    """Every field of a recipe as run-file attributes (None -> "none", tuples as their
    repr): what a run stores and compares when it is resumed."""
    out = {}
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        out[prefix + f.name] = "none" if value is None else repr(value) if isinstance(
            value, tuple) else value  # fmt: skip
    return out


def tier_model(model, tier: str, n_e: int | None = None, t_ms: float | None = None):
    """Apply a tier's network size and trial length to a preset (N_I = N_E / 4); ``n_e`` and
    ``t_ms`` override the tier's values."""
    spec = TrainConfig.TIERS[tier]
    n_e = spec["n_e"] if n_e is None else n_e
    if n_e < 4:
        raise ValueError(f"N_E must be >= 4 (N_I = N_E / 4), got {n_e}")
    return model.replace(n_e=n_e, n_i=n_e // 4, t_ms=spec["t_ms"] if t_ms is None else t_ms)


def run_attrs(model, cfg: TrainConfig) -> dict:
    """A run file's attributes of its network (``model.*``) and recipe (``train.*``)."""
    from ei_sim.sim.config import to_attrs

    attrs = {**to_attrs(model, "model."), **config_attrs(cfg)}
    attrs["train.budget"] = "off" if cfg.budget is None else cfg.budget
    return attrs
