"""Sparse blocks and the native event kernels: exact against dense products and autodiff."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ei_sim import native
from ei_sim.engine import Weights, simulate_jit
from ei_sim.sparse import SparseBlock, dense, hstack, sparse_propagate

METHODS = ["native", "events"]


def _block(key, shape, p=0.1):
    k1, k2 = jax.random.split(jax.random.PRNGKey(key))
    mask = jax.random.uniform(k1, shape) < p
    return np.asarray(mask * jax.random.uniform(k2, shape, minval=0.5, maxval=1.5))


def _spikes(key, shape, p):
    return (jax.random.uniform(jax.random.PRNGKey(key), shape) < p).astype(jnp.float32)


def test_native_kernel_builds_here():
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
    w = _block(1, (200, 90))
    spikes = _spikes(2, (4, 200), p_spike)
    out = jax.jit(sparse_propagate, static_argnums=2)(spikes, SparseBlock.from_dense(w), method)
    np.testing.assert_allclose(out, spikes @ w, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("method", METHODS)
def test_sparse_gradients_equal_dense_gradients(method):
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


def test_sparse_kernel_vmaps_over_weights_and_trials():
    w = _block(5, (50, 20))
    block = SparseBlock.from_dense(w)
    spikes = _spikes(6, (3, 2, 50), 0.2)
    scales = jnp.asarray([0.5, 1.0, 2.0])

    def run(s, scale):
        scaled = SparseBlock(block.indptr, block.rows, block.cols, block.data * scale, block.shape)
        return sparse_propagate(s, scaled, "native")

    out = jax.vmap(run)(spikes, scales)
    np.testing.assert_allclose(out, jnp.einsum("vbi,v,ij->vbj", spikes, scales, w), rtol=1e-5)
    shared = jax.vmap(run, (0, None))(spikes, 1.0)
    np.testing.assert_allclose(shared, jnp.einsum("vbi,ij->vbj", spikes, w), rtol=1e-5)


def test_hstack_joins_columns():
    a, b = _block(7, (25, 10)), _block(8, (25, 6))
    joined = hstack([SparseBlock.from_dense(a), SparseBlock.from_dense(b)])
    np.testing.assert_array_equal(joined.todense(), np.concatenate([a, b], axis=1))
    spikes = _spikes(9, (2, 25), 0.3)
    np.testing.assert_allclose(
        sparse_propagate(spikes, joined, "native"), spikes @ np.concatenate([a, b], 1), rtol=1e-6
    )


def test_network_with_sparse_blocks_equals_dense_network():
    from models import va_coba

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
    import subprocess
    import sys

    code = (
        "from ei_sim import native; from ei_sim.propagate import resolve_method\n"
        "assert not native.available() and 'EI_SIM_NATIVE' in native.unavailable_reason()\n"
        "assert resolve_method('auto') == 'events'\n"
        "try:\n    resolve_method('native')\nexcept ValueError as e:\n    print('error:', e)\n"
    )
    env = {**__import__("os").environ, "EI_SIM_NATIVE": "0", "EI_SIM_CACHE_DIR": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "error: propagation='native' but the kernel is unavailable" in out.stdout
    assert not list(tmp_path.iterdir())  # nothing was built
