"""The rate-model run's file (``kind = "wilson_cowan"``): one HDF5 file per training.

Layout (schema_version 2): root attributes ``model.*`` (the :class:`ei_sim.rate.network.WCConfig`),
``train.*`` (the :class:`ei_sim.rate.train.RateTrainConfig`), provenance, ``tier``, ``seed``,
``best_accuracy`` and ``best_epoch`` (counting from 1, as a spiking run's); datasets
``history/<name>`` (per epoch, per step and per LDS check) and the best-epoch and final
weights ``params/<block>``, ``final_params/<block>``. The root carries the file's checksum
(:mod:`ei_sim.store.checksum`), verified by :func:`load_rate_run`.

Files of schema_version 1, and those written before schema_version existed (read as 1),
stored ``best_epoch`` counting from 0; :func:`load_rate_run` adds 1 to theirs, so every
reader sees it counting from 1.
"""

from __future__ import annotations

import numpy as np

from ei_sim.sim.config import from_attrs, to_attrs
from ei_sim.store.atomic import atomic_h5
from ei_sim.store.attrs import provenance, read_attrs, write_attrs
from ei_sim.store.checksum import ensure_sound
from ei_sim.store.kinds import Kind, open_readable, register_kind, schema_version
from ei_sim.training.config import config_attrs

KIND = register_kind(Kind("wilson_cowan", "a rate-model run", 2,
                          "write one with 'ei-sim rate train --out'",
                          requires=("params", "final_params", "history"))).name  # fmt: skip
ONE_BASED_BEST_EPOCH_SINCE = 2


def write_rate_run(path: str, result, config, train, tier: str, seed: int) -> None:
    """Write a :class:`ei_sim.rate.train.RateTrainResult` atomically (see the module doc)."""
    with atomic_h5(path, kind=KIND, seal=True) as fh:
        write_attrs(fh, to_attrs(config, "model."))
        write_attrs(fh, config_attrs(train))
        write_attrs(fh, provenance(seed))
        write_attrs(fh, {"tier": tier, "seed": seed})
        write_attrs(fh, {"best_accuracy": result.best_accuracy, "best_epoch": result.best_epoch})
        for name, values in result.history.items():
            fh.create_dataset(f"history/{name}", data=values)
        for group, params in (("params", result.params), ("final_params", result.final_params)):
            for name, value in params._asdict().items():
                fh.create_dataset(f"{group}/{name}", data=np.asarray(value))


def load_rate_run(path: str, which: str = "params"):
    """``(WCConfig, Params, attrs)`` of a run file (best-epoch weights by default);
    ``attrs["best_epoch"]`` counts from 1 whatever the file's schema_version."""
    import jax.numpy as jnp

    from ei_sim.rate import network as wc
    from ei_sim.store.kinds import KINDS

    with open_readable(path, "write one with 'ei-sim rate train --out'") as fh:
        attrs = read_attrs(fh)
        if attrs.get("kind") != KIND or which not in fh:
            raise ValueError(f"{path} is not a rate-model run file (ei-sim rate train --out)")
        version, known = schema_version(fh), KINDS[KIND].schema_version
        if version > known:
            raise ValueError(f"{path} is a rate-model run of schema_version {version}; this "
                             f"ei-sim reads up to {known}: upgrade ei-sim")  # fmt: skip
        ensure_sound(fh, path)
        if version < ONE_BASED_BEST_EPOCH_SINCE and "best_epoch" in attrs:
            attrs["best_epoch"] = int(attrs["best_epoch"]) + 1
        params = wc.Params(**{n: jnp.asarray(fh[f"{which}/{n}"][...]) for n in wc.Params._fields})
    return from_attrs(wc.WCConfig, attrs, "model."), params, attrs
