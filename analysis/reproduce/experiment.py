"""What an experiment of ``ei-sim reproduce`` is: a name, plans per scale, a run, a result.

An :class:`Experiment` (one module of :mod:`ei_sim.analysis.reproduce` defines it as a
module-level ``EXPERIMENTS`` tuple; :func:`experiments` finds them) has:

- ``plans``: ``{scale: Plan}`` (:mod:`~ei_sim.analysis.reproduce.plans`): ``full`` is the
  lab's recipe, ``quick`` a miniature;
- ``run(camp, plan) -> Result``: runs (or reads back) its stages in a campaign
  (:class:`~ei_sim.analysis.reproduce.stages.Campaign`) and returns a :class:`Result`;
- ``claims``: the lab's claims it can judge; each comes back as a :class:`Verdict`
  (``reproduced``, ``partly``, ``not reproduced``; ``not yet run`` when its stages are
  missing), with its evidence and the training epochs behind it.

A :class:`Result` holds the comparison rows (:class:`~ei_sim.analysis.reproduce.table.Row`),
the figures written beside the store, statements in words, and the verdicts.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field

STATUSES = ("reproduced", "partly", "not reproduced", "not yet run")


@dataclass(frozen=True)
class Verdict:
    """One of the lab's claims and what ei-sim's runs say of it."""

    claim: str
    status: str
    evidence: str = ""
    epochs: int | None = None

    def __post_init__(self):
        if self.status not in STATUSES:
            raise ValueError(f"verdict status must be one of {STATUSES}, got {self.status!r}")

    def line(self) -> str:
        at = "" if self.epochs is None else f" ({self.epochs} epochs)"
        why = f": {self.evidence}" if self.evidence else ""
        return f"{self.claim}: **{self.status}**{at}{why}"


@dataclass(frozen=True)
class Result:
    rows: tuple = ()
    figures: tuple = ()
    statements: tuple = ()
    verdicts: tuple = ()


@dataclass(frozen=True)
class Experiment:
    name: str
    title: str
    plans: dict
    run: Callable
    claims: tuple = ()
    grid: bool = False  # trains on the grid executor (the --executor options apply)
    lab_epochs: int = 100  # the epochs behind the lab's numbers it is compared with
    notes: tuple = field(default=())


def experiments() -> dict[str, Experiment]:
    """Every experiment defined by a module of this package, by name."""
    import ei_sim.analysis.reproduce as package

    found: dict[str, Experiment] = {}
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        for exp in getattr(module, "EXPERIMENTS", ()):
            if exp.name in found:
                raise ValueError(f"two experiments are called {exp.name!r}")
            found[exp.name] = exp
    order = ("budgets", "coupling", "grid", "diagonal", "meanfield")
    return {n: found[n] for n in sorted(found, key=lambda n: (n not in order,
                                                             order.index(n) if n in order else 0,
                                                             n))}  # fmt: skip


def not_yet_run(claims, why: str = "its trainings have not been run") -> tuple:
    return tuple(Verdict(c, "not yet run", why) for c in claims)
