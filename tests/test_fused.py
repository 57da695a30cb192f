"""The fused training path (ei_sim.training.fused): same trial and exact gradients as the engine's
path.

Checked in float64 against the engine (spikes, accumulators, gradients of W_in and W_out to
1e-10), against central differences where the loss is smooth (a subthreshold network for W_in,
the readout for W_out), for both surrogates, with the loop off (COBA) and on (PING with every
recurrent block present), with a trial that is not a whole number of chunks; in float32 against
the engine at the medium size, and through a whole training step with the batch split over
devices.
"""

import dataclasses
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ei_sim.data.encoding import poisson_events
from ei_sim.sim import native
from ei_sim.sim.config import NetworkConfig
from ei_sim.sim.engine import Weights, init_state, simulate
from ei_sim.training import fused

pytestmark = pytest.mark.skipif(
    not native.available(), reason=f"native kernels unavailable: {native.unavailable_reason()}"
)


def network(seed=0, n_e=24, n_i=8, t_ms=23.7, loop=True, dense_all=True, dtype=jnp.float64,
            batch=6, **changes):  # fmt: skip
    """A small spiking network with input events (``batch`` trials); every recurrent block
    present by default."""
    config = NetworkConfig(n_in=16, n_e=n_e, n_i=n_i, n_out=4, t_ms=t_ms, **changes)
    keys = jax.random.split(jax.random.PRNGKey(seed), 7)
    u = lambda k, shape, hi: jax.random.uniform(k, shape, dtype, 0, hi)  # noqa: E731
    w = Weights(
        w_in=u(keys[0], (16, n_e), 0.08),
        w_ee=u(keys[1], (n_e, n_e), 0.004) if dense_all else None,
        w_ei=u(keys[2], (n_e, n_i), 0.05) if loop else None,
        w_ie=u(keys[3], (n_i, n_e), 0.05) if loop else None,
        w_ii=u(keys[4], (n_i, n_i), 0.02) if dense_all else None,
        w_out=u(keys[5], (n_e, 4), 2.0),
    )
    events = poisson_events(np.full((batch, 16), 0.8), config.n_steps, 0.12, seed=seed)
    state0 = init_state(config, keys[6], batch, dtype=dtype)
    return config, w, state0, events


def loss_of(final):
    """A loss that uses every accumulator (as the training loss does: logits and counts)."""
    acc = final.acc
    return (jnp.sum(jnp.sin(acc.out_v_sum / 50.0)) + 0.01 * jnp.sum(acc.count_e**2)
            + 0.02 * jnp.sum(acc.count_i))  # fmt: skip


def grads(path, w, state0, events, config, chunk, loss=loss_of):
    def f(w_in, w_out):
        ww = w._replace(w_in=w_in, w_out=w_out)
        if path == "engine":
            final = simulate(ww, state0, events, config, checkpoint_every=chunk)[0]
        else:
            final = fused.trial(ww, state0, events, config, chunk=chunk)
        return loss(final)

    return jax.value_and_grad(f, argnums=(0, 1))(w.w_in, w.w_out)


def rel_err(a, b):
    return float(jnp.max(jnp.abs(a - b)) / jnp.max(jnp.abs(b)))


@pytest.mark.parametrize("surrogate", ["fast_sigmoid", "arctan"])
@pytest.mark.parametrize("loop, dense_all",
                         [(True, True), (True, False), (False, False), (False, True)])
def test_fused_equals_engine_float64(surrogate, loop, dense_all):
    with jax.enable_x64(True):
        config, w, state0, events = network(loop=loop, dense_all=dense_all, surrogate=surrogate)
        assert fused.applicable(w, config, events)
        ref = simulate(w, state0, events, config)[0]
        got = fused.trial(w, state0, events, config, chunk=7)  # 237 steps: 33 chunks + 6
        np.testing.assert_array_equal(ref.acc.count_e, got.acc.count_e)  # the same spikes
        np.testing.assert_array_equal(ref.acc.count_i, got.acc.count_i)
        for a, b in zip(jax.tree.leaves(ref), jax.tree.leaves(got), strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)  # exp vs expm1 rounding
        assert float(ref.acc.count_e.sum()) > 20 and float(ref.acc.count_i.sum()) > 5 or not loop
        (l_ref, g_ref), (l_f, g_f) = (grads(p, w, state0, events, config, 7)
                                      for p in ("engine", "fused"))  # fmt: skip
        assert float(l_ref) == pytest.approx(float(l_f), rel=1e-13)
        for a, b in zip(g_f, g_ref, strict=True):
            assert float(jnp.max(jnp.abs(b))) > 0
            assert rel_err(a, b) < 1e-10


def test_fused_gradient_matches_central_differences_subthreshold():
    """Subthreshold and undamped, the final state is smooth in W_in: the fused adjoint of
    the membrane, conductance and input paths must equal central differences."""
    with jax.enable_x64(True):
        config, w, state0, events = network(
            loop=False, dense_all=False, grad_damping=1.0, v_init_low_mV=-70.0, v_init_high_mV=-66.0
        )
        w = w._replace(w_in=w.w_in * 0.004)
        assert float(simulate(w, state0, events, config)[0].acc.count_e.sum()) == 0

        def loss(w_in):
            final = fused.trial(w._replace(w_in=w_in), state0, events, config, chunk=10)
            return jnp.sum(jnp.sin(final.e.v_mV)) + 10.0 * jnp.sum(final.e.g_exc_uS)

        g = jax.grad(loss)(w.w_in)
        direction = jax.random.normal(jax.random.PRNGKey(3), w.w_in.shape, jnp.float64)
        eps = 1e-8  # the weights are ~1e-4 uS: a small step relative to them
        fd = (loss(w.w_in + eps * direction) - loss(w.w_in - eps * direction)) / (2 * eps)
        assert float(jnp.abs(g).max()) > 0
        assert float(jnp.sum(g * direction)) == pytest.approx(float(fd), rel=1e-6)


def test_fused_readout_gradient_matches_central_differences():
    """The spikes do not depend on W_out: the summed readout is smooth in it (between the
    readout's resets), so its gradient must equal central differences in a spiking network."""
    with jax.enable_x64(True):
        config, w, state0, events = network()

        def loss(w_out):
            final = fused.trial(w._replace(w_out=w_out), state0, events, config, chunk=9)
            return jnp.sum(jnp.sin(final.acc.out_v_sum / 50.0))

        g = jax.grad(loss)(w.w_out)
        direction = jax.random.normal(jax.random.PRNGKey(4), w.w_out.shape, jnp.float64)
        eps = 1e-7
        fd = (loss(w.w_out + eps * direction) - loss(w.w_out - eps * direction)) / (2 * eps)
        assert float(jnp.sum(g * direction)) == pytest.approx(float(fd), rel=1e-6)


def test_fused_refuses_recurrent_gradients():
    config, w, state0, events = network(dtype=jnp.float32)

    def loss(w_ei):
        return loss_of(fused.trial(w._replace(w_ei=w_ei), state0, events, config, chunk=10))

    with pytest.raises(NotImplementedError, match="W_in and W_out only"):
        jax.grad(loss)(w.w_ei)


def loss_with_final_state(final):
    """loss_of plus terms of the final readout and membrane state, so that the readout's
    share of the cotangent enters from both ends (c_sum and lambda_out_v at the end)."""
    return (loss_of(final) + 0.3 * jnp.sum(jnp.cos(final.out_v)) + 0.01 * jnp.sum(final.e.v_mV)
            + 0.02 * jnp.sum(final.i.g_inh_uS))  # fmt: skip


def assert_final_state_gradients_equal(w, state0, events, config, tol):
    """The fused gradient of loss_with_final_state equals the engine's (loss and both weight
    gradients to ``tol``, relative); returns the fused gradients."""
    (l_ref, g_ref), (l_f, g_f) = (grads(p, w, state0, events, config, 7,
                                        loss=loss_with_final_state)
                                  for p in ("engine", "fused"))  # fmt: skip
    assert float(l_f) == pytest.approx(float(l_ref), rel=tol)
    for a, b in zip(g_f, g_ref, strict=True):
        assert float(jnp.max(jnp.abs(b))) > 0
        assert rel_err(a, b) < tol
    return g_f


@pytest.mark.parametrize("surrogate", ["fast_sigmoid", "arctan"])
@pytest.mark.parametrize("dtype, tol", [(jnp.float64, 1e-10), (jnp.float32, 1e-4)])
def test_fused_gradient_with_final_state_loss(surrogate, dtype, tol):
    """Both surrogates in float64 (the scalar adjoint) and float32 (the 8-cell AVX2 adjoint
    where the CPU has it; n_e = 44 also runs the scalar tail), with a loss of the final
    readout and membrane state: the fused gradient equals the engine's."""
    with jax.enable_x64(dtype == jnp.float64):
        config, w, state0, events = network(n_e=44, n_i=12, loop=True, dense_all=False,
                                            dtype=dtype, surrogate=surrogate)  # fmt: skip
        ref = simulate(w, state0, events, config)[0]
        assert float(ref.acc.count_e.sum()) > 20 and float(ref.acc.count_i.sum()) > 5
        assert_final_state_gradients_equal(w, state0, events, config, tol)


@pytest.mark.parametrize("dtype, tol", [(jnp.float64, 1e-10), (jnp.float32, 1e-4)])
def test_fused_gradient_with_surrogate_readout_reset(dtype, tol):
    """out_reset_gradient = "surrogate" (the reference lab's readout): the fused gradient
    equals the engine's, with a readout that crosses its threshold often; and it differs from
    the gradient with a detached reset (so the option reaches the fused backward pass)."""
    with jax.enable_x64(dtype == jnp.float64):
        config, w, state0, events = network(n_e=44, n_i=12, loop=True, dense_all=False,
                                            dtype=dtype,
                                            out_reset_gradient="surrogate")  # fmt: skip
        assert fused.applicable(w, config, events)
        ref, rec = simulate(w, state0, events, config, record=("out_v",))
        crossed = float(jnp.mean(rec["out_v"] >= config.out_threshold))
        assert 0.02 < crossed < 0.9, crossed
        g_f = assert_final_state_gradients_equal(w, state0, events, config, tol)
        detached = dataclasses.replace(config, out_reset_gradient="detached")
        _, g_d = grads("fused", w, state0, events, detached, 7, loss=loss_with_final_state)
        for a, b in zip(g_d, g_f, strict=True):
            assert rel_err(a, b) > 100 * tol


def test_pack_block_layout():
    """A block packed for the adjoint's products: P[p, k, q] = W[16 p + q, k], rows past
    n_from zero; an absent block empty."""
    w = jnp.arange(37 * 5, dtype=jnp.float32).reshape(37, 5)
    packed = np.asarray(fused.pack_block(w, jnp.float32))
    assert packed.shape == (3, 5, 16)
    for p in range(3):
        for q in range(16):
            row = 16 * p + q
            expected = np.asarray(w[row]) if row < 37 else np.zeros(5, np.float32)
            np.testing.assert_array_equal(packed[p, :, q], expected)
    assert fused.pack_block(None, jnp.float32).shape == (0, 0, 16)


@pytest.mark.parametrize("m, k, n", [(1, 1, 1), (5, 3, 17), (13, 300, 37), (53, 513, 96),
                                     (128, 256, 1024)])
def test_packed_product_equals_the_matrix_product(m, k, n):
    """The adjoint's product kernel alone: A W^T in float32 (the AVX-512 or AVX2 kernel where
    the CPU has it) to float rounding of a float64 reference, at sizes with row tails, partial
    panels (alone and in a pair of panels) and several slices of k; the same bits whether the
    rows are split over threads or not, and as the generic code's (the same fused
    multiply-adds in the same order); and in float64 (the scalar kernel) to 1e-12."""
    rng = np.random.default_rng(m * 1000 + k + n)
    a64, w64 = rng.standard_normal((m, k)), rng.standard_normal((n, k))
    ref = a64.astype(np.float32).astype(np.float64) @ w64.astype(np.float32).astype(np.float64).T
    scale = np.abs(a64) @ np.abs(w64).T  # the sum of the terms' sizes, per output
    a, w = jnp.asarray(a64, jnp.float32), jnp.asarray(w64, jnp.float32)
    packed = fused.pack_block(w, jnp.float32)
    got = np.asarray(fused.packed_product(a, packed, n), np.float64)
    assert got.shape == (m, n)
    assert np.max(np.abs(got - ref) / scale) < 1e-6
    serial = np.asarray(fused.packed_product(a, packed, n, parallel=False))
    np.testing.assert_array_equal(serial, np.asarray(got, np.float32))
    generic = np.asarray(fused.packed_product(a, packed, n, scalar=True))
    np.testing.assert_array_equal(generic, serial)
    with jax.enable_x64(True):
        w_d = jnp.asarray(w64)
        got64 = np.asarray(fused.packed_product(jnp.asarray(a64), fused.pack_block(w_d, w_d.dtype),
                                                n))  # fmt: skip
        assert np.max(np.abs(got64 - a64 @ w64.T) / scale) < 1e-12


@pytest.mark.parametrize("batch", [11, 49, 51, 52])
def test_fused_products_at_awkward_sizes_float32(batch):
    """The adjoint's packed products in float32 (the AVX-512 or AVX2 kernel where the CPU has
    it) at sizes that use every edge of them: on two threads, 49-52 trials are split in parts
    of 36 and 13-16 rows with AVX-512 (blocks of 12, then 1, 3 or 4 rows) or of 30 and 19-22
    with AVX2 (blocks of 6, then 1, 3 or 4), and 11 trials in one part (11 rows; 6 + 5 with
    AVX2); n_E = 40 (a pair of panels
    and a partial one of 8), n_I = 300 (two slices of k for W_EI and W_II), every recurrent
    block present: the fused gradient equals the engine's."""
    config, w, state0, events = network(n_e=40, n_i=300, batch=batch, dtype=jnp.float32,
                                        t_ms=12.0 if batch < 20 else 5.0)  # fmt: skip
    ref = simulate(w, state0, events, config)[0]
    assert float(ref.acc.count_e.sum()) > 10 and float(ref.acc.count_i.sum()) > 10
    assert_final_state_gradients_equal(w, state0, events, config, 1e-4)


def test_fused_equals_engine_float32_medium_size():
    """The recipe's sizes in float32 (1,024 E, 256 I, 200 ms): same spikes, gradients equal to
    float rounding."""
    from ei_sim.data.encoding import encode
    from ei_sim.data.mnist import embedded_pool, sample_and_split
    from ei_sim.models import get_model

    model = get_model("ping")
    config = dataclasses.replace(model.config, t_ms=60.0)
    split = sample_and_split(embedded_pool(), 100, 0.2, seed=0)
    events = encode(split.x_train[:8], config, 0)
    w = model.replace(t_ms=60.0).init_weights(jax.random.PRNGKey(0))
    state0 = init_state(config, jax.random.PRNGKey(1), 8)
    ref = simulate(w, state0, events, config)[0]
    got = fused.trial(w, state0, events, config, chunk=50)
    assert float(ref.acc.count_e.sum()) > 100
    np.testing.assert_array_equal(ref.acc.count_e, got.acc.count_e)
    np.testing.assert_array_equal(ref.acc.count_i, got.acc.count_i)
    np.testing.assert_allclose(ref.acc.out_v_sum, got.acc.out_v_sum, rtol=1e-5, atol=1e-4)
    (_, g_ref), (_, g_f) = (grads(p, w, state0, events, config, 50) for p in ("engine", "fused"))
    for a, b in zip(g_f, g_ref, strict=True):
        assert rel_err(a, b) < 1e-4
        cosine = jnp.sum(a * b) / (jnp.linalg.norm(a) * jnp.linalg.norm(b))
        assert float(cosine) > 1 - 1e-6


def test_train_step_fused_equals_engine_with_split_batch():
    """make_train_step on both paths, the batch split over the devices when there are
    several: the same loss and updated weights to float rounding."""
    from ei_sim.sim.parallel import batch_mesh, replicate
    from ei_sim.training.objective import make_train_step
    from ei_sim.training.optim import adam_with_dale

    config, w, state0, events = network(dtype=jnp.float32, loop=True, dense_all=False)
    trainable = {"w_in": w.w_in, "w_out": w.w_out}
    frozen = {"w_ei": w.w_ei, "w_ie": w.w_ie}
    labels = jnp.arange(6) % 4
    optimizer = adam_with_dale(1e-3)
    mesh = batch_mesh(6)
    out = {}
    for path in (False, True):
        tr, opt, fr = replicate((trainable, optimizer.init(trainable), frozen), mesh)
        step = make_train_step(optimizer, config, 0.2, 1e-3, 10, mesh, fused=path)
        out[path] = step(tr, opt, fr, state0, events, labels)
    (t_e, _, fin_e, parts_e), (t_f, _, fin_f, parts_f) = out[False], out[True]
    assert bool(fin_e) and bool(fin_f)
    assert float(parts_f.loss) == pytest.approx(float(parts_e.loss), rel=1e-6)
    for k in trainable:
        np.testing.assert_allclose(t_f[k], t_e[k], rtol=1e-5, atol=1e-7)
        assert not np.array_equal(t_f[k], trainable[k])


@pytest.mark.parametrize("split", [False, True])
def test_evaluation_forward_equals_engine(split):
    """The evaluation's forward pass on the fused path (run_with_rates, through make_eval_fn,
    the batch split over the devices or not) gives the engine's logits, counts and per-step
    population rates; with a trial that is not a whole number of chunks."""
    from ei_sim.sim.parallel import batch_mesh, replicate
    from ei_sim.training.objective import make_eval_fn

    config, w, state0, events = network(dtype=jnp.float32, loop=True, dense_all=False)
    assert fused.applicable(w, config, events)
    final, rec = simulate(w, state0, events, config, record=("rate_e", "rate_i"))
    got_final, got_rec = fused.run_with_rates(w, state0, events, config, chunk=20)
    assert got_rec["rate_e"].shape == rec["rate_e"].shape == (config.n_steps, 6)
    assert float(jnp.sum(rec["rate_i"])) > 0
    for k in ("rate_e", "rate_i"):
        np.testing.assert_allclose(got_rec[k], rec[k], rtol=1e-6, atol=0)
    np.testing.assert_array_equal(got_final.acc.count_e, final.acc.count_e)
    mesh = batch_mesh(6) if split else None
    logits, c_e, c_i, rec_eval = make_eval_fn(config, mesh)(replicate(w, mesh), state0, events)
    np.testing.assert_allclose(logits, final.acc.out_v_sum / config.n_steps, rtol=1e-5,
                               atol=1e-6)  # fmt: skip
    np.testing.assert_array_equal(c_e, final.acc.count_e)
    np.testing.assert_array_equal(c_i, final.acc.count_i)
    np.testing.assert_allclose(rec_eval["rate_e"], rec["rate_e"], rtol=1e-6, atol=0)


_ONE_STEP = """
import sys
import jax, numpy as np
from ei_sim.sim import native
from ei_sim.data.encoding import encode
from ei_sim.data.mnist import embedded_pool, sample_and_split
from ei_sim.models import get_model
from ei_sim.training.objective import make_train_step
from ei_sim.training.optim import adam_with_dale
from ei_sim.training.spiking import split_weights, tier_model
assert native.available(), native.unavailable_reason()
model = tier_model(get_model("ping"), "tiny")
split = sample_and_split(embedded_pool(), 200, 0.2, seed=42)
x, y = split.x_train[:24], split.y_train[:24]
events = encode(x, model.config, 0)
trainable, frozen = split_weights(model.init_weights(jax.random.PRNGKey(0)), ("w_in", "w_out"))
optimizer = adam_with_dale(4e-4)
step = make_train_step(optimizer, model.config, 0.2, 1e-3, 50, None, fused=True)
state0 = model.init_state(jax.random.PRNGKey(1), 24)
out = step(trainable, optimizer.init(trainable), frozen, state0, events, y)
np.savez(sys.argv[1], *[np.asarray(leaf) for leaf in jax.tree_util.tree_leaves(out)])
"""


@pytest.mark.slow
@pytest.mark.skipif("avx512f" not in open("/proc/cpuinfo").read() if os.path.exists(
    "/proc/cpuinfo") else True, reason="needs a CPU with AVX-512")  # fmt: skip
def test_avx512_and_avx2_builds_give_the_same_training_step(tmp_path):
    """The AVX-512 kernels (16-lane cell updates and their adjoint, the 12 x 32 product
    kernel) do per lane and per output what the AVX2 ones do: a fused training step of the
    tiny tier (64 E and 16 I cells: whole 16-lane blocks) gives the same bits from a build
    with AVX-512 and from one without it (``EI_SIM_NATIVE_FLAGS=-mno-avx512f``), each in its
    own process."""
    outs = []
    for extra in ("", "-mno-avx512f"):
        path = tmp_path / f"step{len(outs)}.npz"
        env = {**os.environ, "EI_SIM_NATIVE_FLAGS": extra, "JAX_PLATFORMS": "cpu"}
        subprocess.run([sys.executable, "-c", _ONE_STEP, str(path)], check=True, env=env,
                       timeout=900, capture_output=True)  # fmt: skip
        outs.append(np.load(path))
    assert len(outs[0].files) == len(outs[1].files) > 5
    for key in outs[0].files:
        np.testing.assert_array_equal(outs[0][key], outs[1][key], err_msg=key)
