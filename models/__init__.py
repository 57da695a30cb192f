"""Network definitions: presets returning frozen model objects.

Each model has ``.config`` (a :class:`ei_sim.config.NetworkConfig`), ``.init_weights(key)``
and ``.init_state(key, batch)``; variants are made with ``.replace(**changes)``.
"""

from models.coba import coba
from models.ping import ping
from models.settings import SETTINGS, get_setting
from models.va_coba import va_coba

MODELS = {"coba": coba, "ping": ping, "va_coba": va_coba}
SETTING_MODELS = ("coba", "ping")  # the classifier presets a setting applies to


def get_model(name: str, setting: str = "canonical", **changes):
    """The preset called ``name`` under ``setting`` (:mod:`models.settings`), with ``changes``
    applied on top; ValueError names the choices."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}")
    chosen = get_setting(setting)
    if chosen.changes and name not in SETTING_MODELS:
        raise ValueError(
            f"setting {setting!r} applies to {' and '.join(SETTING_MODELS)}, not {name!r}"
        )
    if name in SETTING_MODELS:
        changes = {**chosen.changes, "setting": setting, **changes}
    return MODELS[name](**changes)


__all__ = ["MODELS", "SETTINGS", "coba", "get_model", "get_setting", "ping", "va_coba"]
