"""What a network is to the rest of ei-sim: the :class:`Model` protocol, the :class:`Preset`
that names one, and the registry that rebuilds a stored run's model.

A model is a frozen object with a ``name``, a :class:`~ei_sim.sim.config.NetworkConfig`
(``config``) and three methods: ``init_weights(key) -> Weights``, ``init_state(key, batch) ->
NetState`` and ``replace(**changes)`` (preset or config fields). The simulator
(:mod:`ei_sim.sim.run`), the trainer (:mod:`ei_sim.training.spiking`) and every command use
only these. A *preset* (one module of the ``ei_sim.models`` package, see its docstring) is a
function returning such a model, described by a :class:`Preset`.

A run file stores its model's fields as ``model.*`` attributes; :func:`model_from_attrs`
rebuilds the model with the builder of its ``model.type`` (the classifier of the COBA and
PING presets, :class:`~ei_sim.sim.classifier.EIClassifier`, for every file written so far;
another type is added with :func:`register_model_type`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from ei_sim.sim.classifier import EIClassifier
from ei_sim.sim.config import NetworkConfig

FAMILIES = ("classifier", "network", "rate")


@runtime_checkable
class Model(Protocol):
    """A spiking network ei-sim can simulate (and, for a classifier, train)."""

    name: str
    config: NetworkConfig

    def init_weights(self, key): ...

    def init_state(self, key, batch: int): ...

    def replace(self, **changes) -> Model: ...


@dataclass(frozen=True)
class Preset:
    """A named network: ``build(**changes)`` returns the model.

    ``family``: ``"classifier"`` (an MNIST classifier: ``ei-sim train``, ``grid``, ``sweep``
    and ``simulate`` take it), ``"network"`` (a spiking network without input or readout:
    ``simulate`` only) or ``"rate"`` (the rate model: ``ei-sim rate``). ``settings``: whether
    the named settings (``canonical``, ``lab``; :mod:`ei_sim.models.settings`) apply to it.
    """

    name: str
    build: Callable[..., object]
    summary: str
    family: str = "classifier"
    settings: bool = False

    def __post_init__(self):
        if self.family not in FAMILIES:
            raise ValueError(f"preset {self.name!r}: family must be one of {FAMILIES}")


MODEL_TYPES: dict[str, Callable[[dict], object]] = {"ei_classifier": EIClassifier.from_attrs}
LEGACY_MODEL_TYPE = "ei_classifier"  # run files hold no model.type: all are classifiers


def register_model_type(name: str, from_attrs: Callable[[dict], object]) -> None:
    """Register ``from_attrs(attrs) -> model`` for runs whose ``model.type`` is ``name``."""
    MODEL_TYPES[name] = from_attrs


def model_from_attrs(attrs: dict):
    """The model stored in a run's ``model.*`` attributes, built by its registered type."""
    name = str(attrs.get("model.type", LEGACY_MODEL_TYPE))
    if name not in MODEL_TYPES:
        raise ValueError(f"no builder for model type {name!r} is registered "
                         f"(known: {', '.join(sorted(MODEL_TYPES))})")  # fmt: skip
    return MODEL_TYPES[name](attrs)
