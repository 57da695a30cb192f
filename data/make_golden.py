"""Write the golden files in data/golden/ (see data/README.md).

    python data/make_golden.py brian2     # needs the validate extra (brian2 2.9.0)

``brian2``: for each small reference network of ``tests/reference_networks.py``, the exact
network (weights, initial state, input spikes) and Brian2's spike trains for it, so that the
spike-for-spike comparison also runs where Brian2 is not installed
(``tests/test_brian2_golden.py``).
"""

from __future__ import annotations

import os
import sys

import jax
import jax.numpy as jnp
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))

from brian2_reference import run_brian2  # noqa: E402
from reference_networks import PING_SMALL, init_state, ping_small, va_small, va_state  # noqa: E402

from ei_sim.config import to_attrs  # noqa: E402
from ei_sim.store.atomic import atomic_h5  # noqa: E402
from ei_sim.store.attrs import provenance, write_attrs  # noqa: E402


def _cases():
    """(name, config, weights, v0_e, v0_i, g0, inputs (T, n_in) or None, float32 start)."""
    weights, inputs = ping_small(0)
    with jax.enable_x64(True):
        s = init_state(PING_SMALL, jax.random.PRNGKey(3), 1, dtype=jnp.float64)
        yield "ping_small_f64", PING_SMALL, weights, s.e.v_mV[0], s.i.v_mV[0], None, inputs[:, 0]
    weights, inputs = ping_small(1)
    s = init_state(PING_SMALL, jax.random.PRNGKey(4), 1)  # float32 start, as the f32 test
    v_e, v_i = (np.asarray(x[0], np.float32).astype(np.float64) for x in (s.e.v_mV, s.i.v_mV))
    yield "ping_small_f32", PING_SMALL, weights, v_e, v_i, None, inputs[:, 0]
    config, weights, g0 = va_small()
    with jax.enable_x64(True):
        s = va_state(config, g0, 5, jnp.float64)
        yield "va_small", config, weights, s.e.v_mV[0], s.i.v_mV[0], g0, None


def write_brian2(path: str) -> None:
    import brian2

    with atomic_h5(path, kind="brian2_reference") as fh:
        write_attrs(fh, {"brian2_version": brian2.__version__, **provenance()})
        for name, config, weights, v_e, v_i, g0, inputs in _cases():
            v_e, v_i = np.asarray(v_e, np.float64), np.asarray(v_i, np.float64)
            spikes = run_brian2(config, weights, v_e, v_i, inputs, g0=g0)
            group = fh.create_group(name)
            write_attrs(group, to_attrs(config, "config."))
            for key, w in weights.items():
                group.create_dataset(f"weights/{key}", data=np.asarray(w, np.float64),
                                     compression="gzip")  # fmt: skip
            group["v0_e_mV"], group["v0_i_mV"] = v_e, v_i
            for pop, (ge, gi) in (g0 or {}).items():
                group[f"g0_{pop}/exc_uS"], group[f"g0_{pop}/inh_uS"] = ge, gi
            if inputs is not None:
                group.create_dataset("inputs", data=np.asarray(inputs, bool), compression="gzip")
            for pop, raster in zip(("e", "i"), spikes, strict=True):
                step, index = np.nonzero(raster)
                group[f"brian2/{pop}/step"] = step.astype(np.int32)
                group[f"brian2/{pop}/index"] = index.astype(np.int32)
            print(f"{name}: {int(spikes[0].sum())} E and {int(spikes[1].sum())} I spikes")


if __name__ == "__main__":
    what = sys.argv[1:] or ["brian2"]
    if what != ["brian2"]:
        sys.exit("usage: python data/make_golden.py brian2")
    write_brian2(os.path.join(HERE, "golden", "brian2_reference.h5"))
