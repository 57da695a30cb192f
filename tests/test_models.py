"""Presets: the stated initialisation statistics (ei_sim.sim.init), and the PING rhythm that COBA
lacks."""

import jax
import numpy as np
import pytest

from ei_sim.data.mnist import embedded_pool
from ei_sim.models import get_model
from ei_sim.models.coba import coba
from ei_sim.models.ping import ping
from ei_sim.models.va_coba import va_coba
from ei_sim.sim.run import run_preset


def test_initial_weights_follow_the_stated_statistics():
    model = ping()
    w = model.init_weights(jax.random.PRNGKey(0))
    assert w.w_in.shape == (784, 1024) and w.w_ei.shape == (1024, 256)
    assert w.w_ie.shape == (256, 1024) and w.w_out.shape == (1024, 10)
    assert w.w_ee is None and w.w_ii is None  # no E->E, no I->I by default
    for block in (w.w_in, w.w_ei, w.w_ie, w.w_out):
        assert float(block.min()) >= 0.0
    density = float((w.w_in > 0).mean())
    assert density == pytest.approx(0.05, abs=0.005)
    # mean of the non-zero entries: mean / (1 - sparsity) / fan_in
    assert float(w.w_in[w.w_in > 0].mean()) == pytest.approx(1.2 / 0.05 / 784, rel=0.02)
    assert float(w.w_ei.mean()) == pytest.approx(1.0 / 1024, rel=0.01)
    assert float(w.w_ie.mean()) == pytest.approx(2.0 / 256, rel=0.01)
    assert float(w.w_out.mean()) * 1024 / 500 == pytest.approx(5.5, rel=0.1)  # clipped N(5.1,3.8)


def test_explicit_coupling_means_override_strength_and_ratio():
    model = ping(w_ei_mean=0.5, w_ie_mean=3.0)
    assert (model.w_ei, model.w_ie) == (0.5, 3.0)
    assert coba().w_ei == 0.0 and coba().w_ie == 0.0
    assert ping(ei_strength=0.25, ei_ratio=4).w_ie == 1.0


def test_unknown_model_and_negative_weights_are_rejected():
    with pytest.raises(ValueError, match="choose one of"):
        get_model("hh")
    with pytest.raises(ValueError, match="non-negative"):
        ping(w_ei_mean=-1.0)


def test_va_coba_has_four_sparse_blocks():
    model = va_coba(sparse=True)
    w = model.init_weights(jax.random.PRNGKey(0))
    for block in (w.w_ee, w.w_ei, w.w_ie, w.w_ii):
        assert block.nnz / (block.shape[0] * block.shape[1]) == pytest.approx(0.02, abs=0.002)
        assert float(block.data.min()) > 0
    assert model.config.n_e + model.config.n_i == 4000


@pytest.mark.slow
def test_ping_shows_a_rhythm_and_coba_does_not():
    images = embedded_pool().images[:16]
    # W_in 2.4: a drive like that of a trained network; the same drive for both networks.
    rhythmic = run_preset(ping(w_in_mean=2.4), seed=0, images=images)
    silent_loop = run_preset(coba(w_in_mean=2.4), seed=0, images=images)
    assert rhythmic.rate_i_Hz > 1.0 and silent_loop.rate_i_Hz == 0.0
    assert silent_loop.rate_e_Hz > 1.0  # COBA is active, just not rhythmic
    assert rhythmic.gamma is not None and 5.0 <= rhythmic.gamma.frequency_Hz <= 150.0
    assert rhythmic.gamma.significance > 5.0
    # COBA's activity is broadband: a peak exists (the lab's arg-max), its significance is low
    assert silent_loop.gamma is not None and silent_loop.gamma.significance < 5.0
    assert np.isfinite(rhythmic.rate_e_Hz)
