"""The readout's reset gradient (``NetworkConfig.out_reset_gradient``): "detached" (ei-sim's
default) or "surrogate" (the reference lab's readout). Checked against the adjoint written out
by hand, in float64."""

import dataclasses

import h5py
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ei_sim.cli import main
from ei_sim.sim.config import NetworkConfig
from ei_sim.sim.engine import Weights, init_state, readout, simulate
from ei_sim.store.run import config_differences

N_E, N_OUT, STEPS, BATCH = 12, 3, 60, 2


def spike_train(seed=0):
    rng = np.random.default_rng(seed)
    return (rng.random((STEPS, BATCH, N_E)) < 0.15).astype(np.float64)


def readout_loss(w_out, spikes, c, config):
    """L = sum_b,k c_bk mean_t v_t (the logits' share of a loss), through engine.readout."""
    weights = Weights(None, None, None, None, None, w_out)

    def body(out_v, s):
        v, after = readout(weights, out_v, s, config)
        return after, v

    _, v = jax.lax.scan(body, jnp.zeros((BATCH, N_OUT)), spikes)
    return jnp.sum(c * jnp.mean(v, axis=0)), v


def hand_gradient(w_out, spikes, c, config, surrogate: bool):
    """dL/dW_out from the adjoint of v_t = beta a_{t-1} + kappa s_t W_out, a_t = v_t - theta
    H(v_t - theta): lambda_t = c/T + beta r_t lambda_{t+1}, r_t = 1 - theta H'(v_t - theta)
    (surrogate) or 1 (detached); dL/dW_out = sum_t kappa s_t^T lambda_t."""
    beta = np.exp(-config.dt_ms / config.tau_out_ms)
    kappa = (1 - beta) / config.dt_ms
    theta, k = config.out_threshold, config.surrogate_slope_per_mV
    v = np.zeros((STEPS, BATCH, N_OUT))
    a = np.zeros((BATCH, N_OUT))
    for t in range(STEPS):
        v[t] = beta * a + kappa * spikes[t] @ w_out
        a = v[t] - theta * (v[t] >= theta)
    grad, lam_next = np.zeros_like(w_out), np.zeros((BATCH, N_OUT))
    for t in reversed(range(STEPS)):
        lam = c / STEPS
        if t + 1 < STEPS:
            h = k / (1 + k * np.abs(v[t] - theta)) ** 2
            r = 1 - theta * h if surrogate else 1.0
            lam = lam + beta * r * lam_next
        grad += kappa * spikes[t].T @ lam
        lam_next = lam
    return grad, v


@pytest.mark.parametrize("mode", ["detached", "surrogate"])
def test_readout_gradient_equals_the_hand_adjoint(mode):
    with jax.enable_x64(True):
        _check_readout_gradient(mode)


def _check_readout_gradient(mode):
    config = NetworkConfig(n_in=4, n_e=N_E, n_i=4, n_out=N_OUT, out_reset_gradient=mode)
    rng = np.random.default_rng(1)
    w_out = rng.uniform(0, 0.6, (N_E, N_OUT))
    c = rng.normal(size=(BATCH, N_OUT))
    spikes = spike_train()
    (loss, v), grad = jax.value_and_grad(readout_loss, has_aux=True)(w_out, spikes, c, config)
    want, v_hand = hand_gradient(w_out, spikes, c, config, surrogate=(mode == "surrogate"))
    np.testing.assert_allclose(v, v_hand, rtol=1e-12, atol=1e-12)
    assert float(np.mean(v_hand >= config.out_threshold)) > 0.05  # the reset acts
    np.testing.assert_allclose(grad, want, rtol=1e-10, atol=1e-12)
    other, _ = hand_gradient(w_out, spikes, c, config, surrogate=(mode != "surrogate"))
    assert float(np.max(np.abs(other - want))) > 1e-3 * float(np.max(np.abs(want)))


def test_the_option_changes_gradients_not_spikes():
    """Whole network, engine path: the same final state (spikes, counts, logits) either way,
    different W_in gradients (the fused path's equality with it: tests/test_fused.py)."""
    with jax.enable_x64(True):
        _check_whole_network()


def _check_whole_network():
    config = NetworkConfig(n_in=8, n_e=N_E, n_i=4, n_out=N_OUT, t_ms=15.0)
    keys = jax.random.split(jax.random.PRNGKey(0), 5)
    w = Weights(
        w_in=jax.random.uniform(keys[0], (8, N_E), jnp.float64, 0, 0.3), w_ee=None,
        w_ei=jax.random.uniform(keys[1], (N_E, 4), jnp.float64, 0, 0.1),
        w_ie=jax.random.uniform(keys[2], (4, N_E), jnp.float64, 0, 0.1), w_ii=None,
        w_out=jax.random.uniform(keys[3], (N_E, N_OUT), jnp.float64, 0, 3.0),
    )  # fmt: skip
    from ei_sim.data.encoding import poisson_events

    events = poisson_events(np.full((BATCH, 8), 0.9), config.n_steps, 0.3, seed=0)
    state0 = init_state(config, keys[4], BATCH, dtype=jnp.float64)
    results = {}
    for mode in ("detached", "surrogate"):
        cfg = dataclasses.replace(config, out_reset_gradient=mode)

        def loss(w_in, cfg=cfg):
            final = simulate(w._replace(w_in=w_in), state0, events, cfg)[0]
            return jnp.sum(jnp.sin(final.acc.out_v_sum)), final

        (_, final), g = jax.value_and_grad(loss, has_aux=True)(w.w_in)
        results[mode] = (final, g)
    (f_d, g_d), (f_s, g_s) = results["detached"], results["surrogate"]
    assert float(jnp.sum(f_d.acc.count_e)) > 0
    for a, b in zip(jax.tree.leaves(f_d), jax.tree.leaves(f_s), strict=True):
        np.testing.assert_array_equal(a, b)
    assert float(jnp.max(jnp.abs(g_d - g_s))) > 1e-3 * float(jnp.max(jnp.abs(g_d)))


def test_bad_value_is_refused_and_old_runs_read_as_detached(tmp_path, capsys):
    with pytest.raises(ValueError, match="out_reset_gradient must be one of"):
        NetworkConfig(out_reset_gradient="lab")
    argv = ["train", "--tier", "tiny", "--epochs", "1", "--samples", "60", "--batch-size", "12",
            "--n-e", "8", "--t-ms", "20", "--quiet", "--out", str(tmp_path / "r")]  # fmt: skip
    assert main([*argv, "--set", "out_reset_gradient=yes"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "out_reset_gradient" in err[0], err
    assert main([*argv, "--set", "out_reset_gradient=surrogate"]) == 0
    with h5py.File(tmp_path / "r" / "run.h5") as fh:
        assert fh.attrs["model.config.out_reset_gradient"] == "surrogate"
    # a run file written before the option existed ran with a detached reset
    requested = {"model.config.out_reset_gradient": "detached", "model.config.n_e": 8}
    assert config_differences({"model.config.n_e": 8}, requested) == []
    assert config_differences({"model.config.n_e": 8},
                              {**requested, "model.config.out_reset_gradient": "surrogate"}
                              ) == ["model.config.out_reset_gradient"]  # fmt: skip
