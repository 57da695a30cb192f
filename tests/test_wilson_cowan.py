"""Wilson-Cowan rate model: Dale projection, Perron estimator, training, LDS monitor, config."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ei_sim.data.mnist import Split
from ei_sim.rate import network as wc
from ei_sim.rate.perron import lds_monitor, perron_root, spectral_penalty
from ei_sim.rate.train import RateTrainConfig, train_rate
from ei_sim.training.optim import project_non_negative

TARGET_EE, TARGET_II = 0.9, 0.4


def test_dale_projection_idempotent_and_non_expansive():
    a, b = jax.random.normal(jax.random.PRNGKey(0), (2, 50, 40))
    pa, pb = project_non_negative(a), project_non_negative(b)
    assert jnp.all(pa >= 0)
    np.testing.assert_array_equal(project_non_negative(pa), pa)
    assert jnp.all(jnp.abs(pa - pb) <= jnp.abs(a - b))


def test_perron_gradient_matches_finite_differences():
    with jax.enable_x64(True):
        w = jax.random.uniform(jax.random.PRNGKey(1), (6, 6), dtype=jnp.float64)
        grad = jax.grad(lambda m: perron_root(m, 30))(w)
        h = 1e-6
        for i, j in [(0, 0), (2, 5), (4, 1)]:
            e = jnp.zeros_like(w).at[i, j].set(h)
            fd = (perron_root(w + e, 30) - perron_root(w - e, 30)) / (2 * h)
            assert abs(float(grad[i, j] - fd)) < 1e-7


def test_perron_converges_on_irreducible_and_reducible_matrices():
    rng = np.random.default_rng(0)
    irreducible = rng.uniform(0, 1, (30, 30))
    reducible = np.zeros((30, 30))  # block upper-triangular: rho = max of the diagonal blocks
    reducible[:20, :20] = rng.uniform(0, 0.5, (20, 20))
    reducible[20:, 20:] = rng.uniform(0, 0.5, (10, 10))
    reducible[:20, 20:] = rng.uniform(0, 1.0, (20, 10))
    for w in (irreducible, reducible, reducible.T):
        expected = np.max(np.abs(np.linalg.eigvals(w)))
        estimate = float(perron_root(jnp.asarray(w, jnp.float32), 100))
        assert estimate == pytest.approx(expected, rel=1e-4)


def _tiny_split(n_train: int, n_test: int) -> Split:
    from ei_sim.data.mnist import load_pool, sample_and_split

    s = sample_and_split(load_pool("embedded"), 300, 0.2, 42)
    return Split(s.x_train[:n_train], s.y_train[:n_train], s.x_test[:n_test], s.y_test[:n_test])


@pytest.fixture(scope="module")
def tiny_run():
    # Start with rho(W_EE) ~ 1.5 and rho(W_II) ~ 0.6, above both targets.
    config = wc.WCConfig(gain_ee=1.5, gain_ii=0.6)
    train = RateTrainConfig(
        rho_ee_target=TARGET_EE, rho_ii_target=TARGET_II, lds_every_steps=10, seed=0
    )
    return train_rate(config, train, progress=False)


def test_tiny_tier_learns_with_non_negative_blocks(tiny_run):
    assert tiny_run.best_accuracy > 0.4
    assert np.all(tiny_run.history["min_recurrent_weight"] >= 0)
    assert tiny_run.n_skipped == 0


def test_spectral_regulariser_settles_at_or_below_targets(tiny_run):
    assert tiny_run.history["rho_ee"][-1] <= TARGET_EE + 0.05
    assert tiny_run.history["rho_ii"][-1] <= TARGET_II + 0.05


def test_lds_monitor_flags_unstable_initialisation():
    config = wc.WCConfig(gain_ee=3.0)
    train = RateTrainConfig(spectral_weight=0.0, lds_every_steps=1, batch_size=40, epochs=1, seed=0)
    result = train_rate(config, train, split=_tiny_split(80, 40), progress=False)
    assert result.history["lds_check_stable"].size == 2  # every step (80 / 40)
    assert not np.any(result.history["lds_check_stable"])
    assert not np.any(result.history["lds_stable"])  # the end-of-epoch check
    assert np.all(result.history["lds_check_margin"] < 0)


def test_lds_monitor_certifies_weak_coupling():
    config = wc.WCConfig(gain_ee=0.1, gain_ei=0.1, gain_ie=0.1, gain_ii=0.1)
    report = lds_monitor(wc.init_params(jax.random.PRNGKey(0), config), config)
    assert report.stable and report.margin > 0


def test_step_matches_equations():
    config = wc.WCConfig(n_units=10, n_in=3)
    p = wc.init_params(jax.random.PRNGKey(3), config)
    rates = wc.Rates(e=jnp.full((config.n_e,), 0.3), i=jnp.full((config.n_i,), 0.2))
    drive = wc.input_drive(p, jnp.ones(3), config)
    new = wc.step(p, rates, drive, config)
    pre_e = p.w_ee.T @ rates.e - p.w_ie.T @ rates.i + drive.e
    expected_e = (1 - config.alpha_e) * rates.e + config.alpha_e * jnp.maximum(pre_e, 0)
    np.testing.assert_allclose(new.e, expected_e, rtol=1e-6)


@pytest.mark.parametrize(
    "changes, match",
    [
        ({"tau_e_ms": 0.0}, "tau_e_ms"),
        ({"tau_i_ms": -1.0}, "tau_i_ms"),
        ({"e_fraction": 1.0}, "e_fraction"),
        ({"e_fraction": 0.0}, "e_fraction"),
        ({"dt_ms": 20.0}, "forward Euler unstable"),
        ({"steps_internal": 0}, "steps_internal"),
        ({"activation": "tanhh"}, "activation"),
    ],
)
def test_bad_config_raises(changes, match):
    with pytest.raises(ValueError, match=match):
        wc.WCConfig(**changes)


@pytest.mark.parametrize("target", [-0.1, float("nan"), float("inf")])
def test_bad_spectral_targets_raise(target):
    w = jnp.ones((3, 3))
    with pytest.raises(ValueError, match="finite number >= 0"):
        spectral_penalty(w, w, target, 1.0)
    with pytest.raises(ValueError):
        RateTrainConfig(rho_ii_target=target)


def test_bad_train_arguments_raise(tmp_path):
    with pytest.raises(ValueError, match="tier"):
        RateTrainConfig(tier="huge")
    with pytest.raises(ValueError, match="does not exist"):
        train_rate(out=str(tmp_path / "missing" / "run.h5"), progress=False)
