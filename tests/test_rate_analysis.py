"""Fixed points, Jacobian spectrum and oscillation onset of the Wilson-Cowan rate model
(analysis/rate_analysis.py), against closed forms of a two-unit (one E, one I) network."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.special

from ei_sim.analysis import rate_analysis as ra
from ei_sim.rate import network as wc

TAU_E_MS, TAU_I_MS = 20.0, 10.0


def two_units(w_ee, w_ei, w_ie, w_ii, activation="relu"):
    """One E and one I unit, one input channel that drives both with weight 1."""
    config = wc.WCConfig(n_units=2, e_fraction=0.5, n_in=1, n_out=1, activation=activation,
                         tau_e_ms=TAU_E_MS, tau_i_ms=TAU_I_MS)  # fmt: skip
    block = lambda w: jnp.full((1, 1), float(w))  # noqa: E731
    params = wc.Params(
        w_in=jnp.ones((1, 2)), b_in=jnp.asarray([0.5, -0.25]), w_ee=block(w_ee), w_ei=block(w_ei),
        w_ie=block(w_ie), w_ii=block(w_ii), w_out=jnp.ones((1, 1)), b_out=jnp.zeros(1),
    )  # fmt: skip
    return config, params


def linear_fixed_point(w_ee, w_ei, w_ie, w_ii, u):
    """relu on its active set: r_E = w_ee r_E - w_ie r_I + u_E, r_I = w_ei r_E - w_ii r_I + u_I."""
    return np.linalg.solve([[1 - w_ee, w_ie], [-w_ei, 1 + w_ii]], u)


def jacobian_2x2(w_ee, w_ei, w_ie, w_ii, s_e, s_i):
    """A = T^-1 (-I + S W) with W = [[w_ee, -w_ie], [w_ei, -w_ii]] (1/ms)."""
    return np.array([[(-1 + s_e * w_ee) / TAU_E_MS, -s_e * w_ie / TAU_E_MS],
                     [s_i * w_ei / TAU_I_MS, (-1 - s_i * w_ii) / TAU_I_MS]])  # fmt: skip


def test_drive_vector_is_x_w_in_plus_b_in_e_first():
    config, params = two_units(0.5, 1.0, 1.0, 0.5)
    np.testing.assert_allclose(ra.drive_vector(params, config, [2.0]), [2.5, 1.75])
    config = wc.WCConfig(n_units=10, n_in=3)
    params = wc.init_params(jax.random.PRNGKey(0), config)
    x = np.asarray([0.2, 0.0, 1.0])
    u = ra.drive_vector(params, config, x)
    assert u.shape == (10,) and u.dtype == np.float64
    expected = x @ np.asarray(params.w_in) + np.asarray(params.b_in)
    np.testing.assert_allclose(u, expected, rtol=1e-6)


@pytest.mark.parametrize("blocks, u", [
    ((0.5, 1.0, 1.0, 0.5), (1.0, 0.2)),
    ((0.0, 2.0, 0.5, 0.0), (0.3, 0.1)),
    ((0.875, 0.5, 0.25, 1.5), (2.0, 1.0)),  # float32-exact blocks
])  # fmt: skip
def test_relu_fixed_point_and_spectrum_match_the_closed_form(blocks, u):
    config, params = two_units(*blocks)
    u = np.asarray(u, float)
    point = ra.fixed_point(params, config, u)
    expected = linear_fixed_point(*blocks, u)
    assert np.all(expected > 0)  # both units active: relu is linear there
    assert point.converged and point.residual < 1e-9
    np.testing.assert_allclose(point.rates, expected, rtol=1e-9)
    a = ra.jacobian_at(params, config, point, u)
    np.testing.assert_allclose(a, jacobian_2x2(*blocks, 1.0, 1.0), rtol=1e-12)
    values = ra.spectrum(a)
    tr, det = np.trace(a), np.linalg.det(a)
    root = np.sqrt(complex(tr * tr / 4 - det))
    expected_values = sorted([tr / 2 + root, tr / 2 - root], key=lambda v: -v.real)
    np.testing.assert_allclose(values, expected_values, rtol=1e-9, atol=1e-12)
    assert values[0].real >= values[1].real


def test_silent_unit_has_zero_rate_and_zero_slope():
    """u_I < 0 and no E -> I coupling: I stays off, its relu slope is 0 (column of -1/tau)."""
    config, params = two_units(0.5, 0.0, 1.0, 0.5)
    u = np.asarray([1.0, -0.5])
    point = ra.fixed_point(params, config, u)
    assert point.converged
    np.testing.assert_allclose(point.rates, [2.0, 0.0], atol=1e-12)  # r_E = u_E / (1 - w_ee)
    a = ra.jacobian_at(params, config, point, u)
    np.testing.assert_allclose(a[1], [0.0, -1.0 / TAU_I_MS], atol=1e-15)


def test_runaway_excitation_is_reported_unconverged():
    config, params = two_units(3.0, 0.0, 0.0, 0.0)  # r_E grows without bound
    point = ra.fixed_point(params, config, np.asarray([1.0, 0.0]))
    assert not point.converged and point.residual == math.inf


def test_relu_pair_never_oscillates():
    """With both units active the trace of A does not depend on the W_EI scale, and it is
    negative here, so no eigenvalue crosses into the right half plane: no onset."""
    config, params = two_units(0.5, 1.0, 1.0, 0.5)
    onset = ra.oscillation_onset(params, config, np.asarray([1.0, 0.2]), np.linspace(0, 4, 9))
    assert onset == ra.Onset(None, None, None)


# Strong E self-excitation with a sigmoid: inhibition recruited by W_EI pulls E towards the
# steep part of its gain, where the trace of A turns positive (a Hopf crossing near 8).
HOPF_BLOCKS, HOPF_U = (16.0, 1.0, 16.0, 0.0), np.asarray([-3.0, -6.0])


def _sigmoid_jacobian_at(scale):
    w_ee, w_ei, w_ie, w_ii = HOPF_BLOCKS
    config, params = two_units(w_ee, w_ei * scale, w_ie, w_ii, "sigmoid")
    point = ra.fixed_point(params, config, HOPF_U)
    r_e, r_i = point.rates
    pre = np.asarray([w_ee * r_e - w_ie * r_i, w_ei * scale * r_e - w_ii * r_i]) + HOPF_U
    np.testing.assert_allclose(point.rates, scipy.special.expit(pre), atol=1e-9)  # r = f(W r + u)
    s = scipy.special.expit(pre) * (1 - scipy.special.expit(pre))
    return jacobian_2x2(w_ee, w_ei * scale, w_ie, w_ii, *s)


def test_hopf_onset_where_the_trace_vanishes_at_sqrt_det_frequency():
    config, params = two_units(*HOPF_BLOCKS, "sigmoid")
    onset = ra.oscillation_onset(params, config, HOPF_U, np.linspace(0.0, 10.0, 21))
    assert onset.scale is not None and 7.5 < onset.scale < 8.5
    a = _sigmoid_jacobian_at(onset.scale)
    # at a Hopf point of a 2x2 system: trace 0, det > 0, eigenvalues +- i sqrt(det)
    assert abs(np.trace(a)) < 1e-3 * np.sqrt(np.linalg.det(a))
    omega_per_ms = np.sqrt(np.linalg.det(a))
    assert onset.frequency_Hz == pytest.approx(1000.0 * omega_per_ms / (2 * math.pi), rel=1e-3)
    assert onset.eigenvalue_per_ms.imag == pytest.approx(omega_per_ms, rel=1e-3)
    assert 1000.0 * abs(onset.eigenvalue_per_ms.imag) / (2 * math.pi) == pytest.approx(
        onset.frequency_Hz
    )
    assert np.trace(_sigmoid_jacobian_at(onset.scale - 0.05)) < 0  # stable focus below
    assert np.trace(_sigmoid_jacobian_at(onset.scale + 0.05)) > 0  # unstable above


def test_analyze_reports_bounds_rates_and_eigenvalues():
    config = wc.WCConfig(n_units=40, n_in=5)
    params = wc.init_params(jax.random.PRNGKey(1), config)
    x = np.linspace(0.0, 1.0, 5)
    report = ra.analyze(params, config, x, scales=np.linspace(0.0, 2.0, 5))
    u = ra.drive_vector(params, config, x)
    point = ra.fixed_point(params, config, u)
    assert report["fixed_point_converged"] and report["fixed_point_residual"] < 1e-6
    assert report["rate_e"] == pytest.approx(np.mean(point.rates[: config.n_e]))
    assert report["rate_i"] == pytest.approx(np.mean(point.rates[config.n_e :]))
    lead = report["leading_eigenvalues_per_ms"]
    assert len(lead) == 3 and all(isinstance(v, complex) for v in lead)
    assert [v.real for v in lead] == sorted((v.real for v in lead), reverse=True)
    full = np.linalg.eigvals(ra.jacobian_at(params, config, point, u))
    assert lead[0].real == pytest.approx(full.real.max())
    assert report["bound_ee"] == 1.0
    assert report["bound_ii"] == pytest.approx(2.0 / (config.dt_ms / config.tau_i_ms) - 1.0)
    rho = np.max(np.abs(np.linalg.eigvals(np.asarray(params.w_ee, np.float64))))
    assert report["rho_ee"] == pytest.approx(rho, rel=1e-2)
    assert isinstance(report["lds_stable"], bool)
    text = ra.format_report(report)
    assert text.startswith(f"fixed point: E {report['rate_e']:.3f}, I {report['rate_i']:.3f}")
    assert f"rho_II {report['rho_ii']:.3f} (bound 19)" in text


def test_format_report_names_the_onset_or_none():
    base = {"rate_e": 0.5, "rate_i": 0.25, "fixed_point_converged": True,
            "leading_eigenvalues_per_ms": [complex(-0.01, 0.2)], "rho_ee": 0.5, "bound_ee": 1.0,
            "rho_ii": 0.4, "bound_ii": 19.0, "lds_stable": True, "lds_margin_per_ms": -0.02,
            "onset_scale": None, "onset_frequency_Hz": None}  # fmt: skip
    text = ra.format_report(base)
    assert "leading eigenvalue -0.0100+0.2000j /ms" in text
    assert "LDS certified (margin -0.0200 /ms)" in text and text.endswith("onset: none")
    text = ra.format_report({**base, "onset_scale": 2.5, "onset_frequency_Hz": 31.25,
                             "leading_eigenvalues_per_ms": [], "lds_stable": False})  # fmt: skip
    assert text.endswith("oscillation onset: W_EI x 2.500 at 31.2 Hz")
    assert "leading eigenvalue n/a" in text and "LDS not certified" in text
