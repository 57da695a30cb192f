"""The Wilson-Cowan rate model as a preset: its equations, parameters and defaults.

The network itself (``WCConfig``, ``Params``, the forward-Euler ``step`` and ``relax``, the
readout and the penalties it trains with) lives in the core, :mod:`ei_sim.rate`, so that
the trainer (:mod:`ei_sim.rate_train`) needs nothing of ``models``; this module re-exports
it under its historical name (``from models import wilson_cowan as wc``). The preset is the
default :class:`WCConfig` (256 units, 80 % E, tau_E 20 ms, tau_I 10 ms, dt 1 ms, K = 25).
"""

from ei_sim.rate import (
    ACTIVATIONS,
    DALE_MASK,
    READOUT_EPS,
    RECURRENT,
    Drive,
    Params,
    Rates,
    WCConfig,
    activation,
    ei_ratio,
    ei_ratio_penalty,
    fixed_point_residual,
    forward,
    init_params,
    input_drive,
    pre_activations,
    readout_logits,
    relax,
    run,
    step,
    zero_rates,
)


def preset(**changes) -> WCConfig:
    """The rate model's default configuration with ``changes`` applied."""
    return WCConfig(**changes)


__all__ = [
    "ACTIVATIONS", "DALE_MASK", "READOUT_EPS", "RECURRENT", "Drive", "Params", "Rates",
    "WCConfig", "activation", "ei_ratio", "ei_ratio_penalty", "fixed_point_residual",
    "forward", "init_params", "input_drive", "pre_activations", "preset", "readout_logits",
    "relax", "run", "step", "zero_rates",
]  # fmt: skip
