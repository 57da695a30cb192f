"""Tests of the analysis package: gain function, Hopf detection, cliff, basins, gamma."""

from __future__ import annotations

import argparse
import warnings

import h5py
import numpy as np
import pytest

from ei_sim.analysis import basins, cliff, gamma, hopf, meanfield
from ei_sim.analysis.report import write_report
from ei_sim.store.spikes import write_spike_lists


# ---------------------------------------------------------------- Siegert gain vs simulation
def _euler_maruyama_rate_Hz(mu_V, sigma_V, tau_ms, t_ref_ms, n_cells, t_ms, dt_ms, seed):
    """LIF cells ``tau dV = -(V - mu) dt + sqrt(2 tau) sigma_V dW`` (free std sigma_V),
    threshold -50 mV, reset -65 mV held for t_ref; one column of cells per mean ``mu_V``."""
    rng = np.random.default_rng(seed)
    mu = np.repeat(np.asarray(mu_V, float)[None, :], n_cells, axis=0)
    v = mu + sigma_V * rng.standard_normal(mu.shape)
    ref = np.zeros(mu.shape, int)
    n_ref = int(round(t_ref_ms / dt_ms))
    noise = sigma_V * np.sqrt(2 * dt_ms / tau_ms)
    decay = dt_ms / tau_ms
    count = np.zeros(mu.shape[1])
    for _ in range(int(t_ms / dt_ms)):
        v += decay * (mu - v) + noise * rng.standard_normal(mu.shape)
        ref -= 1
        v[ref > 0] = -65.0
        fired = (v >= -50.0) & (ref <= 0)
        count += fired.sum(axis=0)
        v[fired] = -65.0
        ref[fired] = n_ref
    return count / (n_cells * t_ms * 1e-3)


def test_siegert_matches_euler_maruyama():
    """The "membrane_sd" convention: sigma_V is the free membrane potential's SD."""
    mu_V = np.array([-56.0, -52.0, -48.0])
    dt_ms = 0.01
    sim = _euler_maruyama_rate_Hz(mu_V, 4.0, 20.0, 3.0, 300, 1500.0, dt_ms, seed=1)
    # Discrete-time threshold crossings are missed: the effective threshold moves up by
    # zeta(1/2)/sqrt(pi)-ish * the noise step (Brunel-Hakim correction, 0.5826 sigma sqrt(dt/tau)).
    shift = 0.5826 * np.sqrt(2) * 4.0 * np.sqrt(dt_ms / 20.0)
    theory = np.array(
        [1e3 * meanfield.siegert_rate_per_ms(m, 4.0, 20.0, 3.0, -50.0 + shift,
                                             sigma_convention="membrane_sd") for m in mu_V]
    )  # fmt: skip
    assert np.all(theory > 5)
    np.testing.assert_allclose(sim, theory, rtol=0.05)


def test_siegert_is_robust_and_monotone():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mus = np.linspace(-400, 200, 61)
        rates = [meanfield.siegert_rate_per_ms(m, 4.0, 20.0, 3.0) for m in mus]
    assert np.all(np.isfinite(rates)) and np.all(np.diff(rates) >= 0)
    assert rates[0] == pytest.approx(0.0, abs=1e-300) and rates[-1] < 1 / 3.0


# ---------------------------------------------------------------- Hopf detection
def brusselator(x, b, a=1.5):
    """dx = a - (b+1) x + x^2 y, dy = b x - x^2 y: Hopf at b = 1 + a^2 with omega = a."""
    u, v = x
    return np.array([a - (b + 1) * u + u * u * v, b * u - u * u * v])


def test_hopf_detector_on_brusselator():
    point = hopf.find_hopf(brusselator, 1.0, 5.0, x0=[1.5, 1.0])
    assert point.parameter == pytest.approx(1 + 1.5**2, abs=1e-6)
    assert point.omega == pytest.approx(1.5, rel=1e-5)
    assert point.unstable_side == 1
    assert hopf.find_hopf(brusselator, 1.0, 3.0, x0=[1.5, 1.0]) is None


def _normal_form(sign):
    def rhs(x, mu, omega=2.0):
        r2 = x[0] ** 2 + x[1] ** 2
        cubic = -r2 if sign < 0 else r2 - r2 * r2
        return np.array([
            (mu + cubic) * x[0] - omega * x[1], omega * x[0] + (mu + cubic) * x[1]
        ])  # fmt: skip

    return rhs


@pytest.mark.parametrize("sign,kind", [(-1, "supercritical"), (1, "subcritical")])
def test_hopf_criticality_normal_form(sign, kind):
    rhs = _normal_form(sign)
    point = hopf.find_hopf(rhs, -1.0, 1.0, equilibrium=lambda mu: np.zeros(2), n_grid=10)
    assert point.parameter == pytest.approx(0.0, abs=1e-8)
    assert point.omega == pytest.approx(2.0, rel=1e-6)
    result = hopf.hopf_criticality(rhs, point, (0.04, 0.16, 0.64), t_end=600.0, kick=0.05)
    assert result.kind == kind
    if kind == "supercritical":
        np.testing.assert_allclose(result.amplitudes, np.sqrt(result.distances), rtol=0.02)


def test_meanfield_fixed_point_and_hopf():
    p = meanfield.MeanFieldParams()
    x = meanfield.fixed_point(1.0, p)
    np.testing.assert_allclose(meanfield.rhs(x, 1.0, p), 0.0, atol=1e-9)
    np.testing.assert_allclose(
        meanfield.jacobian(x, 1.0, p),
        hopf.numerical_jacobian(lambda y: meanfield.rhs(y, 1.0, p), x), rtol=1e-3, atol=1e-6,
    )  # fmt: skip
    h = meanfield.hopf(p)
    assert h is not None and 0.0 < h.drive_nA < 4.0 and 5.0 < h.frequency_Hz < 150.0
    f = [row["frequency_Hz"] for row in meanfield.frequency_vs_tau_gaba((6.0, 12.0), p)]
    assert f[0] > f[1]  # slower inhibition, slower rhythm


# ---------------------------------------------------------------- cliff
SCALES = np.round(np.arange(0.05, 1.01, 0.05), 2)


def _rates(threshold_scale):
    """0 below ``threshold_scale``, then rising exponentially from 0.2 Hz."""
    above = SCALES >= threshold_scale - 1e-9
    return np.where(above, 0.2 * np.exp(5 * (SCALES - threshold_scale)), 0.0)


def test_cliff_rule_midpoint_and_failures():
    got = cliff.find_cliff(SCALES, _rates(0.4), refine=True)
    assert got.status == "ok" and got.f_star == pytest.approx(0.375)
    assert (got.s_below, got.s_above) == (pytest.approx(0.35), pytest.approx(0.4))
    assert got.refined is None  # the rate below is exactly 0: no log-linear refinement
    smooth = cliff.find_cliff(SCALES, 0.05 * np.exp(10 * (SCALES - 0.52)), refine=True)
    assert smooth.f_star == pytest.approx(0.525) and smooth.refined == pytest.approx(0.52)
    assert cliff.find_cliff([0.5], [1.0]).status == "too_few_points"
    assert cliff.find_cliff(SCALES, np.zeros_like(SCALES)).status == "no_crossing"
    assert cliff.find_cliff(SCALES, np.ones_like(SCALES)).status == "above_at_smallest_scale"
    with pytest.raises(cliff.CliffNotFound, match="cannot locate"):
        cliff.find_cliff(SCALES, np.zeros_like(SCALES), strict=True)


def test_alpha_fit_known_exponent():
    c = np.array([0.25, 0.5, 1.0, 2.0])
    fit = cliff.fit_alpha(c, 0.4 * c**-0.7)
    assert fit.alpha == pytest.approx(0.7) and fit.stderr == pytest.approx(0.0, abs=1e-6)
    rng = np.random.default_rng(0)
    noisy = cliff.fit_alpha(c, 0.4 * c**-0.7 * np.exp(0.03 * rng.standard_normal(4)))
    assert noisy.ci95[0] < 0.7 < noisy.ci95[1]
    assert cliff.fit_alpha(c[:2], 0.4 * c[:2] ** -0.7).ci95 is None
    with pytest.raises(ValueError):
        cliff.fit_alpha([1.0], [0.3])


def _write_sweep(path, kind, target, cliff_scales, coupling=(0.25, 0.5, 1.0, 2.0)):
    rates = np.array([_rates(s) for s in cliff_scales])
    with h5py.File(path, "w") as fh:
        fh.attrs["kind"], fh.attrs["coupling_target"] = kind, target
        fh["scales"], fh["coupling_scales"] = SCALES, np.asarray(coupling)
        fh["rate_i_Hz"], fh["rate_e_Hz"] = rates, 2 * rates
        fh["accuracy"] = np.full(rates.shape, 0.8)


def test_sweep_file_w_ei_moves_and_w_ie_does_not(tmp_path):
    _write_sweep(tmp_path / "ei.h5", "coupling_sweep", "w_ei", (0.8, 0.55, 0.4, 0.25))
    res = cliff.analyze_sweep(tmp_path / "ei.h5")
    assert [cl.f_star for cl in res["cliffs"]] == pytest.approx([0.775, 0.525, 0.375, 0.225])
    assert res["moves"]["moves"] is True and 0.3 < res["alpha"].alpha < 0.9
    _write_sweep(tmp_path / "ie.h5", "coupling_sweep", "w_ie", (0.4, 0.4, 0.45, 0.4))
    res = cliff.analyze_sweep(tmp_path / "ie.h5")
    assert res["moves"]["moves"] is False and "does not move" in res["moves"]["statement"]
    assert "alpha" in cliff.format_cliff_report(res)


def test_wrong_kind_raises(tmp_path):
    _write_sweep(tmp_path / "g.h5", "grid", "w_ei", (0.4,), coupling=(1.0,))
    with pytest.raises(ValueError, match="scale_sweep"):
        cliff.analyze_sweep(tmp_path / "g.h5")
    _write_sweep(tmp_path / "s.h5", "scale_sweep", "none", (0.4,), coupling=(1.0,))
    with pytest.raises(ValueError, match="'grid'"):
        basins.read_grid(tmp_path / "s.h5")
    with pytest.raises(ValueError, match="simulate"):
        gamma.gamma_from_file(tmp_path / "s.h5")


# ---------------------------------------------------------------- basins
def _grid_table():
    rng = np.random.default_rng(3)
    n = 8
    rate_e = np.concatenate([rng.uniform(0.5, 2, n), rng.uniform(6, 9, n), rng.uniform(2, 3.6, n)])
    rate_i = np.concatenate([np.zeros(2 * n), rng.uniform(11, 22, n)])
    acc = np.concatenate([rng.uniform(0.76, 0.78, n), rng.uniform(0.83, 0.84, n),
                          rng.uniform(0.80, 0.86, n)])  # fmt: skip
    return rate_e, rate_i, acc


def test_basin_labels_and_unsupervised_check(tmp_path):
    rate_e, rate_i, acc = _grid_table()
    labels = basins.label_cells(rate_e, rate_i)
    assert list(labels[[0, 8, 16]]) == ["no-loop", "stretched-COBA", "PING"]
    assert (labels == "PING").sum() == 8 and (labels == "no-loop").sum() == 8
    assert basins.label_cells([10.0], [0.3])[0] == "stretched-COBA"
    check = basins.unsupervised_check(rate_e, rate_i, acc, labels.tolist())
    assert check["ari"] == pytest.approx(1.0)
    with h5py.File(tmp_path / "grid.h5", "w") as fh:
        fh.attrs["kind"] = "grid"
        for k in range(len(acc)):
            cell = fh.create_group(f"cells/c{k:02d}")
            values = dict(w_ei=0.5 + k % 5 * 0.5, w_ie=0.5 + k // 5 * 0.5, seed=42,
                          best_accuracy=acc[k],
                          final_accuracy=acc[k], rate_e_Hz=rate_e[k], rate_i_Hz=rate_i[k],
                          gamma_peak_Hz=np.nan)  # fmt: skip
            cell.attrs.update(values)
    result = basins.analyze_grid(basins.read_grid(tmp_path / "grid.h5"))
    # every cell has a loop: PING by its I rate, the rest stretched-COBA
    assert list(result["labels"]) == ["stretched-COBA"] * 16 + ["PING"] * 8
    text = basins.format_basins(result)
    assert "PING: n=8" in text and basins.label_rule() in text
    assert write_report(str(tmp_path / "grid.h5"), str(tmp_path / "grid.html")) == "grid"
    # one self-contained page: its figures embedded, no PNG written beside it
    assert "data:image/png;base64," in (tmp_path / "grid.html").read_text()
    assert not list(tmp_path.glob("*.png"))


def test_trajectory_figure_draws_finished_and_training_cells():
    """Finished cells: a solid path in their label's colour ending in a dot; cells still
    training: a dashed grey path; a cell without epochs: nothing."""
    from matplotlib.colors import to_hex

    fig = basins.trajectory_figure(
        [{"name": "a", "label": "PING", "e_history": [1.0, 2.0], "i_history": [5.0, 10.0]}],
        [{"name": "b", "e_history": [3.0, 3.5], "i_history": [0.0, 0.2]},
         {"name": "c", "e_history": [], "i_history": []}],
    )  # fmt: skip
    lines = fig.axes[0].get_lines()
    assert len(lines) == 4  # a path and a dot per cell with epochs
    solid = [ln for ln in lines if ln.get_linestyle() == "-"]
    assert [list(ln.get_xdata()) for ln in solid] == [[1.0, 2.0]]
    assert to_hex(solid[0].get_color()) == basins.COLOURS["PING"]
    dashed = [ln for ln in lines if ln.get_linestyle() == "--"]
    assert [list(ln.get_ydata()) for ln in dashed] == [[0.0, 0.2]]


def test_grid_report_shows_the_cells_still_training(tmp_path):
    """A grid whose campaign is under way: the report names the cells not in the store yet,
    with the epochs, best accuracy and last rates their run files hold; a store with no
    finished cell yet gets a page too."""
    import shutil

    from golden_files import GRID_2X2

    from ei_sim.sweeps.store import open_or_create, planned_cells, unfinished_cells

    store = tmp_path / "grid.h5"
    shutil.copy(GRID_2X2, store)
    with h5py.File(store, "r+") as fh:  # the same grid with a third W_IE, 3 epochs per cell
        fh.attrs["grid.w_ie"], fh.attrs["grid.train.epochs"] = "(0.0, 4.0, 8.0)", "3"
        settings = {k: v for k, v in fh.attrs.items() if k.startswith("grid.")}
    assert planned_cells(settings) == [(0.0, 0.0, 42), (0.0, 4.0, 42), (0.0, 8.0, 42),
                                       (2.0, 0.0, 42), (2.0, 4.0, 42), (2.0, 8.0, 42)]
    run_dir = tmp_path / "grid.h5.cells" / "wei2__wie8__seed42"
    run_dir.mkdir(parents=True)
    with h5py.File(run_dir / "run.h5", "w") as fh:  # two of three epochs stored
        fh.attrs["epochs_done"] = 2
        for key, values in {"test_accuracy": [0.5, 0.625, 0.0], "test_rate_e_Hz": [3.0, 4.5, 0],
                            "test_rate_i_Hz": [10.0, 12.5, 0.0]}.items():  # fmt: skip
            fh.create_dataset(f"metrics/{key}", data=np.array(values))
    continued = tmp_path / "grid.h5.cells" / "wei0__wie0__seed42"  # stored with 1 epoch,
    continued.mkdir()  # now continued to 3 (its run file says so)
    with h5py.File(continued / "run.h5", "w") as fh:
        fh.attrs["epochs_done"], fh.attrs["train.epochs"] = 1, 3
        for key in ("test_accuracy", "test_rate_e_Hz", "test_rate_i_Hz"):
            fh.create_dataset(f"metrics/{key}", data=np.array([0.25, 0.0, 0.0]))
    pending = {c["name"]: c for c in unfinished_cells(str(store))}
    assert sorted(pending) == ["wei0__wie0__seed42", "wei0__wie8__seed42", "wei2__wie8__seed42"]
    assert pending["wei0__wie0__seed42"]["epochs_done"] == 1
    assert pending["wei0__wie8__seed42"]["epochs_done"] == 0
    started = pending["wei2__wie8__seed42"]
    assert (started["epochs_done"], started["epochs"], started["best_accuracy"],
            started["rate_e_Hz"], started["rate_i_Hz"]) == (2, 3, 0.625, 4.5, 12.5)
    assert (started["e_history"], started["i_history"]) == ([3.0, 4.5], [10.0, 12.5])
    assert pending["wei0__wie8__seed42"]["e_history"] == []
    assert write_report(str(store), str(tmp_path / "grid.html")) == "grid"
    page = (tmp_path / "grid.html").read_text()
    assert "Cells not finished" in page and "3 of 6" in page and "2 of 3" in page
    assert "not started" in page and "62.5" in page
    assert "2 of them have stored epochs" in page and "alt='cells over their epochs'" in page

    empty = tmp_path / "empty.h5"  # a campaign's store before its first cell finished
    open_or_create(str(empty), settings, force=False)
    assert len(unfinished_cells(str(empty))) == 6  # (its cells folder is another one)
    assert write_report(str(empty), str(tmp_path / "empty.html")) == "grid"
    assert "6 cells of this grid are not in the store" in (tmp_path / "empty.html").read_text()


# ---------------------------------------------------------------- gamma
def _oscillating_raster(freq_Hz=40.0, p_fire=0.3, t_ms=500.0, dt_ms=0.1, n_e=200, n_i=50, b=4):
    """I cells volley at ``freq_Hz``; each E cell fires once per cycle with prob ``p_fire``."""
    rng = np.random.default_rng(0)
    n_steps = int(t_ms / dt_ms)
    period = int(round(1000.0 / freq_Hz / dt_ms))
    e = np.zeros((n_steps, b, n_e), bool)
    i = np.zeros((n_steps, b, n_i), bool)
    for start in range(period // 2, n_steps - 40, period):
        jitter_i = rng.integers(0, 20, (b, n_i))
        i[start + 10 + jitter_i, np.arange(b)[:, None], np.arange(n_i)] = True
        fire = rng.random((b, n_e)) < p_fire
        jitter_e = rng.integers(0, 20, (b, n_e))
        bb, nn = np.nonzero(fire)
        e[start + jitter_e[bb, nn], bb, nn] = True
    return e, i


def test_gamma_peak_and_participation():
    e, i = _oscillating_raster()
    stats = gamma.gamma_stats(e, i, 0.1)
    assert stats.frequency_Hz == pytest.approx(40.0, abs=1.5)
    # cycles start at I peaks and E spikes fall within one cycle: participation = p_fire
    assert stats.participation == pytest.approx(0.3, abs=0.03)
    assert 0.3 < stats.rhythmicity <= 1.0 and stats.n_cycles > 50
    assert stats.significance > 100
    # Poisson noise: the lab's arg-max still gives a finite peak, but with low significance
    rng = np.random.default_rng(1)
    noise = rng.random(e.shape) < 0.0012
    flat = gamma.gamma_stats(noise, rng.random(i.shape) < 0.002, 0.1)
    assert 5.0 <= flat.frequency_Hz <= 150.0 and 1.0 <= flat.significance < 10.0
    # silence: no peak at all
    assert gamma.gamma_stats(np.zeros_like(e), np.zeros_like(i), 0.1) == gamma.NO_GAMMA


def test_gamma_from_file_and_report(tmp_path):
    # 400 ms: 2.5 Hz bins, so 25 Hz sits on a bin (between bins a sharp synthetic rhythm's
    # power splits in two and its on-bin harmonic can win the plain arg-max)
    e, i = _oscillating_raster(freq_Hz=25.0, t_ms=400.0)
    path = tmp_path / "run.h5"
    with h5py.File(path, "w") as fh:
        fh.attrs["model.config.dt_ms"] = 0.1
        for name, raster in (("e", e), ("i", i)):
            write_spike_lists(fh.create_group(f"spikes/{name}"), raster, 0.1)
            fh[f"population/{name}"] = raster.mean(axis=2).astype(np.float32)
    out = gamma.gamma_from_file(str(path))
    assert out["frequency_Hz"] == pytest.approx(25.0, abs=1.5)
    assert out["participation"] == pytest.approx(0.3, abs=0.04)
    assert "participation" in gamma.format_gamma(out)
    # the surrogate verdict, computed from the spikes of a file that stores none
    assert out["verdict"].rhythmic and "(2.5 Hz bins): rhythm (p = 0.01" in gamma.format_gamma(out)
    assert write_report(str(path), str(tmp_path / "run.html")) == "simulate"


# ---------------------------------------------------------------- CLI
def test_cli_register_and_handlers(tmp_path, capsys):
    from ei_sim.cli.analyze import register

    parser = argparse.ArgumentParser()
    handlers = register(parser.add_subparsers(dest="command"))
    assert set(handlers) == {"analyze", "meanfield", "report"}
    _write_sweep(tmp_path / "ei.h5", "coupling_sweep", "w_ei", (0.8, 0.55, 0.4, 0.25))
    args = parser.parse_args(["analyze", "cliff", str(tmp_path / "ei.h5")])
    assert handlers["analyze"](args) == 0 and "alpha" in capsys.readouterr().out
    args = parser.parse_args(["analyze", "basins", str(tmp_path / "ei.h5")])
    with pytest.raises(ValueError, match="grid"):
        handlers["analyze"](args)
    with pytest.raises(ValueError, match="does not exist"):
        handlers["report"](parser.parse_args(["report", str(tmp_path / "missing.h5")]))
    assert handlers["report"](parser.parse_args(["report", str(tmp_path / "ei.h5")])) == 0
    assert (tmp_path / "ei.html").exists() and not list(tmp_path.glob("*.png"))


# ---------------------------------------------------------------- figures that do not mislead
def test_alpha_undefined_is_said_in_words(tmp_path):
    _write_sweep(tmp_path / "ie.h5", "coupling_sweep", "w_ie", (0.4, 0.4, 0.45, 0.4))
    text = cliff.format_cliff_report(cliff.analyze_sweep(tmp_path / "ie.h5"))
    assert "nan" not in text and "-0" not in text
    assert "alpha: not defined here" in text and "W_EI scales" in text
    _write_sweep(tmp_path / "flat.h5", "coupling_sweep", "w_ei", (0.4, 0.4, 0.4, 0.4))
    text = cliff.format_cliff_report(cliff.analyze_sweep(tmp_path / "flat.h5"))
    assert "alpha = 0 " in text and "no uncertainty" in text and "nan" not in text
    _write_sweep(tmp_path / "one.h5", "coupling_sweep", "w_ei", (0.4, 9.0, 9.0, 9.0))
    text = cliff.format_cliff_report(cliff.analyze_sweep(tmp_path / "one.h5"))
    assert "alpha: not defined; it needs the cliff located at two or more" in text


def test_text_colour_follows_the_background():
    from ei_sim.analysis.figures import text_colour

    assert text_colour((1.0, 1.0, 0.0)) == "black"  # yellow: white text was unreadable
    assert text_colour((0.27, 0.0, 0.33)) == "white"  # viridis' dark purple
    assert text_colour((0.5, 0.5, 0.5)) == "black"


def test_grid_heatmaps_have_honest_ranges_units_and_verdicts():
    from ei_sim.analysis.sweep_plots import grid_heatmap_figures, grid_table

    cells = [dict(w_ei=a, w_ie=b, seed=1, best_accuracy=0.80 + 0.01 * a, rate_e_Hz=2.0,
                  rate_i_Hz=3.0 * a * b, gamma_peak_Hz=40.0, gamma_rhythmic=float(a * b > 0),
                  label="x") for a in (0.0, 1.0, 2.5) for b in (0.0, 1.0)]  # fmt: skip
    figs = grid_heatmap_figures(cells)
    assert set(figs) == {"best_accuracy", "rate_e_Hz", "rate_i_Hz", "gamma"}
    image = figs["best_accuracy"].axes[0].images[0]
    assert image.get_clim() == (0.0, 100.0)  # not auto-ranged to 80-82.5 %
    ax = figs["best_accuracy"].axes[0]
    assert "(uS)" in ax.get_xlabel() and "(uS)" in ax.get_ylabel()
    assert figs["rate_i_Hz"].axes[0].images[0].get_clim() == (0.0, 10.0)
    texts = [t.get_text() for t in figs["gamma"].axes[0].texts]
    assert "no rhythm" in texts and any(t.startswith("40 Hz") for t in texts)
    import matplotlib.pyplot as plt

    for fig in figs.values():
        plt.close(fig)
    table = grid_table(cells)
    assert "rhythm" in table.splitlines()[0] and " yes " in table and "80.0%" in table
    old = [{k: v for k, v in c.items() if k != "gamma_rhythmic"} for c in cells]
    assert "no verdict stored" in grid_table(old)


def test_sweep_figure_marks_threshold_cliff_and_e_rate(tmp_path):
    from ei_sim.analysis.sweep_plots import sweep_figure

    _write_sweep(tmp_path / "ei.h5", "coupling_sweep", "w_ei", (0.8, 0.55, 0.4, 0.25))
    result = cliff.analyze_sweep(tmp_path / "ei.h5")
    fig = sweep_figure(result, result["threshold_Hz"], result["cliffs"])
    rate_i, rate_e, acc = fig.axes[:3]
    assert rate_i.get_yscale() == "symlog" and rate_i.get_ylim()[0] == 0  # 0 Hz drawn at 0
    assert any(line.get_label().startswith("threshold") for line in rate_i.lines)
    assert rate_e.get_ylabel() == "E rate (Hz)" and acc.get_ylim() == (0.0, 100.0)
    assert len([ln for ln in rate_e.lines if ln.get_linestyle() == ":"]) == 4  # f* of each c


def test_report_of_a_run_directory_and_its_file(tmp_path, capsys):
    from golden_files import tiny_run_dir

    from ei_sim.cli import main

    run_dir = tiny_run_dir(tmp_path / "run")
    with h5py.File(f"{run_dir}/run.h5", "a") as fh:  # a run written before verdicts existed
        for name in ("gamma_rhythmic", "gamma_p_value", "gamma_depth", "ref_gamma_peak_Hz"):
            if f"metrics/{name}" in fh:
                del fh[f"metrics/{name}"]
    assert main(["report", run_dir, "--quiet"]) == 0
    page = (tmp_path / "run" / "run.html").read_text()
    assert "no verdict stored" in page
    assert "Reference trial" in page and "best test accuracy" in page
    assert main(["report", f"{run_dir}/run.h5", "--out", str(tmp_path / "r.html"),
                 "--quiet"]) == 0  # fmt: skip
    capsys.readouterr()
    (tmp_path / "empty").mkdir()
    assert main(["report", str(tmp_path / "empty")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "folder without a run.h5" in err


def test_grid_figures_need_no_scikit_learn():
    """``analyze_grid(..., check=False)`` (what ``ei-sim grid`` draws its figures from) gives
    the same labels and summary without the mixture check and without importing scikit-learn
    (seconds of a quick start's grid)."""
    import subprocess
    import sys

    from golden_files import GRID_2X2

    code = ("import sys\n"
            "from ei_sim.analysis import basins\n"
            f"r = basins.analyze_grid(basins.read_grid({GRID_2X2!r}), check=False)\n"
            "assert 'sklearn' not in sys.modules\n"
            "print(list(r['labels']), r['check']['ari'])\n")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, check=True)  # fmt: skip
    full = basins.analyze_grid(basins.read_grid(GRID_2X2))
    assert done.stdout.strip() == f"{list(full['labels'])} None"
