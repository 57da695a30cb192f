"""ei-sim against Brian2's stored spike trains (data/golden/brian2_reference.h5): the same
comparison as test_brian2.py, without Brian2 installed. The file holds each network whole
(weights, initial state, input spikes) and Brian2's spikes for it (data/make_golden.py)."""

import os

import h5py
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from reference_networks import first_difference_ms, run_ei_sim, with_state

from ei_sim.sim.config import NetworkConfig, from_attrs
from ei_sim.store.attrs import read_attrs

GOLDEN = os.path.join(os.path.dirname(__file__), "..", "data", "golden", "brian2_reference.h5")


def _case(name):
    with h5py.File(GOLDEN, "r") as fh:
        g = fh[name]
        config = from_attrs(NetworkConfig, read_attrs(g), "config.")
        weights = {k: np.asarray(v[()]) for k, v in g["weights"].items()}
        v0 = np.asarray(g["v0_e_mV"][()]), np.asarray(g["v0_i_mV"][()])
        g0 = {p: (np.asarray(g[f"g0_{p}/exc_uS"][()]), np.asarray(g[f"g0_{p}/inh_uS"][()]))
              for p in ("e", "i") if f"g0_{p}" in g} or None  # fmt: skip
        inputs = np.asarray(g["inputs"][()])[:, None] if "inputs" in g else None
        theirs = []
        for pop, n in (("e", config.n_e), ("i", config.n_i)):
            raster = np.zeros((config.n_steps, n), bool)
            raster[g[f"brian2/{pop}/step"][()], g[f"brian2/{pop}/index"][()]] = True
            theirs.append(raster)
    return config, weights, v0, g0, inputs, theirs


def test_golden_file_is_a_brian2_reference():
    with h5py.File(GOLDEN, "r") as fh:
        assert fh.attrs["kind"] == "brian2_reference" and fh.attrs["brian2_version"] == "2.9.0"
        assert set(fh) == {"ping_small_f64", "ping_small_f32", "va_small"}


def test_ping_spike_for_spike_float64_against_stored_brian2():
    config, weights, v0, g0, inputs, theirs = _case("ping_small_f64")
    with jax.enable_x64(True):
        ours = run_ei_sim(config, weights, with_state(config, *v0, g0), inputs, jnp.float64)
    assert ours[0].sum() > 20 and ours[1].sum() > 20
    np.testing.assert_array_equal(ours[0], theirs[0])
    np.testing.assert_array_equal(ours[1], theirs[1])


def test_ping_float32_against_stored_brian2():
    config, weights, v0, g0, inputs, theirs = _case("ping_small_f32")
    state0 = with_state(config, *v0, g0, dtype=jnp.float32)
    ours = run_ei_sim(config, weights, state0, inputs, jnp.float32)
    assert first_difference_ms(ours, theirs, config.dt_ms) >= 20.0
    for a, b in zip(ours, theirs, strict=True):
        assert abs(int(a.sum()) - int(b.sum())) <= max(1, 0.02 * b.sum())


@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "sparse"])
def test_va_small_against_stored_brian2(sparse):
    config, weights, v0, g0, inputs, theirs = _case("va_small")
    with jax.enable_x64(True):
        state0 = with_state(config, *v0, g0)
        ours = run_ei_sim(config, weights, state0, None, jnp.float64, sparse=sparse)
    assert min(r.sum() / r.shape[1] / (config.t_ms * 1e-3) for r in theirs) > 5.0
    assert first_difference_ms(ours, theirs, config.dt_ms) >= 50.0
    for a, b in zip(ours, theirs, strict=True):
        assert abs(int(a.sum()) - int(b.sum())) <= 0.02 * b.sum()
