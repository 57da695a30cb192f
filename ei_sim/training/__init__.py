"""Training shared by every model family: one recipe (:class:`TrainConfig`, tiers per family)
and one loop (:func:`fit`: epochs, evaluation, best epoch, checkpoints, non-finite steps and
weights, progress), with an optional stacking axis over cells (:mod:`ei_sim.training.loop`).

The families plug in their step, batches and evaluation: the spiking classifier
(:mod:`ei_sim.train`), the rate model (:mod:`ei_sim.rate_train`) and, through
:func:`ei_sim.train.train_stacked`, the vmapped grid (:mod:`sweeps.vmapped`).
"""

from ei_sim.training.config import (
    FAMILY_FIELDS,
    TIERS,
    TrainConfig,
    config_attrs,
    family_config,
    resolve,
    tier_config,
)
from ei_sim.training.loop import Progress, Task, TrainingFailed, fit, is_new_best

__all__ = [
    "FAMILY_FIELDS", "TIERS", "Progress", "Task", "TrainConfig", "TrainingFailed",
    "config_attrs", "family_config", "fit", "is_new_best", "resolve", "tier_config",
]  # fmt: skip
