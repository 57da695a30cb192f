"""Monitors and chunked runs: the same spikes and states as one dense scan."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ei_sim.data.encoding import poisson_events
from ei_sim.models.ping import ping
from ei_sim.models.va_coba import va_coba
from ei_sim.sim.engine import simulate_jit
from ei_sim.sim.monitors import Monitors, StateMonitor, decode_spikes, pack_spikes
from ei_sim.sim.recorder import chunk_length, record
from ei_sim.sim.sparse import SparseBlock, hstack

FULL = ("spikes_e", "spikes_i", "v_e", "g_exc_e", "g_inh_e", "v_i", "g_exc_i", "g_inh_i")


def _f64(tree):
    return jax.tree.map(lambda a: a.astype(jnp.float64) if a.dtype == jnp.float32 else a, tree)


def _small_va(t_ms=40.0):
    model = va_coba(t_ms=t_ms, n_e=320, n_i=80, p_connect=0.1, w_e_uS=1.2, w_i_uS=8.0)
    return (
        model,
        model.init_weights(jax.random.PRNGKey(0)),
        model.init_state(jax.random.PRNGKey(1), 2),
    )


def test_pack_and_decode_round_trip():
    rng = np.random.default_rng(3)
    raster = rng.random((7, 3, 45)) < 0.2  # 45 cells: two words, the second partly padding
    words = np.stack([np.asarray(pack_spikes(jnp.asarray(r, jnp.float32))) for r in raster])
    assert words.shape == (7, 3, 2) and words.dtype == np.uint32
    ev = decode_spikes(words, 7, start_step=100)
    t, b, n = np.nonzero(raster)
    np.testing.assert_array_equal(ev.step, t + 100)
    np.testing.assert_array_equal(ev.trial, b)
    np.testing.assert_array_equal(ev.index, n)
    assert ev.step.dtype == np.int64
    np.testing.assert_array_equal(ev.time_ms(0.1), (t + 100) * 0.1)


def test_chunked_events_equal_one_dense_scan_across_refractory_boundaries():
    model, w, s0 = _small_va()
    config = model.config
    chunk = 37  # boundaries at 37, 74, ...: inside refractory periods (5 ms = 50 steps)
    n_ref = config.refractory_steps(config.cell_e)
    monitors = Monitors(states=(StateMonitor("e", (0, 5, 319), ("v_mV", "g_exc_uS", "g_inh_uS")),
                                StateMonitor("i", (79, 2), ("v_mV",))))  # fmt: skip
    with jax.enable_x64(True):
        w, s0 = _f64(w), _f64(s0)
        _, dense = simulate_jit(w, s0, None, config, record=FULL, n_steps=config.n_steps)
        final, rec = record(w, s0, None, config, monitors, chunk_steps=chunk,
                            n_steps=config.n_steps)  # fmt: skip
    raster_e = np.asarray(dense["spikes_e"])
    assert raster_e.sum() > 100
    # some E cell is refractory across some chunk boundary (spiked < n_ref steps before it)
    boundaries = range(chunk, config.n_steps, chunk)
    assert any(raster_e[max(0, b - n_ref + 1) : b].any() for b in boundaries)
    for pop in ("e", "i"):
        np.testing.assert_array_equal(rec.raster(pop, getattr(config, f"n_{pop}")),
                                      np.asarray(dense[f"spikes_{pop}"]))  # fmt: skip
    np.testing.assert_array_equal(rec.traces["e.v_mV"], np.asarray(dense["v_e"])[:, :, [0, 5, 319]])
    np.testing.assert_array_equal(rec.traces["e.g_inh_uS"],
                                  np.asarray(dense["g_inh_e"])[:, :, [0, 5, 319]])  # fmt: skip
    np.testing.assert_array_equal(rec.traces["i.v_mV"], np.asarray(dense["v_i"])[:, :, [79, 2]])
    assert rec.spikes["e"].step.dtype == np.int64 and rec.n_steps == config.n_steps
    np.testing.assert_array_equal(np.asarray(final.e.refractory_steps) >= 0, True)


def test_traces_every_k_steps_are_rows_of_the_full_trace_and_bins_sum_spikes():
    model, w, s0 = _small_va(t_ms=30.5)  # 305 steps: the last interval and bin are partial
    config = model.config
    monitors = Monitors(states=(StateMonitor("e", (7, 1), ("v_mV", "g_exc_uS"), every_steps=4),),
                        bin_steps=10)  # fmt: skip
    _, dense = simulate_jit(w, s0, None, config, record=FULL, n_steps=config.n_steps)
    _, rec = record(w, s0, None, config, monitors, chunk_steps=50, n_steps=config.n_steps)
    assert chunk_length(monitors, config.n_steps, 50) == 60  # a multiple of lcm(4, 10)
    np.testing.assert_array_equal(rec.traces["e.v_mV"], np.asarray(dense["v_e"])[::4][:, :, [7, 1]])
    np.testing.assert_array_equal(rec.traces["e.g_exc_uS"],
                                  np.asarray(dense["g_exc_e"])[::4][:, :, [7, 1]])  # fmt: skip
    spikes = np.asarray(dense["spikes_e"]).sum(axis=2)  # (T, B)
    padded = np.concatenate([spikes, np.zeros((5, 2), spikes.dtype)])
    np.testing.assert_array_equal(rec.counts["e"], padded.reshape(31, 10, 2).sum(axis=1))
    np.testing.assert_allclose(rec.activity("e", config.n_e)[0], padded[:10].mean(0) / config.n_e)


def test_chunked_run_with_input_events_equals_dense_scan():
    model = ping(t_ms=30.0, n_e=64, n_i=16, w_in_mean=2.4)
    config = model.config
    w = model.init_weights(jax.random.PRNGKey(2))
    s0 = model.init_state(jax.random.PRNGKey(3), 3)
    images = np.random.default_rng(0).random((3, config.n_in))
    events = poisson_events(images, config.n_steps, config.p_spike_per_unit_intensity, 0)
    _, dense = simulate_jit(w, s0, events, config, record=("spikes_e", "spikes_i", "v_e"))
    final, rec = record(w, s0, events, config,
                        Monitors(states=(StateMonitor("e", (0, 63)),)), chunk_steps=70)  # fmt: skip
    assert np.asarray(dense["spikes_e"]).sum() > 0
    np.testing.assert_array_equal(rec.raster("e", config.n_e), np.asarray(dense["spikes_e"]))
    np.testing.assert_array_equal(rec.raster("i", config.n_i), np.asarray(dense["spikes_i"]))
    np.testing.assert_array_equal(rec.traces["e.v_mV"], np.asarray(dense["v_e"])[:, :, [0, 63]])
    np.testing.assert_array_equal(np.asarray(final.acc.count_e),
                                  np.asarray(dense["spikes_e"]).sum(0))  # fmt: skip


def test_hstack_keeps_rows_grouped_and_block_order_within_rows():
    rng = np.random.default_rng(1)
    blocks = [SparseBlock.from_dense(rng.random((6, n)) * (rng.random((6, n)) < 0.4))
              for n in (5, 3, 7)]  # fmt: skip
    joined = hstack(blocks)
    rows = np.concatenate([np.asarray(b.rows) for b in blocks])
    order = np.argsort(rows, kind="stable")
    offsets = np.cumsum([0, 5, 3])
    cols = np.concatenate([np.asarray(b.cols) + o for b, o in zip(blocks, offsets, strict=True)])
    np.testing.assert_array_equal(np.asarray(joined.rows), rows[order])
    np.testing.assert_array_equal(np.asarray(joined.cols), cols[order])
    dense = np.concatenate([np.asarray(b.todense()) for b in blocks], 1)
    np.testing.assert_array_equal(np.asarray(joined.todense()), dense)


@pytest.mark.parametrize(
    "make, fragment",
    [
        (lambda: Monitors(states=(StateMonitor("e", (320,)),)).check(_small_va()[0].config),
         "out of range"),
        (lambda: Monitors(states=(StateMonitor("i", (-1,)),)).check(_small_va()[0].config),
         "out of range"),
        (lambda: StateMonitor("e", (0,), every_steps=0), "every_steps"),
        (lambda: StateMonitor("e", (0,), ("w",)), "variables"),
        (lambda: StateMonitor("x", (0,)), "population"),
        (lambda: Monitors(bin_steps=0), "bin_steps"),
        (lambda: chunk_length(Monitors(), 100, 0), "chunk_steps"),
    ],
)  # fmt: skip
def test_bad_monitor_settings_raise_one_line(make, fragment):
    with pytest.raises(ValueError, match=fragment) as info:
        make()
    assert "\n" not in str(info.value)
