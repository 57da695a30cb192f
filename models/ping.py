"""PING preset: the classifier network with the E->I->E loop.

W_in mean 1.2, W_out scale 500. The ei-strength (W_EI mean) defaults to 1.0 with ei-ratio 2
(W_IE mean 2.0) **(chosen)**: the middle of the seed lab's grid, where the untrained network
already shows a gamma rhythm.
"""

from ei_sim.sim.classifier import EIClassifier
from ei_sim.sim.config import NetworkConfig
from ei_sim.sim.model import Preset


def ping(**changes) -> EIClassifier:
    """The canonical PING network (W_in mean 1.2, W_EI mean 1.0, W_IE mean 2.0, W_out scale
    500); keyword arguments replace preset or config fields."""
    base = EIClassifier(
        name="ping", config=NetworkConfig(name="ping"), w_in_mean=1.2, ei_strength=1.0,
        ei_ratio=2.0, w_out_scale=500.0,
    )  # fmt: skip
    return base.replace(**changes) if changes else base


PRESET = Preset(
    "ping",
    ping,
    "the MNIST classifier with the E->I->E loop (W_in 1.2, W_EI 1, W_IE 2)",
    family="classifier",
    settings=True,
)
