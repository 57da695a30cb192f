"""Training: gradients, Dale's law, determinism, the budget, resumption and bad input."""

import dataclasses
import os

import h5py
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ei_sim.models import get_model
from ei_sim.sim.config import NetworkConfig
from ei_sim.sim.engine import Weights, init_state, simulate
from ei_sim.sim.surrogate import arctan, damp_gradient, fast_sigmoid
from ei_sim.training.config import TrainConfig
from ei_sim.training.spiking import parse_budget, tier_model, train


def quick(budget=None, epochs=2, **changes):
    """A very small recipe: 32 E cells, 50 ms trials, 200 samples."""
    cfg = dataclasses.replace(
        TrainConfig.for_tier("tiny", budget=budget),
        n_samples=200,
        epochs=epochs,
        batch_size=32,
        **changes,
    )
    model = tier_model(get_model("ping"), "tiny").replace(n_e=32, n_i=8, t_ms=50.0)
    return model, cfg


@pytest.mark.parametrize("fn, formula", [
    (fast_sigmoid, lambda u, k: k / (1 + k * abs(u)) ** 2),
    (arctan, lambda u, k: k / (1 + (np.pi * k * u / 2) ** 2)),
])  # fmt: skip
def test_surrogates_are_heaviside_forward_with_stated_gradient(fn, formula):
    for u in (-3.0, -0.2, 0.0, 0.7, 4.0):
        assert float(fn(jnp.float32(u), 2.0)) == float(u >= 0)
        assert float(jax.grad(fn)(jnp.float32(u), 2.0)) == pytest.approx(formula(u, 2.0), rel=1e-5)


def test_gradient_damping_scales_gradient_only():
    f = lambda x: jnp.sum(damp_gradient(x, 1000.0) ** 2)  # noqa: E731
    x = jnp.array([1.0, -2.0])
    assert float(f(x)) == pytest.approx(5.0)
    np.testing.assert_allclose(jax.grad(f)(x), 2 * x / 1000.0, rtol=1e-6)


@pytest.mark.parametrize("cell_kernel", ["xla", "native"])
def test_bptt_gradient_matches_finite_differences(cell_kernel):
    """A subthreshold network is smooth: autodiff through the scan (with checkpointing and
    event-driven input, either cell update) must equal central differences of the voltages."""
    from ei_sim.sim import native

    if cell_kernel == "native" and not native.available():
        pytest.skip(f"native kernels unavailable: {native.unavailable_reason()}")
    config = NetworkConfig(n_in=8, n_e=5, n_i=3, n_out=0, t_ms=20.0, grad_damping=1.0,
                           v_init_low_mV=-70.0, v_init_high_mV=-66.0,
                           cell_kernel=cell_kernel)  # fmt: skip
    from ei_sim.data.encoding import poisson_events

    events = poisson_events(np.full((2, 8), 0.9), config.n_steps, 0.05, seed=0)

    def loss(w_in, w_ie):
        w = Weights(w_in=w_in, w_ie=w_ie, w_ei=jnp.zeros((5, 3)))
        final, rec = simulate(w, state0, events, config, record=("v_e",), checkpoint_every=40)
        return jnp.sum(jnp.sin(rec["v_e"][::10])) + jnp.sum(final.e.g_exc_uS)

    with jax.enable_x64(True):
        key = jax.random.PRNGKey(1)
        w_in = jax.random.uniform(key, (8, 5), jnp.float64, 0, 0.004)
        w_ie = jnp.full((3, 5), 0.01, jnp.float64)
        state0 = init_state(config, jax.random.PRNGKey(0), 2, dtype=jnp.float64)
        grads = jax.grad(loss, argnums=(0, 1))(w_in, w_ie)
        assert float(jnp.abs(grads[0]).max()) > 0
        direction = jax.random.normal(jax.random.PRNGKey(2), w_in.shape, jnp.float64)
        eps = 1e-6
        fd = (loss(w_in + eps * direction, w_ie) - loss(w_in - eps * direction, w_ie)) / (2 * eps)
        assert float(jnp.sum(grads[0] * direction)) == pytest.approx(float(fd), rel=1e-5)


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    model, cfg = quick(epochs=2)
    run_dir = str(tmp_path_factory.mktemp("runs") / "a")
    return model, cfg, train(model, cfg, run_dir, progress=False)


def test_after_epoch_runs_once_each_epoch_is_written(tmp_path):
    """``after_epoch(epochs_done)`` runs after each epoch's run file is written; an interrupt
    raised there (ei-sim train's check for a dropped Ctrl-C) ends the run with that epoch
    kept."""
    model, cfg = quick(epochs=3)
    calls = []

    def after(done):
        with h5py.File(os.path.join(tmp_path / "r", "run.h5")) as fh:
            calls.append((done, int(fh.attrs["epochs_done"])))
        if done == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(model, cfg, str(tmp_path / "r"), progress=False, after_epoch=after)
    assert calls == [(1, 1), (2, 2)]
    with h5py.File(tmp_path / "r" / "run.h5") as fh:
        assert fh.attrs["epochs_done"] == 2


def test_dale_projection_and_frozen_weights(quick_run):
    model, cfg, result = quick_run
    init = model.init_weights(jax.random.fold_in(jax.random.PRNGKey(cfg.seed), 0))
    best = result.best_weights
    for name in cfg.trained:
        assert float(getattr(best, name).min()) >= 0.0
        assert not np.array_equal(getattr(best, name), getattr(init, name))
    np.testing.assert_array_equal(best.w_ei, init.w_ei)
    np.testing.assert_array_equal(best.w_ie, init.w_ie)


def test_run_file_holds_metrics_weights_and_provenance(quick_run):
    _, cfg, result = quick_run
    with h5py.File(os.path.join(result.run_dir, "run.h5")) as fh:
        assert fh.attrs["status"] == "complete" and fh.attrs["epochs_done"] == 2
        assert fh["metrics/test_accuracy"].shape == (2,)
        assert "provenance.git_commit" in fh.attrs and fh.attrs["train.seed"] == cfg.seed
        assert "weights/best/w_in" in fh and "optimizer" in fh
        # the reference trial's gamma verdict per epoch: 1 rhythm, 0 none
        for name in ("gamma_rhythmic", "gamma_p_value", "gamma_depth", "ref_gamma_peak_Hz"):
            assert fh[f"metrics/{name}"].shape == (2,)
        assert set(fh["metrics/gamma_rhythmic"][()]) <= {0.0, 1.0}  # NaN: none stored


def test_same_seed_same_result_other_seed_differs(quick_run, tmp_path):
    model, cfg, first = quick_run
    again = train(model, cfg, str(tmp_path / "b"), progress=False)
    np.testing.assert_array_equal(again.best_weights.w_in, first.best_weights.w_in)
    assert np.array_equal(again.metrics["train_loss"], first.metrics["train_loss"])
    other = train(model, dataclasses.replace(cfg, seed=7), str(tmp_path / "c"), progress=False)
    assert not np.array_equal(other.metrics["train_loss"], first.metrics["train_loss"])


def test_resume_equals_uninterrupted(quick_run, tmp_path):
    model, cfg, full = quick_run
    run_dir = str(tmp_path / "r")
    train(model, dataclasses.replace(cfg, epochs=1), run_dir, progress=False)  # "killed" after 1
    resumed = train(model, cfg, run_dir, resume=True, progress=False)
    np.testing.assert_array_equal(resumed.best_weights.w_in, full.best_weights.w_in)
    np.testing.assert_array_equal(resumed.metrics["test_accuracy"], full.metrics["test_accuracy"])


def test_resume_refuses_a_different_configuration(quick_run, tmp_path):
    model, cfg, result = quick_run
    with pytest.raises(ValueError, match="different configuration"):
        train(model, dataclasses.replace(cfg, learning_rate=1e-2), result.run_dir, resume=True)
    with pytest.raises(ValueError, match="already holds a run"):
        train(model, cfg, result.run_dir)


def test_truncated_run_file_is_reported(quick_run, tmp_path):
    from ei_sim.training.stored import evaluate_run

    data = open(os.path.join(quick_run[2].run_dir, "run.h5"), "rb").read()
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "run.h5").write_bytes(data[: len(data) // 3])
    with pytest.raises(ValueError, match="unreadable"):
        evaluate_run(str(tmp_path / "t"))


def test_eval_scales_weights(quick_run):
    from ei_sim.training.stored import evaluate_run

    base = evaluate_run(quick_run[2].run_dir)
    assert base.accuracy == pytest.approx(quick_run[2].best_accuracy)
    silent = evaluate_run(quick_run[2].run_dir, w_in_scale=0.0)
    assert silent.rate_e_Hz == 0.0 and silent.rate_i_Hz == 0.0


def test_non_finite_loss_at_step_zero_is_explained(tmp_path, monkeypatch):
    model, cfg = quick(epochs=1)

    original = type(model).init_weights

    def poisoned(self, key):
        w = original(self, key)
        return w._replace(w_out=w.w_out * jnp.nan)

    monkeypatch.setattr(type(model), "init_weights", poisoned)
    with pytest.raises(ValueError, match="not finite at step 0"):
        train(model, cfg, str(tmp_path / "n"), progress=False)


@pytest.mark.slow
def test_budget_lowers_e_rate(tmp_path):
    # lambda is raised from 1e-3 so that the term bites within four short epochs of a
    # 64-cell network (the penalty sums over cells, so it scales with N_E).
    results = {}
    for budget in (None, 0.2):
        cfg = TrainConfig.for_tier("tiny", budget=budget, budget_strength=0.05)
        model = tier_model(get_model("ping"), "tiny")
        results[budget] = train(model, cfg, str(tmp_path / str(budget)), progress=False)
    assert results[0.2].metrics["test_rate_e_Hz"][-1] < results[None].metrics["test_rate_e_Hz"][-1]
    assert results[None].best_accuracy > 0.3  # learns far above chance in four epochs


@pytest.mark.parametrize("bad", [{"tier": "huge"}, {"budget": -1.0}, {"epochs": 0},
                                 {"trained": ("w_xx",)}])  # fmt: skip
def test_train_config_rejects_bad_values(bad):
    with pytest.raises(ValueError):
        TrainConfig(**bad)
    with pytest.raises(ValueError, match="budget must be one of"):
        parse_budget("3")


def test_cli_overrides_tier_size_and_trial_length(tmp_path, capsys):
    from ei_sim.cli import main

    run_dir = tmp_path / "small"
    args = ["train", "--tier", "tiny", "--n-e", "16", "--t-ms", "30", "--epochs", "1",
            "--samples", "100", "--batch-size", "20", "--out", str(run_dir)]  # fmt: skip
    assert main(args) == 0
    assert "best test accuracy" in capsys.readouterr().out
    with h5py.File(run_dir / "run.h5") as fh:
        assert fh.attrs["model.config.n_e"] == 16 and fh.attrs["model.config.n_i"] == 4
        assert fh.attrs["model.config.t_ms"] == 30.0
    assert main(["train", "--tier", "tiny", "--n-e", "2", "--out", str(tmp_path / "x")]) == 2


def test_optimiser_skips_a_non_finite_step_and_counts_it():
    """optax.apply_if_finite over clip, Adam and keep_params_nonnegative on the masked leaves:
    a NaN gradient leaves the weights and the Adam state as they were and is counted."""
    import optax

    from ei_sim.training.optim import dale_adam, skipped_steps

    params = {"dale": jnp.array([0.5, 0.01]), "free": jnp.array([-1.0, 2.0])}
    opt = dale_adam(0.1, 1.0, {"dale": True, "free": False})
    state = opt.init(params)
    grads = {"dale": jnp.array([-1.0, 1.0]), "free": jnp.array([1.0, -1.0])}
    updates, state = opt.update(grads, state, params)
    new = optax.apply_updates(params, updates)
    np.testing.assert_allclose(new["dale"], [0.6, 0.0], rtol=1e-5)  # 0.01 - 0.1 held at 0
    assert float(new["free"][0]) < -1.0  # an unmasked leaf may be negative
    bad = {"dale": jnp.array([jnp.nan, 1.0]), "free": jnp.array([1.0, jnp.inf])}
    updates, skipped = opt.update(bad, state, new)
    assert all(float(jnp.abs(u).max()) == 0.0 for u in jax.tree.leaves(updates))
    for a, b in zip(jax.tree.leaves(skipped.inner_state), jax.tree.leaves(state.inner_state),
                    strict=True):  # fmt: skip
        np.testing.assert_array_equal(a, b)
    assert skipped_steps(state) == 0 and skipped_steps(skipped) == 1


def test_a_run_file_of_the_old_optimiser_layout_resumes(quick_run, tmp_path):
    """Run files written before the optimiser counted skipped steps hold the inner chain's
    state alone (no apply_if_finite counters); they resume to the uninterrupted result."""
    model, cfg, full = quick_run
    run_dir = str(tmp_path / "old")
    train(model, dataclasses.replace(cfg, epochs=1), run_dir, progress=False)
    with h5py.File(os.path.join(run_dir, "run.h5"), "a") as fh:
        leaves = [fh["optimizer"][k][...] for k in sorted(fh["optimizer"])]
        del fh["optimizer"]
        for k, leaf in enumerate(leaves[3:]):  # drop notfinite_count, last_finite, total
            fh.create_dataset(f"optimizer/leaf_{k:04d}", data=leaf)
        del fh.attrs["checksum"]  # files of that layout were written before checksums
    resumed = train(model, cfg, run_dir, resume=True, progress=False)
    np.testing.assert_array_equal(resumed.best_weights.w_in, full.best_weights.w_in)
    np.testing.assert_array_equal(resumed.metrics["train_loss"], full.metrics["train_loss"])
    with h5py.File(os.path.join(run_dir, "run.h5")) as fh:
        assert len(fh["optimizer"]) == len(leaves)  # written back in today's layout
