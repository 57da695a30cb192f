"""The presets: named networks, one module each.

A preset module defines a function returning a model (:class:`ei_sim.sim.model.Model`) and
describes it with a module-level ``PRESET = Preset(name, build, summary, family, settings)``
(:class:`ei_sim.sim.model.Preset`). Every module of this package that defines ``PRESET`` is
found when the package is imported (:data:`PRESETS`), and every command takes it from
there: a new preset is one new module, nothing else to edit. The presets shipped:

- ``coba``: the MNIST classifier without the E-I loop (W_in mean 0.3, W_out scale 100);
- ``ping``: the classifier with the E->I->E loop (W_in 1.2, W_EI 1, W_IE 2, W_out scale 500);
- ``va_coba``: the Vogels-Abbott benchmark network (4,000 cells, no input or readout);
- ``wilson_cowan``: the rate model (256 units, 80 % E).

Named settings (:mod:`ei_sim.models.settings`: ``canonical``, ``lab``) apply on top of the
presets that take them (``Preset.settings``).
"""

from __future__ import annotations

import importlib
import pkgutil

from ei_sim.models.settings import SETTINGS, get_setting
from ei_sim.sim.model import Preset


def _discover() -> dict[str, Preset]:
    found = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        preset = getattr(module, "PRESET", None)
        if isinstance(preset, Preset):
            if preset.name in found:
                raise ValueError(f"two presets are called {preset.name!r}")
            found[preset.name] = preset
    return found


PRESETS: dict[str, Preset] = _discover()


def names(*families: str) -> tuple[str, ...]:
    """The presets of the given families (all when none is given), in name order."""
    return tuple(n for n, p in PRESETS.items() if not families or p.family in families)


def get_model(name: str, setting: str = "canonical", **changes):
    """The preset called ``name`` under ``setting`` (:mod:`ei_sim.models.settings`), with
    ``changes`` applied on top; ValueError names the choices."""
    if name not in PRESETS:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(PRESETS)}")
    preset = PRESETS[name]
    chosen = get_setting(setting)
    if not preset.settings:
        if chosen.changes:
            takers = " and ".join(n for n, p in PRESETS.items() if p.settings)
            raise ValueError(f"setting {setting!r} applies to {takers}, not {name!r}")
        return preset.build(**changes)
    return preset.build(**{**chosen.changes, "setting": setting, **changes})


__all__ = ["PRESETS", "SETTINGS", "get_model", "get_setting", "names"]
