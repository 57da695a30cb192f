"""What each experiment runs at each scale: ``full`` is the lab's recipe, ``quick`` a reduced
version for a 2-core laptop (well under an hour) whose table says what it reduced."""

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
        return {f"plan.{k}": repr(v) for k, v in dataclasses.asdict(self).items() if k != "reduced"}


PLANS = {
    "budgets": {
        "full": Plan(epochs=100),
        "quick": Plan(
            epochs=3,
            budgets=("off", "0.2"),
            reduced="3 epochs instead of 100; budgets off and 0.2 only",
        ),
    },
    "coupling": {
        "full": Plan(epochs=30),
        "quick": Plan(epochs=5, reduced="a 5-epoch baseline instead of 30 epochs"),
    },
    "grid": {
        "full": Plan(epochs=100),
        "quick": Plan(
            tier="tiny",
            epochs=4,
            reduced="tiny tier (64 E cells, 100 ms trials, "
            "400 samples), 4 epochs instead of the medium tier at 100",
        ),
    },
    "diagonal": {
        "full": Plan(epochs=100, values=DIAGONAL_VALUES, seeds=(42, 43, 44)),
        "quick": Plan(
            tier="tiny",
            epochs=4,
            values=DIAGONAL_VALUES,
            seeds=(42, 43, 44),
            reduced="tiny tier (64 E cells, 100 ms trials, 400 samples), 4 epochs "
            "instead of the medium tier at 100",
        ),
    },
    "meanfield": {
        "full": Plan(epochs=100, seeds=(42, 43, 44)),
        "quick": Plan(
            epochs=2,
            reduced="spiking networks trained 2 epochs with one seed "
            "instead of 100 epochs with three",
        ),
    },
}


def get_plan(experiment: str, scale: str, tier=None, epochs=None) -> Plan:
    """The plan of ``experiment`` at ``scale`` with optional tier / epoch overrides."""
    if experiment not in PLANS:
        raise ValueError(f"unknown experiment {experiment!r}; choose one of {', '.join(PLANS)}")
    if scale not in PLANS[experiment]:
        raise ValueError(f"unknown scale {scale!r}; choose quick or full")
    plan = PLANS[experiment][scale]
    notes = []
    if tier is not None and tier != plan.tier:
        notes.append(f"tier {tier} (override)")
        plan = dataclasses.replace(plan, tier=tier)
    if epochs is not None and epochs != plan.epochs:
        if epochs < 1:
            raise ValueError(f"--epochs must be >= 1, got {epochs}")
        notes.append(f"{epochs} epochs (override)")
        plan = dataclasses.replace(plan, epochs=epochs)
    if notes:
        plan = dataclasses.replace(plan, reduced="; ".join(filter(None, [plan.reduced, *notes])))
    return plan
