"""The mean-field check against the spiking network (analysis/meanfield_check.py): the drive
mapping, the onset rule, the comparison rows and a reduced end-to-end check."""

import math
import os

import numpy as np
import pytest

from ei_sim.analysis import meanfield as mf
from ei_sim.analysis import meanfield_check as mc
from ei_sim.models import get_model

GOLDEN = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data", "golden")

P = mf.MeanFieldParams()
SMALL = {"n_e": 120, "n_i": 30}  # a reduced PING network: the rules, not the numbers


def test_drive_per_intensity_is_the_linearised_ampa_current():
    """65 mV * tau_AMPA (2 ms) * w_in_mean (1.2 uS) * r_max (25 Hz = 0.025 /ms) = 3.9 nA."""
    model = get_model("ping", w_in_mean=1.2)
    assert model.config.tau_ampa_ms == 2.0 and model.config.r_max_Hz == 25.0
    assert mc.drive_per_intensity_nA(model, P) == pytest.approx(3.9, rel=1e-12)
    doubled = get_model("ping", w_in_mean=2.4)
    assert mc.drive_per_intensity_nA(doubled, P) == pytest.approx(7.8, rel=1e-12)
    weaker = P.replace(exc_drive_mV=32.5)
    assert mc.drive_per_intensity_nA(model, weaker) == pytest.approx(1.95, rel=1e-12)


@pytest.mark.parametrize("freq, expected", [
    ([np.nan, np.nan, 30.0, np.nan, 40.0, 42.0], 3.5),  # the final run starts at index 4
    ([np.nan, 25.0, 26.0, 27.0, 28.0, 29.0], 0.5),
    ([np.nan] * 5 + [31.0], 4.5),
    ([30.0] * 6, None),  # no silent level: no onset inside the sweep
    ([np.nan, 30.0, 31.0, 32.0, 33.0, np.nan], None),  # the top level is silent
    ([np.nan] * 6, None),
])  # fmt: skip
def test_measured_onset_is_the_midpoint_before_the_final_oscillating_run(freq, expected):
    sweep = {"drive_nA": np.arange(6.0), "freq_Hz": np.asarray(freq)}
    assert mc.measured_onset(sweep) == expected


def test_rows_carry_the_relative_gap_and_the_table_prints_it():
    row = mc._row("E rate (Hz)", 2.0, 2.5, "at 0.3 nA")
    assert row == {"quantity": "E rate (Hz)", "prediction": 2.0, "measurement": 2.5,
                   "relative_gap": 0.25, "note": "at 0.3 nA"}  # fmt: skip
    assert mc._row("x", -4.0, -5.0)["relative_gap"] == pytest.approx(-0.25)  # / |prediction|
    assert mc._row("x", 0.0, 1.0)["relative_gap"] is None
    assert mc._row("x", None, 1.0)["relative_gap"] is None
    assert mc._row("x", 1.0, None)["relative_gap"] is None
    lines = mc.format_table([row, mc._row("onset (nA)", 0.59, None, "none found")]).splitlines()
    assert lines[0].split() == ["quantity", "prediction", "measurement", "gap", "note"]
    assert lines[1].split()[-6:] == ["2", "2.5", "+25%", "at", "0.3", "nA"]
    assert lines[2].split()[-5:] == ["0.59", "none", "none", "none", "found"]


@pytest.fixture(scope="module")
def small_sweep():
    model = get_model("ping", w_in_mean=1.2, **SMALL)
    return mc.run_levels(model, [0.0, 0.8, 3.0], P, t_ms=200.0, seed=0)


def test_run_levels_gives_one_value_per_drive_in_hz(small_sweep):
    assert set(small_sweep) == {"drive_nA", "rate_e_Hz", "rate_i_Hz", "freq_Hz", "power"}
    for values in small_sweep.values():
        assert np.shape(values) == (3,)
    np.testing.assert_array_equal(small_sweep["drive_nA"], [0.0, 0.8, 3.0])
    # no drive, no input spikes: the network is silent and has no rhythm
    assert small_sweep["rate_e_Hz"][0] == 0.0 and small_sweep["rate_i_Hz"][0] == 0.0
    assert math.isnan(small_sweep["freq_Hz"][0]) and small_sweep["power"][0] == 0.0
    # Hz, not spikes per step: positive under drive and below the refractory ceiling
    ceiling_e_Hz = 1e3 / get_model("ping").config.cell_e.t_ref_ms
    assert 0 < small_sweep["rate_e_Hz"][2] < ceiling_e_Hz
    assert np.all(small_sweep["rate_i_Hz"] >= 0)
    rhythmic = np.isfinite(small_sweep["freq_Hz"])
    assert np.all(small_sweep["power"][~rhythmic] == 0.0)
    assert np.all((small_sweep["freq_Hz"][rhythmic] > 0) & (small_sweep["power"][rhythmic] > 0))


def test_run_levels_refuses_drives_beyond_full_intensity():
    model = get_model("ping", w_in_mean=1.2, **SMALL)
    with pytest.raises(ValueError, match="raise w_in_mean"):
        mc.run_levels(model, [0.5, 4.0], P, t_ms=200.0)  # 4 nA > 3.9 nA at intensity 1


@pytest.mark.parametrize("t_ms", [100.0, float("nan")])
def test_check_refuses_trials_too_short_for_the_gamma_peak(t_ms):
    with pytest.raises(ValueError, match="t_ms must be at least 200 ms"):
        mc.check(t_ms=t_ms)


def test_reduced_check_rows_hold_the_rate_model_predictions(monkeypatch):
    """The whole check on a reduced network: every prediction is the rate model's own number
    (Hopf drive, fixed-point rates, linear frequency, cliff exponent)."""
    monkeypatch.setattr(mc, "get_model", lambda name, **kw: get_model(name, **kw, **SMALL))
    drives, scales, tau = [0.1, 0.4, 1.2, 3.0], (1.0, 2.0), 9.0
    rows = mc.check(drives_nA=drives, coupling_scales=scales, taus_gaba_ms=(tau,),
                    n_trials_freq=2, t_ms=200.0)  # fmt: skip
    by_name = {r["quantity"]: r for r in rows}
    assert list(by_name) == [
        "oscillation onset (nA)", "E rate below onset (Hz)", "I rate below onset (Hz)",
        "gamma frequency, tau_GABA=9 ms (Hz)", "cliff exponent alpha (W_EI)",
    ]  # fmt: skip
    hopf = mf.hopf(P)
    assert by_name["oscillation onset (nA)"]["prediction"] == pytest.approx(hopf.drive_nA)
    assert hopf.drive_nA == pytest.approx(0.59, abs=0.01)  # the lab's Hopf point (meanfield)
    below = min(drives, key=lambda d: abs(d - 0.5 * hopf.drive_nA))  # level nearest 0.5 x onset
    x = mf.fixed_point(below, P)
    assert by_name["E rate below onset (Hz)"]["prediction"] == pytest.approx(1e3 * x[0])
    assert by_name["I rate below onset (Hz)"]["prediction"] == pytest.approx(1e3 * x[1])
    assert f"at {below:.3g} nA" in by_name["E rate below onset (Hz)"]["note"]
    pt = P.replace(tau_gaba_ms=tau)
    ev = np.linalg.eigvals(mf.jacobian(mf.fixed_point(1.5, pt), 1.5, pt))
    freq = by_name["gamma frequency, tau_GABA=9 ms (Hz)"]
    assert freq["prediction"] == pytest.approx(1e3 * np.max(np.abs(ev.imag)) / (2 * np.pi))
    assert freq["note"].endswith("trials with a peak") and "/2 trials" in freq["note"]
    alpha = by_name["cliff exponent alpha (W_EI)"]
    assert alpha["note"].startswith("cliffs c=1: ") and "c=2: " in alpha["note"]
    for row in rows:
        m, p = row["measurement"], row["prediction"]
        assert m is None or (isinstance(m, float) and math.isfinite(m))
        if isinstance(m, float) and isinstance(p, float) and p != 0:
            assert row["relative_gap"] == pytest.approx((m - p) / abs(p))
    table = mc.format_table(rows)
    assert len(table.splitlines()) == 1 + len(rows)


def test_a_trained_run_is_checked_against_its_own_mean_field(tmp_path, capsys):
    """The golden tiny run: the mean field with its own couplings (summed W_EI ~ 1, W_IE ~ 2
    uS) and its trained drive predicts the recruitment cliff of its scale sweep within a
    factor of two (measured: 0.66 predicted, 0.575 swept)."""
    import shutil

    from ei_sim.analysis.meanfield_check import check_run
    from ei_sim.cli import main

    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(os.path.join(GOLDEN, "tiny_run.h5"), run / "run.h5")
    out = check_run(str(run), scales=(0.25, 0.5, 0.55, 0.6, 0.65, 0.7, 0.8, 1.0), progress=False)
    p = out["params"]
    assert p.w_ei_uS == pytest.approx(1.0, rel=0.05) and p.w_ie_uS == pytest.approx(2.0, rel=0.05)
    assert out["drive_nA"] > 0
    cliff = out["rows"][0]
    assert cliff["quantity"].startswith("recruitment cliff")
    assert cliff["prediction"] is not None and cliff["measurement"] is not None
    assert 0.5 < cliff["prediction"] / cliff["measurement"] < 2.0
    assert main(["meanfield", "check", str(tmp_path / "nowhere")]) == 2
    assert "is not an ei-sim run" in capsys.readouterr().err
