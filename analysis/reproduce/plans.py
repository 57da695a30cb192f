"""What an experiment runs at a scale (:class:`Plan`): ``full`` is the lab's recipe, ``quick``
a miniature for a 2-core laptop (well under an hour) whose table says what it reduced. Each
experiment holds its plans (:class:`~ei_sim.analysis.reproduce.experiment.Experiment`)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ei_sim.sweeps.inference import CANONICAL_SCALES

GRID_VALUES = (0.0, 0.25, 0.5, 1.0, 2.0)  # nb036 5 x 5, both axes
DIAGONAL_VALUES = (0.0, 0.1, 0.25, 0.4, 0.5, 0.6, 0.75, 1.0, 1.5, 2.0)  # nb036 slice
COUPLING_SCALES = (0.25, 0.5, 1.0, 2.0)
TAUS_GABA_MS = (4.5, 6.0, 9.0, 12.0, 18.0, 27.0)
ALL_BUDGETS = ("off", "5", "2", "1", "0.5", "0.2")


@dataclass(frozen=True)
class Plan:
    tier: str = "medium"
    epochs: int = 10
    n_e: int | None = None
    t_ms: float | None = None
    samples: int | None = None
    models: tuple = ("ping", "coba")
    budgets: tuple = ALL_BUDGETS
    seeds: tuple = (42,)
    values: tuple = GRID_VALUES
    taus: tuple = TAUS_GABA_MS
    scales: tuple = CANONICAL_SCALES
    reduced: str = ""  # what a quick plan leaves out, in words ("" for the lab's recipe)

    def attrs(self) -> dict:
        """What must match for a reproduction store to be continued: every field but the
        words (``reduced``) and the epoch count (the store's name carries it)."""
        return {f"plan.{k}": repr(v) for k, v in dataclasses.asdict(self).items()
                if k not in ("reduced", "epochs")}  # fmt: skip


def get_plan(experiment, scale: str, tier=None, epochs=None) -> Plan:
    """The plan of ``experiment`` (an :class:`~ei_sim.analysis.reproduce.experiment.Experiment`)
    at ``scale``, with optional tier / epoch overrides (said in ``reduced``)."""
    if scale not in experiment.plans:
        raise ValueError(f"unknown scale {scale!r}; choose {' or '.join(experiment.plans)}")
    plan = experiment.plans[scale]
    notes = []
    if tier is not None and tier != plan.tier:
        notes.append(f"tier {tier} (override)")
        plan = dataclasses.replace(plan, tier=tier)
    if epochs is not None and epochs != plan.epochs:
        if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
            raise ValueError(f"--epochs must be an integer >= 1, got {epochs}")
        notes.append(f"{epochs} epochs (the lab's: {plan.epochs})")
        plan = dataclasses.replace(plan, epochs=epochs)
    if notes:
        plan = dataclasses.replace(plan, reduced="; ".join(filter(None, [plan.reduced, *notes])))
    return plan
