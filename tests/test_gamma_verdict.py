"""The gamma verdict (ei_sim.sim.spectrum.gamma_verdict): rhythms are called rhythms, and
asynchronous, Poisson, broadband and loop-less activity is not.

Cases (numbers in the docstring of gamma_verdict and in docs/gamma.md): a trained PING
network (the golden tiny run's weights, 8 trials of 1 s) and a synthetic 40 Hz rhythm must
be rhythmic; the Vogels-Abbott network (``ei-sim simulate --model va_coba``, and Brian2's
small one of the golden file), Poisson trains, a population under shared broadband input and
a silent-I no-loop cell of the golden grid (W_EI = 0) must not.
"""

from __future__ import annotations

import h5py
import jax
import numpy as np
import pytest
from golden_files import GRID_2X2, SIMULATE, TINY_RUN

from ei_sim.sim import spectrum
from ei_sim.sim.spectrum import gamma_verdict, gamma_verdict_raster

DT_MS = 0.1


# ---------------------------------------------------------------- spike trains
def poisson_raster(rate_Hz=5.0, n_cells=200, t_ms=200.0, trials=1, seed=1):
    rng = np.random.default_rng(seed)
    n = int(round(t_ms / DT_MS))
    return rng.random((n, trials, n_cells)) < rate_Hz * DT_MS * 1e-3


def rhythm_raster(freq_Hz=40.0, depth=1.0, rate_Hz=5.0, n_cells=200, t_ms=200.0, seed=1):
    """Every cell Poisson at ``rate (1 + depth cos 2 pi f t)``: a population rhythm."""
    rng = np.random.default_rng(seed)
    t_s = np.arange(int(round(t_ms / DT_MS))) * DT_MS * 1e-3
    rate = rate_Hz * (1 + depth * np.cos(2 * np.pi * freq_Hz * t_s + rng.uniform(0, 6.3)))
    return rng.random((t_s.size, 1, n_cells)) < (rate * DT_MS * 1e-3)[:, None, None]


def shared_input_raster(tau_ms=20.0, sigma=0.3, rate_Hz=5.0, n_cells=1000, t_ms=200.0, seed=1):
    """Every cell Poisson at a rate driven by one shared Ornstein-Uhlenbeck process
    (correlation time ``tau_ms``): coordination at all low frequencies, no rhythm."""
    rng = np.random.default_rng(seed)
    n = int(round(t_ms / DT_MS))
    a = np.exp(-DT_MS / tau_ms)
    x = np.zeros(n)
    noise = rng.standard_normal(n) * np.sqrt(1 - a * a)
    for k in range(1, n):
        x[k] = a * x[k - 1] + noise[k]
    rate = rate_Hz * np.exp(sigma * x - sigma**2 / 2)
    return rng.random((n, 1, n_cells)) < (rate * DT_MS * 1e-3)[:, None, None]


def golden_weights_raster(group: str, t_ms=1000.0, trials=8, drop_ms=20.0):
    """E raster (T, B, N_E) of the golden tiny run's network with the weights in ``group`` of
    ``path``, on ``trials`` test digits of trials of ``t_ms`` (the weights were trained on
    50 ms trials; the input is stationary, so a longer trial shows the rhythm the trained
    loop makes at a resolution that can tell it)."""
    from ei_sim.data.encoding import encode
    from ei_sim.sim.engine import Weights
    from ei_sim.sim.model import model_from_attrs
    from ei_sim.sim.monitors import Monitors
    from ei_sim.sim.recorder import record
    from ei_sim.store.attrs import read_attrs
    from ei_sim.training.stored import load_stored

    path, name = group.split(":")
    with h5py.File(TINY_RUN) as fh:
        attrs = read_attrs(fh)
    with h5py.File(path) as fh:
        weights = Weights(**{k: jax.numpy.asarray(v[()]) for k, v in fh[name].items()})
    model = model_from_attrs(attrs).replace(t_ms=t_ms)
    import shutil
    import tempfile

    with tempfile.TemporaryDirectory() as run_dir:
        shutil.copyfile(TINY_RUN, f"{run_dir}/run.h5")
        _, split, _, _ = load_stored(run_dir)
    events = encode(split.x_test[:trials], model.config, (42, 7))
    state0 = model.init_state(jax.random.PRNGKey(1), trials)
    _, rec = record(weights, state0, events, model.config, Monitors())
    return rec.raster("e", model.config.n_e)[int(round(drop_ms / DT_MS)) :]


# ---------------------------------------------------------------- must be rhythmic
def test_synthetic_rhythm_is_a_rhythm():
    v = gamma_verdict_raster(rhythm_raster(), DT_MS)
    assert v.verdict == "rhythm" and v.rhythmic, v.reason
    assert v.frequency_Hz == pytest.approx(40.0, abs=2.5) and v.resolution_Hz == 5.0
    assert v.p_value == pytest.approx(0.01)  # above every one of the 99 surrogates
    assert v.depth == pytest.approx(1.0, abs=0.2)  # the modulation depth it was made with
    assert v.prominence > 10


def test_trained_ping_run_is_a_rhythm():
    raster = golden_weights_raster(f"{TINY_RUN}:weights/best")
    assert raster.any(axis=(0, 2)).all()
    v = gamma_verdict_raster(raster, DT_MS)
    assert v.verdict == "rhythm", v.reason
    assert 10.0 < v.frequency_Hz < 25.0 and v.depth > 0.8 and v.prominence > 2.5


# ---------------------------------------------------------------- must not be
def test_poisson_trains_are_not_a_rhythm():
    for seed in (1, 2, 3):
        v = gamma_verdict_raster(poisson_raster(seed=seed), DT_MS)
        assert v.verdict == "no rhythm" and v.p_value > 0.05, v.reason
        # the lab's significance (peak / band median) would have called a peak
        assert spectrum.gamma_peak(poisson_raster(seed=seed)[:, 0].mean(axis=1), DT_MS)


def test_shared_broadband_input_is_not_a_rhythm():
    v = gamma_verdict_raster(shared_input_raster(), DT_MS)
    assert v.verdict == "no rhythm", v.reason


def test_weak_coordination_in_a_large_population_is_shallow():
    """A 10 % modulation of 3,200 cells is detected (p = 0.01) but is not called a rhythm:
    the ratio N grows with the number of cells, the modulation depth does not."""
    v = gamma_verdict_raster(rhythm_raster(depth=0.1, rate_Hz=20.0, n_cells=3200, t_ms=1000.0),
                             DT_MS)  # fmt: skip
    assert v.p_value == pytest.approx(0.01) and v.excess > 20
    assert v.verdict == "no rhythm" and v.depth == pytest.approx(0.1, abs=0.03)
    assert "shallow" in v.reason


def test_brian2_vogels_abbott_network_is_not_a_rhythm():
    from golden_files import GOLDEN_DIR

    with h5py.File(f"{GOLDEN_DIR}/brian2_reference.h5") as fh:
        g = fh["va_small/brian2/e"]
        step, index = g["step"][()], g["index"][()]
        n_steps = int(round(float(fh["va_small"].attrs["config.t_ms"]) / DT_MS))
    v = gamma_verdict(step, np.zeros_like(step), index, n_steps, 1, 320, DT_MS)
    assert v.verdict == "no rhythm" and v.depth < spectrum.MIN_DEPTH, v.reason


@pytest.mark.slow
def test_va_coba_simulation_is_not_a_rhythm():
    """``ei-sim simulate --model va_coba`` (3,200 E / 800 I, 1 s): the lab's arg-max finds a
    130 Hz peak 20 times the band median; the cells are coordinated there (p = 0.01) but
    modulate the population rate by 9 % only."""
    from ei_sim.models import get_model
    from ei_sim.sim.run import simulate_model, summary_line

    result = simulate_model(get_model("va_coba"), seed=0, keep=False)
    v = result.verdict
    assert result.gamma.significance > 10  # what the plain significance said
    assert v.verdict == "no rhythm" and "shallow" in v.reason and v.depth < 0.2
    assert v.resolution_Hz == pytest.approx(1.0)
    assert "no rhythm" in summary_line("va_coba", result)


def test_silent_i_no_loop_cell_is_not_a_rhythm():
    raster = golden_weights_raster(f"{GRID_2X2}:cells/wei0__wie4__seed42/weights")
    assert raster.any()
    v = gamma_verdict_raster(raster, DT_MS)
    assert v.verdict == "no rhythm" and v.p_value > 0.05, v.reason


# ---------------------------------------------------------------- edges and properties
def test_silent_and_too_short_windows():
    assert gamma_verdict_raster(np.zeros((2000, 1, 10), bool), DT_MS).verdict == "silent"
    short = gamma_verdict_raster(rhythm_raster(t_ms=30.0), DT_MS)
    assert short.verdict == "too short" and short.resolution_Hz == pytest.approx(33.3, abs=0.1)
    assert "55 ms" in short.reason


def test_surrogates_keep_every_cell_and_are_reproducible():
    raster = poisson_raster(t_ms=100.0, n_cells=20)
    t, b, c = np.nonzero(raster)
    rng = np.random.default_rng(0)
    shifted = spectrum._shifted(t, b, c, raster.shape[0], 1, 20, rng)
    assert np.array_equal(np.bincount(c, minlength=20), np.bincount(c, minlength=20))
    # a rotation keeps each cell's inter-spike intervals (up to the wrap)
    for cell in range(3):
        own = np.sort(shifted[c == cell])
        gaps = np.sort(np.diff(np.sort(t[c == cell])))
        assert set(gaps) <= set(np.diff(own)) | {0} or len(own) < 3
    a = gamma_verdict_raster(raster, DT_MS)
    assert a == gamma_verdict_raster(raster, DT_MS)  # the same spikes, the same verdict


def test_the_labs_arg_max_is_unchanged():
    """The peak the verdict tests is the lab's parabola-refined arg-max, as stored."""
    with h5py.File(SIMULATE) as fh:
        stored = float(fh.attrs["gamma_peak_Hz"])
        activity = fh["population/e"][()]
        bin_ms = float(fh["population/e"].attrs["bin_ms"])
    assert spectrum.gamma_peak(activity, bin_ms).frequency_Hz == pytest.approx(stored)


def test_texts_state_the_resolution():
    v = gamma_verdict_raster(rhythm_raster(), DT_MS)
    text = spectrum.gamma_text(v.frequency_Hz, v)
    assert text.startswith(f"{v.frequency_Hz:.1f} Hz (5 Hz bins): rhythm (p = 0.01, rate modulated")
    assert spectrum.gamma_text(None, None) == "none"
    assert spectrum.verdict_line(None) == "no verdict stored"
    assert v.as_number() == 1.0
    assert gamma_verdict_raster(np.zeros((2000, 5), bool), DT_MS).as_number() == 0.0
    assert spectrum.verdict_word(0.0, np.nan, np.nan) == "silent"
    assert spectrum.verdict_word(0.0, np.nan, 30.0) == "too short"
    assert spectrum.verdict_word(0.0, 0.4, 30.0) == "no rhythm"
    assert spectrum.verdict_word(np.nan) == "no verdict stored"


def test_simulate_files_store_the_verdict(tmp_path):
    """``run_to_file`` (``ei-sim simulate --out``) stores the verdict beside the peak, and
    ``analyze gamma`` states it with the resolution."""
    from ei_sim.analysis.gamma import format_gamma, gamma_from_file
    from ei_sim.data.mnist import embedded_pool
    from ei_sim.models import get_model
    from ei_sim.store.stream import run_to_file

    model = get_model("ping").replace(n_e=64, n_i=16, t_ms=100.0)
    path = str(tmp_path / "s.h5")
    result = run_to_file(path, model, 0, embedded_pool().images[:2])
    with h5py.File(path) as fh:
        attrs = dict(fh.attrs)
    assert attrs["gamma_verdict"] == result.verdict.verdict
    assert attrs["gamma_resolution_Hz"] == pytest.approx(10.0)
    assert attrs["gamma_rhythmic"] == result.verdict.as_number()
    text = format_gamma(gamma_from_file(path))
    assert "(10 Hz bins)" in text and result.verdict.verdict in text
