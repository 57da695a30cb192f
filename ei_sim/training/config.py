"""One training recipe for every model family, and one tier table per family.

:class:`TrainConfig` holds what every trainer reads (the data sample, the split, epochs,
batches, Adam's step and clipping, the seeds) and, in two marked groups, the settings of
each family's objective: the spiking classifier's spike budget, trained blocks and BPTT
chunking; the rate model's Dale switch, spectral, ratio and residual terms and its LDS
monitor. A family reads only its own group (:data:`FAMILY_FIELDS`) and writes only the
common fields and its own to its run file (:func:`config_attrs`), so spiking run files carry
exactly the ``train.*`` attributes they always did and resume as before.

:data:`TIERS` maps a family to its tiers: the values a tier gives the recipe, and for the
spiking classifier the network size (``n_e``, N_I = N_E / 4) and trial length (``t_ms``).
``n_samples``, ``epochs`` and ``batch_size`` may be None in a config: "the tier's"
(:func:`resolve`).
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from dataclasses import dataclass

from ei_sim import validate
from ei_sim.perron import check_target

SPIKING_BLOCKS = ("w_in", "w_ee", "w_ei", "w_ie", "w_ii", "w_out")

TIERS = {
    "spiking": {
        # tiny: for tests and the quick start; small network, short trials.
        "tiny": dict(n_samples=400, epochs=4, batch_size=32, n_e=64, t_ms=100.0),
        "medium": dict(n_samples=2000, epochs=10, batch_size=256, n_e=1024, t_ms=200.0),
        "long": dict(n_samples=2000, epochs=100, batch_size=256, n_e=1024, t_ms=200.0),
    },
    "rate": {
        # tiny: 240 train / 60 test; batches of 40 (6 equal steps per epoch, one shape).
        "tiny": dict(n_samples=300, epochs=5, batch_size=40),
        "medium": dict(n_samples=2000, epochs=10, batch_size=256),
        "long": dict(n_samples=2000, epochs=100, batch_size=256),
    },
}
TIER_NAMES = ("tiny", "medium", "long")  # every family has these three

COMMON_FIELDS = (
    "tier", "n_samples", "test_fraction", "epochs", "batch_size", "learning_rate",
    "clip_norm", "seed", "data_seed", "data_source",
)  # fmt: skip
FAMILY_FIELDS = {
    "spiking": ("budget", "budget_strength", "trained", "checkpoint_every", "ref_drop_ms",
                "devices"),
    "rate": ("dale", "spectral_weight", "rho_ee_target", "rho_ii_target", "perron_steps",
             "ratio_weight", "ratio_target", "residual_weight", "lds_every_steps"),
}  # fmt: skip
# What a family's recipe differs in from the defaults below (the canonical spiking recipe).
FAMILY_DEFAULTS = {
    "spiking": {},
    "rate": {"tier": "tiny", "n_samples": None, "epochs": None, "batch_size": None,
             "learning_rate": 3e-3},
}  # fmt: skip


@dataclass(frozen=True)
class TrainConfig:
    """The training recipe; defaults are the canonical spiking ("medium") values.

    Common: ``n_samples`` drawn from the MNIST pool ``data_source`` and split stratified
    ``1 - test_fraction`` / ``test_fraction`` with ``data_seed``; ``epochs`` of shuffled
    ``batch_size`` batches drawn from ``seed``; Adam with ``learning_rate`` after global-norm
    clipping at ``clip_norm`` (:func:`ei_sim.optim.dale_adam`).

    Spiking classifier: ``budget`` spikes per E cell per trial (None = off) with strength
    ``budget_strength``; the ``trained`` blocks (all >= 0); BPTT stores the state every
    ``checkpoint_every`` steps and recomputes in between (a memory/time trade only: the
    numbers do not depend on it, so a run resumes with another value); the reference trial drops its first ``ref_drop_ms``; each batch
    split over ``devices`` devices (0: all that divide it).

    Rate model: ``dale`` (False drops the projection, an ablation); the spectral hinge
    ``spectral_weight * (relu(rho_EE - rho_ee_target)^2 + relu(rho_II - rho_ii_target)^2)``
    with ``perron_steps`` power iterations; ``ratio_weight`` towards the E/I rate ratio
    ``ratio_target``; ``residual_weight`` on the fixed-point residual; the LDS monitor every
    ``lds_every_steps`` steps.
    """

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
    # spiking classifier
    budget: float | None = None  # spikes per E cell per trial; None = off
    budget_strength: float = 1e-3
    trained: tuple = ("w_in", "w_out")
    checkpoint_every: int = 20  # fastest for the fused path (benchmarks/bench_train.py)
    ref_drop_ms: float = 20.0
    devices: int = 0  # split each batch over this many devices (0: all that divide it)
    # rate model
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
        if self.tier not in TIER_NAMES:
            raise ValueError(f"unknown tier {self.tier!r}; choose one of {', '.join(TIER_NAMES)}")
        if self.budget is not None and not (math.isfinite(self.budget) and self.budget > 0):
            raise ValueError(f"budget must be > 0 spikes per trial or off, got {self.budget}")
        validate.positive("learning_rate", self.learning_rate, 1.0)
        validate.positive("clip_norm", self.clip_norm)
        validate.non_negative("budget_strength", self.budget_strength)
        validate.between("test_fraction", self.test_fraction, 0.01, 0.99)
        validate.non_negative("ref_drop_ms", self.ref_drop_ms)
        validate.seed("seed", self.seed)
        validate.seed("data_seed", self.data_seed)
        for name in ("epochs", "batch_size", "n_samples", "checkpoint_every", "perron_steps",
                     "lds_every_steps"):  # fmt: skip
            value = getattr(self, name)
            if value is None and name in ("epochs", "batch_size", "n_samples"):
                continue  # the tier's
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        if self.devices < 0:
            raise ValueError(f"devices must be >= 0 (0 = all), got {self.devices}")
        unknown = set(self.trained) - set(SPIKING_BLOCKS)
        if unknown or not self.trained:
            raise ValueError(f"trained weights must be a non-empty subset of {SPIKING_BLOCKS}")
        validate.positive("ratio_target", self.ratio_target)
        for name in ("spectral_weight", "ratio_weight", "residual_weight"):
            validate.non_negative(name, getattr(self, name), hint="0 = off")
        check_target("rho_ee_target", self.rho_ee_target)
        check_target("rho_ii_target", self.rho_ii_target)


def family_config(family: str, **changes) -> TrainConfig:
    """A family's recipe (its :data:`FAMILY_DEFAULTS` over the canonical values) with
    ``changes``; e.g. ``family_config("rate", spectral_weight=0.0)``."""
    if family not in FAMILY_DEFAULTS:
        raise ValueError(f"unknown model family {family!r}; choose one of {', '.join(TIERS)}")
    return TrainConfig(**{**FAMILY_DEFAULTS[family], **changes})


def tier_config(tier: str, family: str = "spiking", **overrides) -> TrainConfig:
    """The TrainConfig of a family's tier, with flag overrides (None values are ignored)."""
    table = TIERS.get(family)
    if table is None:
        raise ValueError(f"unknown model family {family!r}; choose one of {', '.join(TIERS)}")
    if tier not in table:
        raise ValueError(f"unknown tier {tier!r}; choose one of {', '.join(table)}")
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    values = {k: v for k, v in table[tier].items() if k in fields}
    values.update({k: v for k, v in overrides.items() if v is not None})
    return family_config(family, tier=tier, **values)


def resolve(cfg: TrainConfig, family: str) -> TrainConfig:
    """``cfg`` with its None ``n_samples``, ``epochs`` and ``batch_size`` taken from its tier."""
    row = TIERS[family][cfg.tier]
    fill = {k: row[k] for k in ("n_samples", "epochs", "batch_size") if getattr(cfg, k) is None}
    return dataclasses.replace(cfg, **fill) if fill else cfg


def config_attrs(cfg: TrainConfig, family: str, prefix: str = "train.") -> dict:
    """The common fields and ``family``'s as run-file attributes (None -> "none", tuples as
    their repr): what a run of that family stores and compares when it is resumed."""
    out = {}
    for name in COMMON_FIELDS + FAMILY_FIELDS[family]:
        value = getattr(cfg, name)
        out[prefix + name] = "none" if value is None else repr(value) if isinstance(
            value, tuple) else value  # fmt: skip
    return out
