"""The classifier network class the COBA and PING presets build; it lives in the core,
:mod:`ei_sim.classifier` (this name is kept for existing imports)."""

from ei_sim.classifier import EIClassifier

__all__ = ["EIClassifier"]
