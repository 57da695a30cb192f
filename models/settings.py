"""Settings: named sets of network values applied on top of a preset.

``canonical`` is the recipe's nominal values (the defaults of
:class:`ei_sim.sim.config.NetworkConfig`:
refractory periods 3 ms for E and 1.5 ms for I).

``lab`` is how the reference lab's code (the public ``pinglab`` repository) actually ran its
published results:

- Its simulator computed the refractory step counts once, at import, for a time step of
  0.25 ms (12 E steps, 6 I steps) and then ran every published result at ``dt = 0.1 ms``, so
  those results had refractory periods of **1.2 ms (E) and 0.6 ms (I)** (source:
  ``src/cli/models.py`` @ 0b8d6e64 and the lab's ``PLAN.md``; its later documents adopt
  1.2 / 0.6 ms explicitly). ``lab`` sets exactly those periods; at ``dt = 0.1 ms`` they are
  the lab's 12 / 6 steps.
- Its trials started every cell **at rest** (V = E_L = -65 mV): the membrane initialiser
  scatters V uniformly in [E_L, V_th] only when asked (``randomize=True``), and the network
  class its trainings used never asked (``init_lif_state`` and ``build_net`` in
  ``src/cli/models.py`` and ``src/cli/config.py`` of that era). ``lab`` sets the initial
  range to [-65, -65] mV.

- Its readout's subtractive reset **passed the surrogate gradient**: the reset subtracts the
  fast-sigmoid spike of the readout unit (``COBANet._step_body`` in ``src/cli/models.py`` @
  0b8d6e64), so backward d v_out / d v = 1 - theta H'(v - theta). ``lab`` sets
  ``out_reset_gradient = "surrogate"`` (added 2026-12-07: with it ei-sim's COBA under the 0.2
  budget and the grid's no-loop cell train to the lab's accuracies and rates; ei-sim's
  canonical readout detaches the reset).

The other network values of the lab's code (cell constants, synaptic time constants, input
rate, weight statistics, the readout's forward equations) equal the canonical ones. One known
difference is not in ``lab``: the lab's loop conductances add, then decay (g <- (g + s W) d),
so its loop weights act as d times ei-sim's (W_EI x 0.951, W_IE x 0.989 at dt 0.1 ms).

Recipe-level differences of the lab (which W_in its grid runner passed, which epoch its grid
reported rates from, its gamma measure, its mean-field sigma convention) are not network
values; they are documented where they apply (``ei-sim reproduce``, :mod:`ei_sim.sim.spectrum`,
:mod:`ei_sim.analysis.meanfield`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ei_sim.sim.config import CELL_E, CELL_I, CellParams


@dataclass(frozen=True)
class Setting:
    """A named set of replacements for preset/config fields."""

    name: str
    description: str
    changes: dict = field(default_factory=dict)


SETTINGS = {
    "canonical": Setting("canonical", "the recipe's nominal values (refractory 3 / 1.5 ms)"),
    "lab": Setting(
        "lab",
        "how the reference lab's code ran at dt 0.1 ms: refractory 1.2 ms (E) / 0.6 ms (I), "
        "every trial starting at rest (V = E_L), the readout's reset passing the surrogate "
        "gradient",
        {
            "out_reset_gradient": "surrogate",
            "cell_e": CellParams(CELL_E.c_nF, CELL_E.g_leak_uS, t_ref_ms=1.2),
            "cell_i": CellParams(CELL_I.c_nF, CELL_I.g_leak_uS, t_ref_ms=0.6),
            "v_init_low_mV": -65.0,
            "v_init_high_mV": -65.0,
        },
    ),
}


def get_setting(name: str) -> Setting:
    """The setting called ``name``; ValueError names the choices."""
    if name not in SETTINGS:
        raise ValueError(f"unknown setting {name!r}; choose one of {', '.join(SETTINGS)}")
    return SETTINGS[name]
