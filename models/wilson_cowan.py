"""The Wilson-Cowan / TIDE rate model as a preset: the default :class:`WCConfig` (256 units,
80 % E, tau_E 20 ms, tau_I 10 ms, dt 1 ms, K = 25 internal Euler steps).

The network itself (its equations, parameters, readout and penalties) is
:mod:`ei_sim.rate.network`; its trainer is :mod:`ei_sim.rate.train`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ei_sim.sim.model import Preset

if TYPE_CHECKING:
    from ei_sim.rate.network import WCConfig


def wilson_cowan(**changes) -> WCConfig:
    """The rate model's default configuration with ``changes`` applied."""
    from ei_sim.rate.network import WCConfig  # JAX: imported when the model is built

    return WCConfig(**changes)


PRESET = Preset(
    "wilson_cowan",
    wilson_cowan,
    "the Wilson-Cowan / TIDE rate model (256 units, 80 % E)",
    family="rate",
)
