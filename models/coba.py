"""COBA preset: the classifier network without the E-I loop (ei-strength 0), W_in mean 0.3."""

from ei_sim.sim.classifier import EIClassifier
from ei_sim.sim.config import NetworkConfig
from ei_sim.sim.model import Preset


def coba(**changes) -> EIClassifier:
    """The canonical COBA network (no E-I loop: ei-strength 0; W_in mean 0.3, W_out scale
    100); keyword arguments replace preset or config fields."""
    base = EIClassifier(
        name="coba", config=NetworkConfig(name="coba"), w_in_mean=0.3, ei_strength=0.0,
        w_out_scale=100.0,
    )  # fmt: skip
    return base.replace(**changes) if changes else base


PRESET = Preset(
    "coba",
    coba,
    "the MNIST classifier without the E-I loop (W_in 0.3, W_out scale 100)",
    family="classifier",
    settings=True,
)
