"""Single-cell and network checks of the engine against analytic results and itself."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ei_sim.data.encoding import events_from_dense, poisson_events
from ei_sim.sim.config import NetworkConfig
from ei_sim.sim.engine import Weights, init_state, simulate, simulate_jit, step

TINY = NetworkConfig(n_in=20, n_e=12, n_i=4, n_out=3, t_ms=30.0)


def _one_cell(config, g_exc=0.0, g_inh=0.0, v0=-65.0, n_steps=200, record=("v_e", "spikes_e")):
    """One E cell with conductances held constant (infinite synaptic time constants)."""
    state = init_state(config, jax.random.PRNGKey(0), 1)
    e = state.e._replace(
        v_mV=jnp.full((1, 1), v0), g_exc_uS=jnp.full((1, 1), g_exc),
        g_inh_uS=jnp.full((1, 1), g_inh),
    )  # fmt: skip
    state = state._replace(e=e)
    _, rec = simulate_jit(Weights(), state, None, config, record=record, n_steps=n_steps)
    return {k: np.asarray(v)[:, 0, 0] for k, v in rec.items()}


CONST_G = NetworkConfig(
    n_in=0, n_e=1, n_i=1, n_out=0, tau_ampa_ms=1e12, tau_gaba_ms=1e12, t_ms=20.0
)


def test_membrane_matches_analytic_solution_with_constant_conductances():
    g_exc, g_inh, v0 = 0.02, 0.01, -70.0
    rec = _one_cell(CONST_G, g_exc, g_inh, v0)
    cell = CONST_G.cell_e
    g_tot = cell.g_leak_uS + g_exc + g_inh
    v_inf = (cell.g_leak_uS * -65.0 + g_exc * 0.0 + g_inh * -80.0) / g_tot
    t_ms = 0.1 * np.arange(1, 201)
    expected = v_inf + (v0 - v_inf) * np.exp(-t_ms * g_tot / cell.c_nF)
    assert v_inf < CONST_G.v_th_mV  # stays subthreshold: pure relaxation
    np.testing.assert_allclose(rec["v_e"], expected, rtol=0, atol=2e-4)


def test_refractory_length_and_reset():
    # A strong constant drive makes the cell fire as soon as it may.
    rec = _one_cell(CONST_G, g_exc=5.0, v0=-60.0, n_steps=400)
    spike_steps = np.nonzero(rec["spikes_e"])[0]
    n_ref = CONST_G.refractory_steps(CONST_G.cell_e)
    assert n_ref == 30
    intervals = np.diff(spike_steps)
    assert intervals.min() >= n_ref  # never fires inside its refractory period
    assert np.all(intervals <= n_ref + 1)  # and fires right after it under strong drive
    for s in spike_steps[:-1]:
        held = rec["v_e"][s : s + n_ref]
        np.testing.assert_allclose(held, CONST_G.v_reset_mV)


def test_refractory_count_is_at_least_one_step():
    config = dataclasses.replace(CONST_G, cell_e=dataclasses.replace(CONST_G.cell_e, t_ref_ms=0.0))
    assert config.refractory_steps(config.cell_e) == 1
    rec = _one_cell(config, g_exc=50.0, v0=-60.0, n_steps=50)
    assert rec["spikes_e"].sum() >= 20  # can fire on consecutive steps, reset in between


def test_voltage_floor():
    config = dataclasses.replace(CONST_G, e_inh_mV=-500.0)
    rec = _one_cell(config, g_inh=10.0, v0=-65.0, n_steps=100)
    assert rec["v_e"].min() == pytest.approx(config.v_floor_mV)
    assert rec["v_e"][-1] == pytest.approx(config.v_floor_mV)


def _tiny_network(key=0, config=TINY, scale=1.0):
    k = jax.random.split(jax.random.PRNGKey(key), 6)
    u = jax.random.uniform
    return Weights(
        w_in=u(k[0], (config.n_in, config.n_e), maxval=0.08 * scale),
        w_ee=u(k[1], (config.n_e, config.n_e), maxval=0.01 * scale),
        w_ei=u(k[2], (config.n_e, config.n_i), maxval=0.1 * scale),
        w_ie=u(k[3], (config.n_i, config.n_e), maxval=0.1 * scale),
        w_ii=u(k[4], (config.n_i, config.n_i), maxval=0.05 * scale),
        w_out=u(k[5], (config.n_e, config.n_out), maxval=2.0),
    )


def _tiny_inputs(config=TINY, batch=3, seed=1, intensity=0.8):
    images = np.full((batch, config.n_in), intensity)
    return poisson_events(images, config.n_steps, 0.05, seed)


RECORD = ("spikes_e", "spikes_i", "v_e", "g_inh_e", "out_v")


def test_scan_equals_plain_python_loop():
    w, ev = _tiny_network(), _tiny_inputs()
    state0 = init_state(TINY, jax.random.PRNGKey(2), 3)
    final, rec = simulate_jit(w, state0, ev, TINY, record=RECORD)
    state = state0
    one_step = jax.jit(step, static_argnames=("config", "record"))
    for t in range(TINY.n_steps):
        state, r = one_step(w, state, (ev.sample[t], ev.channel[t]), config=TINY, record=RECORD)
        for name in RECORD:  # same spikes; floats up to XLA fusion rounding
            np.testing.assert_allclose(np.asarray(rec[name][t]), np.asarray(r[name]), atol=1e-5)
    np.testing.assert_array_equal(final.acc.count_e, state.acc.count_e)
    assert rec["spikes_e"].sum() > 0 and rec["spikes_i"].sum() > 0


@pytest.mark.parametrize("mode", ["native", "events", "dense"])
def test_event_and_dense_propagation_agree(mode):
    _needs_native(mode)
    w, ev = _tiny_network(), _tiny_inputs()
    state0 = init_state(TINY, jax.random.PRNGKey(2), 3)
    _, ref = simulate_jit(w, state0, ev, TINY, record=RECORD)
    config = dataclasses.replace(TINY, propagation=mode)
    _, rec = simulate_jit(w, state0, ev, config, record=RECORD)
    for name in RECORD:
        np.testing.assert_allclose(np.asarray(rec[name]), np.asarray(ref[name]), atol=1e-5)


def test_dense_input_equals_event_input():
    from ei_sim.data.encoding import events_to_dense

    w, ev = _tiny_network(), _tiny_inputs()
    state0 = init_state(TINY, jax.random.PRNGKey(2), 3)
    _, ref = simulate_jit(w, state0, ev, TINY, record=RECORD)
    dense = events_to_dense(ev, 3, TINY.n_in)
    _, rec = simulate_jit(w, state0, dense, TINY, record=RECORD)
    for name in RECORD:
        np.testing.assert_allclose(np.asarray(rec[name]), np.asarray(ref[name]), atol=1e-5)


@pytest.mark.parametrize("method", ["events", "native"])
@pytest.mark.parametrize("p_spike", [0.0, 0.01, 0.05, 0.2, 0.6, 1.0])
def test_event_paths_equal_dense_from_silence_to_bursts(p_spike, method):
    """Every active-cell list size (and the dense fallback beyond the largest) is exact."""
    from ei_sim.sim.propagate import capacity_tiers, propagate

    _needs_native(method)

    spikes = (jax.random.uniform(jax.random.PRNGKey(0), (5, 300)) < p_spike).astype(jnp.float32)
    w = jax.random.uniform(jax.random.PRNGKey(1), (300, 7))
    assert capacity_tiers(300) == (8, 16, 32, 64, 128)
    out = jax.jit(propagate, static_argnums=2)(spikes, w, method)
    np.testing.assert_allclose(out, spikes @ w, rtol=1e-5, atol=1e-6)


def test_native_kernel_under_vmap_broadcasts_like_einsum():
    from ei_sim.sim import native

    _needs_native("native")
    key = jax.random.PRNGKey(3)
    spikes = (jax.random.uniform(key, (3, 4, 40)) < 0.2).astype(jnp.float32)
    w = jax.random.uniform(key, (2, 40, 6))
    both = jax.vmap(jax.vmap(native.event_matmul, (None, 0)), (0, None))(spikes, w)
    np.testing.assert_allclose(both, jnp.einsum("sbi,wij->swbj", spikes, w), rtol=1e-6)
    shared_w = jax.vmap(native.event_matmul, (0, None))(spikes, w[0])
    np.testing.assert_allclose(shared_w, jnp.einsum("sbi,ij->sbj", spikes, w[0]), rtol=1e-6)
    # the W-gradient kernel spikes^T @ ct, with one operand shared across the mapped axis
    ct = jax.random.normal(jax.random.PRNGKey(4), (2, 4, 6))
    outer = jax.vmap(jax.vmap(native.event_outer, (None, 0)), (0, None))(spikes * 0.5, ct)
    np.testing.assert_allclose(outer, jnp.einsum("sbi,cbj->scij", spikes * 0.5, ct), rtol=1e-6)
    shared = jax.vmap(native.event_outer, (0, None))(spikes, ct[0])
    np.testing.assert_allclose(shared, jnp.einsum("sbi,bj->sij", spikes, ct[0]), rtol=1e-6)


@pytest.mark.parametrize("method", ["events", "native"])
def test_event_propagation_gradient_equals_dense(method):
    from ei_sim.sim.propagate import propagate

    _needs_native(method)
    spikes = (jax.random.uniform(jax.random.PRNGKey(0), (3, 20)) < 0.2).astype(jnp.float32)
    w = jax.random.uniform(jax.random.PRNGKey(1), (20, 5))

    def loss(f):
        return lambda s, m: jnp.sum(jnp.sin(f(s, m)))

    g_event = jax.grad(loss(lambda s, m: propagate(s, m, method)), argnums=(0, 1))(spikes, w)
    g_dense = jax.grad(loss(jnp.dot), argnums=(0, 1))(spikes, w)
    for a, b in zip(g_event, g_dense, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5)
    # per-network gradients for stacked weights (the vmapped sweeps), and a frozen w
    ws = jnp.stack([w, 2.0 * w])
    g_w = jax.vmap(jax.grad(loss(lambda s, m: propagate(s, m, method)), 1), (None, 0))(spikes, ws)
    g_w_dense = jax.vmap(jax.grad(loss(jnp.dot), 1), (None, 0))(spikes, ws)
    np.testing.assert_allclose(g_w, g_w_dense, rtol=1e-5)
    g_s = jax.grad(loss(lambda s, m: propagate(s, jax.lax.stop_gradient(m), method)))(spikes, w)
    np.testing.assert_allclose(g_s, g_dense[0], rtol=1e-5)


def test_chunked_checkpoint_scan_is_exact():
    w, ev = _tiny_network(), _tiny_inputs()
    state0 = init_state(TINY, jax.random.PRNGKey(2), 3)
    plain, rec = simulate_jit(w, state0, ev, TINY, record=("v_e",))
    chunked, rec_c = simulate_jit(w, state0, ev, TINY, record=("v_e",), checkpoint_every=70)
    np.testing.assert_array_equal(np.asarray(rec["v_e"]), np.asarray(rec_c["v_e"]))
    np.testing.assert_array_equal(plain.acc.out_v_sum, chunked.acc.out_v_sum)

    def loss(weights, every):
        final, _ = simulate(weights, state0, ev, TINY, checkpoint_every=every)
        return jnp.sum(final.acc.out_v_sum) + jnp.sum(final.acc.count_e)

    g_plain = jax.grad(loss)(w, None)
    g_chunk = jax.grad(loss)(w, 70)
    for a, b in zip(jax.tree.leaves(g_plain), jax.tree.leaves(g_chunk), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_input_events_roundtrip_and_rate():
    from ei_sim.data.encoding import events_to_dense

    images = np.linspace(0, 1, 40).reshape(2, 20)
    ev = poisson_events(images, 5000, 0.02, seed=(3, 1))
    dense = events_to_dense(ev, 2, 20)
    np.testing.assert_array_equal(events_to_dense(events_from_dense(dense), 2, 20), dense)
    observed = dense.mean(axis=0)  # (B, n_in) spike probability per step
    expected = images * 0.02
    se = np.sqrt(expected * (1 - expected) / 5000) + 1e-9
    assert np.all(np.abs(observed - expected) < 5 * se)
    again = poisson_events(images, 5000, 0.02, seed=(3, 1))
    np.testing.assert_array_equal(again.channel, ev.channel)
    other = poisson_events(images, 5000, 0.02, seed=(3, 2))
    assert not np.array_equal(events_to_dense(other, 2, 20), dense)


def test_readout_is_leaky_integrator_with_subtractive_reset():
    config = NetworkConfig(n_in=0, n_e=2, n_i=1, n_out=1, t_ms=1.0, tau_ampa_ms=1e12)
    state = init_state(config, jax.random.PRNGKey(0), 1)
    # E cell 0 starts above threshold and spikes in this step; cell 1 stays silent.
    state = state._replace(e=state.e._replace(v_mV=jnp.array([[-40.0, -70.0]])))
    w = Weights(w_out=jnp.array([[0.5], [9.0]]))
    new, rec = jax.jit(step, static_argnums=(3, 4))(w, state, None, config, ("out_v",))
    beta = np.exp(-0.1 / 2.0)
    v = (1 - beta) / 0.1 * 0.5
    assert float(rec["out_v"][0, 0]) == pytest.approx(v, rel=1e-5)
    assert float(new.out_v[0, 0]) == pytest.approx(v if v < 1 else v - 1, rel=1e-5)


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"dt_ms": 0.0}, "dt_ms"),
        ({"t_ms": -5.0}, "t_ms"),
        ({"dt_ms": 2.0}, "refractory"),
        ({"surrogate": "tanh"}, "surrogate"),
        ({"propagation": "magic"}, "propagation"),
    ],
)
def test_config_rejects_bad_values(changes, message):
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(NetworkConfig(), **changes)


def _needs_native(kernel):
    from ei_sim.sim import native

    if kernel == "native" and not native.available():
        pytest.skip(f"native kernels unavailable: {native.unavailable_reason()}")


@pytest.mark.parametrize("cell_kernel", ["xla", "native"])
@pytest.mark.parametrize(
    "damping,surrogate,ref_max",
    [(1000.0, "fast_sigmoid", 3), (1.0, "arctan", 0), (50.0, "fast_sigmoid", 1)],
)
def test_hand_written_adjoint_equals_autodiff(damping, surrogate, ref_max, cell_kernel):
    """population_update's backward pass (jax.numpy or the fused C++ pass) equals autodiff
    through membrane + spike_and_reset; its forward pass equals theirs."""
    from ei_sim.sim.engine import _advance, population_update

    _needs_native(cell_kernel)
    config = dataclasses.replace(
        TINY, grad_damping=damping, surrogate=surrogate, cell_kernel=cell_kernel
    )
    k = jax.random.split(jax.random.PRNGKey(11), 5)
    with jax.enable_x64(True):
        v = jax.random.uniform(k[0], (3, 40), jnp.float64, -70.0, -45.0)  # straddles V_th
        v = v.at[0, :3].set(-250.0)  # below the floor
        g_exc = jax.random.uniform(k[1], (3, 40), jnp.float64, 0.0, 0.3)
        g_inh = jax.random.uniform(k[2], (3, 40), jnp.float64, 0.0, 0.3)
        ref = jax.random.randint(k[3], (3, 40), 0, ref_max + 1)
        probe = jax.random.normal(k[4], (3, 3, 40), jnp.float64)

        def loss(update):
            def f(v, g_exc, g_inh):
                v_new, _, spikes = update(v, g_exc, g_inh, ref, config.cell_e, config)
                return jnp.sum(probe[0] * jnp.sin(v_new) + probe[1] * spikes * v_new
                               + probe[2] * spikes)  # fmt: skip

            return f

        ours = jax.grad(loss(population_update), argnums=(0, 1, 2))(v, g_exc, g_inh)
        ref_grads = jax.grad(loss(_advance), argnums=(0, 1, 2))(v, g_exc, g_inh)
        for a, b in zip(ours, ref_grads, strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-14)
            assert float(jnp.abs(b).max()) > 0
        args = (v, g_exc, g_inh, ref, config.cell_e, config)
        ours, theirs = population_update(*args), _advance(*args)
        np.testing.assert_allclose(ours[0], theirs[0], rtol=1e-13)  # native: expm1, not 1 - exp
        np.testing.assert_array_equal(ours[1], theirs[1])
        np.testing.assert_array_equal(ours[2], theirs[2])


def test_native_cell_update_float32_matches_xla_and_passes_nan():
    """The fused C++ update in float32 (its own exp polynomial, split over threads) agrees with
    the jax.numpy update at a training-sized batch, under vmap, and lets NaN through."""
    from ei_sim.sim import native
    from ei_sim.sim.engine import population_update

    _needs_native("native")
    cfg = dataclasses.replace(NetworkConfig(), grad_damping=1000.0)
    k = jax.random.split(jax.random.PRNGKey(3), 6)
    shape = (40, 1024)  # > one 16,384-cell chunk: exercises the parallel split
    v = jax.random.uniform(k[0], shape, jnp.float32, -75.0, -45.0)
    g_exc = jax.random.uniform(k[1], shape, jnp.float32, 0.0, 0.4)
    g_inh = jax.random.uniform(k[2], shape, jnp.float32, 0.0, 0.4)
    ref = jax.random.randint(k[3], shape, 0, 4)
    ct_v, ct_s = (jax.random.normal(kk, shape, jnp.float32) for kk in k[4:])
    xla = dataclasses.replace(cfg, cell_kernel="xla")
    out_n = native.population_forward(v, g_exc, g_inh, ref, cfg.cell_e, cfg)
    out_x = population_update(v, g_exc, g_inh, ref, cfg.cell_e, xla)
    np.testing.assert_allclose(out_n[0], out_x[0], atol=2e-4)
    assert float(jnp.mean(out_n[2] != out_x[2])) < 1e-4  # threshold ties at float32 rounding
    assert float(out_x[2].sum()) > 100
    _, vjp = jax.vjp(lambda *a: population_update(*a, ref, cfg.cell_e, xla), v, g_exc, g_inh)
    zero_ref = np.zeros(shape, jax.dtypes.float0)
    for a, b in zip(native.population_adjoint(v, g_exc, g_inh, ref, ct_v, ct_s, cfg.cell_e, cfg),
                    vjp((ct_v, zero_ref, ct_s)), strict=True):  # fmt: skip
        np.testing.assert_allclose(a, b, rtol=2e-3, atol=1e-6 * float(jnp.abs(b).max()))
    forward = lambda vv: native.population_forward(vv, g_exc, g_inh, ref, cfg.cell_e, cfg)  # noqa: E731
    batched = jax.vmap(forward)(jnp.stack([v, v - 1.0]))
    np.testing.assert_array_equal(batched[0][0], out_n[0])
    v_nan, ref_open = v.at[0, 0].set(jnp.nan), ref.at[0, 0].set(0)
    nan_out = native.population_forward(v_nan, g_exc, g_inh, ref_open, cfg.cell_e, cfg)
    assert bool(jnp.isnan(nan_out[0][0, 0])) and not bool(jnp.isnan(nan_out[0][0, 1]))


def test_native_build_runs_once_for_processes_that_start_together(tmp_path, monkeypatch):
    """Two builders on an empty cache (the Dask workers of a grid on a new machine): one
    compiles, the other waits on the lock and takes its library; a failed compilation says
    the compiler's last line."""
    import threading
    import time

    from ei_sim.sim import native

    monkeypatch.setenv("EI_SIM_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(native, "_compiler", lambda: "c++")
    calls = []

    def fake_compile(compiler, flags, work, out):
        calls.append(flags)
        time.sleep(0.3)  # long enough for the other builder to find the lock taken
        out.write_bytes(b"library")
        return None

    monkeypatch.setattr(native, "_compile", fake_compile)
    paths = []
    threads = [threading.Thread(target=lambda: paths.append(native.build())) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and len(paths) == 2 and paths[0] == paths[1]
    assert paths[0].read_bytes() == b"library"
    left = [p.name for p in tmp_path.joinpath("native").iterdir() if p.name.startswith(".build")]
    assert left == []  # the build folder is removed

    paths[0].unlink()
    monkeypatch.setattr(native, "_compile", lambda *a: "error: no such flag")
    with pytest.raises(RuntimeError, match="no such flag"):
        native.build()
