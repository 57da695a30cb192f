"""Network definitions: presets returning frozen model objects.

Each model has ``.config`` (a :class:`ei_sim.config.NetworkConfig`), ``.init_weights(key)``
and ``.init_state(key, batch)``; variants are made with ``.replace(**changes)``.
"""

from models.coba import coba
from models.ping import ping
from models.va_coba import va_coba

MODELS = {"coba": coba, "ping": ping, "va_coba": va_coba}


def get_model(name: str, **changes):
    """The preset called ``name`` with ``changes`` applied; ValueError names the choices."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}")
    return MODELS[name](**changes)


__all__ = ["MODELS", "coba", "get_model", "ping", "va_coba"]
