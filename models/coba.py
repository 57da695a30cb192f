"""COBA preset: the classifier network without the E-I loop (ei-strength 0), W_in mean 0.3."""

from ei_sim.classifier import EIClassifier
from ei_sim.config import NetworkConfig


def coba(**changes) -> EIClassifier:
    """The canonical COBA network (no E-I loop: ei-strength 0; W_in mean 0.3, W_out scale
    100); keyword arguments replace preset or config fields."""
    base = EIClassifier(
        name="coba", config=NetworkConfig(name="coba"), w_in_mean=0.3, ei_strength=0.0,
        w_out_scale=100.0,
    )  # fmt: skip
    return base.replace(**changes) if changes else base
