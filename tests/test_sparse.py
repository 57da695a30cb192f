"""Sparse blocks and the native event kernels: exact against dense products and autodiff."""

import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ei_sim.sim import native
from ei_sim.sim.engine import Weights, simulate_jit
from ei_sim.sim.sparse import SparseBlock, dense, hstack, sparse_propagate

METHODS = ["native", "events"]


def _require(method: str) -> None:
    """Skip a "native" case where the kernel cannot be built (no compiler, EI_SIM_NATIVE=0):
    the engine then runs the pure-JAX paths, which the "events" cases and the fallback tests
    below cover."""
    if method == "native" and not native.available():
        pytest.skip(f"native kernels unavailable: {native.unavailable_reason()}")


def _block(key, shape, p=0.1):
    k1, k2 = jax.random.split(jax.random.PRNGKey(key))
    mask = jax.random.uniform(k1, shape) < p
    return np.asarray(mask * jax.random.uniform(k2, shape, minval=0.5, maxval=1.5))


def _spikes(key, shape, p):
    return (jax.random.uniform(jax.random.PRNGKey(key), shape) < p).astype(jnp.float32)


def test_native_kernel_builds_where_a_compiler_is_found():
    """With a C++ compiler on the machine (and EI_SIM_NATIVE not 0) the kernels must build;
    without one they are optional (the pure-JAX fallback is tested below)."""
    if os.environ.get("EI_SIM_NATIVE", "1").strip().lower() in ("0", "false", "no", "off"):
        pytest.skip("native kernels disabled by EI_SIM_NATIVE")
    if native._compiler() is None and not native.library_path().exists():
        pytest.skip("no C++ compiler found (CXX, g++, c++, clang++) and no cached build")
    assert native.available(), native.unavailable_reason()


def test_from_dense_round_trip_and_row_layout():
    w = _block(0, (30, 17))
    block = SparseBlock.from_dense(w)
    np.testing.assert_array_equal(block.todense(), w)
    assert block.nnz == np.count_nonzero(w) and block.shape == (30, 17)
    counts = np.diff(np.asarray(block.indptr))
    np.testing.assert_array_equal(counts, np.count_nonzero(w, axis=1))
    np.testing.assert_array_equal(np.asarray(block.rows), np.repeat(np.arange(30), counts))
    with pytest.raises(ValueError, match="2-D"):
        SparseBlock.from_dense(np.ones(3))


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("p_spike", [0.0, 0.05, 0.5, 1.0])
def test_sparse_propagation_equals_dense_product(method, p_spike):
    _require(method)
    w = _block(1, (200, 90))
    spikes = _spikes(2, (4, 200), p_spike)
    out = jax.jit(sparse_propagate, static_argnums=2)(spikes, SparseBlock.from_dense(w), method)
    np.testing.assert_allclose(out, spikes @ w, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("method", METHODS)
def test_sparse_gradients_equal_dense_gradients(method):
    _require(method)
    w = _block(3, (40, 12), p=0.3)
    block = SparseBlock.from_dense(w)
    spikes = _spikes(4, (3, 40), 0.3)

    def loss_sparse(s, data):
        out = sparse_propagate(s, SparseBlock(block.indptr, block.rows, block.cols, data,
                                              block.shape), method)  # fmt: skip
        return jnp.sum(jnp.sin(out))

    g_s, g_data = jax.grad(loss_sparse, argnums=(0, 1))(spikes, block.data)
    g_s_ref, g_w_ref = jax.grad(lambda s, m: jnp.sum(jnp.sin(s @ m)), argnums=(0, 1))(
        spikes, jnp.asarray(w)
    )
    np.testing.assert_allclose(g_s, g_s_ref, rtol=1e-5, atol=1e-6)
    dense_grad = np.asarray(g_w_ref)[np.asarray(block.rows), np.asarray(block.cols)]
    np.testing.assert_allclose(g_data, dense_grad, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("method", METHODS)
def test_sparse_kernel_vmaps_over_weights_and_trials(method):
    _require(method)
    w = _block(5, (50, 20))
    block = SparseBlock.from_dense(w)
    spikes = _spikes(6, (3, 2, 50), 0.2)
    scales = jnp.asarray([0.5, 1.0, 2.0])

    def run(s, scale):
        scaled = SparseBlock(block.indptr, block.rows, block.cols, block.data * scale, block.shape)
        return sparse_propagate(s, scaled, method)

    out = jax.vmap(run)(spikes, scales)
    np.testing.assert_allclose(out, jnp.einsum("vbi,v,ij->vbj", spikes, scales, w), rtol=1e-5)
    shared = jax.vmap(run, (0, None))(spikes, 1.0)
    np.testing.assert_allclose(shared, jnp.einsum("vbi,ij->vbj", spikes, w), rtol=1e-5)


@pytest.mark.parametrize("method", METHODS)
def test_hstack_joins_columns(method):
    _require(method)
    a, b = _block(7, (25, 10)), _block(8, (25, 6))
    joined = hstack([SparseBlock.from_dense(a), SparseBlock.from_dense(b)])
    np.testing.assert_array_equal(joined.todense(), np.concatenate([a, b], axis=1))
    spikes = _spikes(9, (2, 25), 0.3)
    np.testing.assert_allclose(
        sparse_propagate(spikes, joined, method), spikes @ np.concatenate([a, b], 1), rtol=1e-6
    )


def test_network_with_sparse_blocks_equals_dense_network():
    from ei_sim.models.va_coba import va_coba

    model = va_coba(t_ms=30.0, n_e=320, n_i=80, p_connect=0.1, w_e_uS=1.2, w_i_uS=8.0)
    sparse_w = model.init_weights(jax.random.PRNGKey(0))
    dense_w = Weights(**{k: dense(v) for k, v in sparse_w._asdict().items()})
    state0 = model.init_state(jax.random.PRNGKey(1), 2)
    config = model.config
    rec = ("spikes_e", "spikes_i", "v_e")

    def run(weights):
        def f64(a):
            return a.astype(jnp.float64) if a.dtype == jnp.float32 else a

        weights, state = jax.tree.map(f64, weights), jax.tree.map(f64, state0)
        return simulate_jit(weights, state, None, config, record=rec, n_steps=config.n_steps)[1]

    with jax.enable_x64(True):
        ours, ref = run(sparse_w), run(dense_w)
    assert np.asarray(ref["spikes_e"]).sum() > 0
    for name in rec:
        np.testing.assert_allclose(np.asarray(ours[name]), np.asarray(ref[name]), atol=1e-9)


def test_without_the_kernel_auto_falls_back_to_pure_jax(tmp_path):
    """EI_SIM_NATIVE=0 (or no compiler): "auto" runs the pure-JAX path, "native" says why."""
    code = (
        "from ei_sim.sim import native; from ei_sim.sim.propagate import resolve_method\n"
        "assert not native.available() and 'EI_SIM_NATIVE' in native.unavailable_reason()\n"
        "assert resolve_method('auto') == 'events'\n"
        "try:\n    resolve_method('native')\nexcept ValueError as e:\n    print('error:', e)\n"
    )
    env = {**os.environ, "EI_SIM_NATIVE": "0", "EI_SIM_CACHE_DIR": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "error: propagation='native' but the kernel is unavailable" in out.stdout
    assert not list(tmp_path.iterdir())  # nothing was built


def va_spikes(propagation: str) -> dict:
    """Spikes and E potentials (float64) of a small VA network with compressed-sparse-row
    blocks, 30 ms, two trials, under ``propagation`` (also run by the no-compiler process)."""
    from ei_sim.models.va_coba import va_coba

    model = va_coba(t_ms=30.0, n_e=320, n_i=80, p_connect=0.1, w_e_uS=1.2, w_i_uS=8.0,
                    sparse=True, propagation=propagation)  # fmt: skip
    with jax.enable_x64(True):
        weights = model.init_weights(jax.random.PRNGKey(0))
        state = model.init_state(jax.random.PRNGKey(1), 2)
        weights, state = jax.tree.map(
            lambda a: a.astype(jnp.float64) if a.dtype == jnp.float32 else a, (weights, state)
        )
        rec = ("spikes_e", "spikes_i", "v_e")
        out = simulate_jit(weights, state, None, model.config, record=rec,
                           n_steps=model.config.n_steps)[1]  # fmt: skip
        return {name: np.asarray(out[name]) for name in rec}


NO_COMPILER = """
import sys

import numpy as np

from ei_sim.sim import native

native._compiler = lambda: None  # the compiler lookup finds none of CXX, g++, c++, clang++
from ei_sim.sim.propagate import resolve_method

assert not native.available(), "the kernels were built without a compiler"
print("reason:", native.unavailable_reason())
assert resolve_method("auto") == "events", resolve_method("auto")
sys.path.insert(0, sys.argv[1])
from test_sparse import va_spikes

np.savez(sys.argv[2], **va_spikes("auto"))
"""


def test_without_a_compiler_auto_falls_back_to_events_with_the_same_spikes(tmp_path):
    """A process whose compiler lookup finds nothing (and whose kernel cache is empty) says
    why, runs propagation="auto" as the pure-JAX "events" path and gets its spikes exactly;
    the spikes equal those of the dense product (and of the native kernel where it builds)."""
    cache, out = tmp_path / "cache", tmp_path / "auto.npz"
    env = {**os.environ, "EI_SIM_CACHE_DIR": str(cache)}
    env.pop("EI_SIM_NATIVE", None)
    here = os.path.dirname(os.path.abspath(__file__))
    proc = subprocess.run([sys.executable, "-c", NO_COMPILER, here, str(out)], env=env,
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "reason: no C++ compiler found" in proc.stdout
    assert not list(cache.rglob("*.so"))  # nothing was built
    fallback = dict(np.load(out))
    assert fallback["spikes_e"].sum() > 0
    reference = {"events": va_spikes("events"), "dense": va_spikes("dense")}
    if native.available():
        reference["native"] = va_spikes("native")
    for method, ref in reference.items():
        for name in ("spikes_e", "spikes_i"):
            np.testing.assert_array_equal(fallback[name], ref[name], err_msg=f"{method} {name}")
        atol = 0.0 if method == "events" else 1e-9
        np.testing.assert_allclose(fallback["v_e"], ref["v_e"], atol=atol, err_msg=method)
