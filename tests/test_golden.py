"""Each golden file of data/golden/ (data/make_golden.py) still loads with the current code,
with the kind, schema version and shapes its commands wrote."""

import os

import numpy as np
import pytest
from golden_files import (
    COUPLING_SWEEP,
    GOLDEN_DIR,
    GRID_2X2,
    SCALE_SWEEP,
    SIMULATE,
    TINY_RUN,
    tiny_run_dir,
)

from ei_sim.store.kinds import KINDS, open_kind, schema_version

KIND_OF = {TINY_RUN: "run", GRID_2X2: "grid", SCALE_SWEEP: "scale_sweep",
           COUPLING_SWEEP: "coupling_sweep", SIMULATE: "simulate"}  # fmt: skip
BRIAN2 = os.path.join(GOLDEN_DIR, "brian2_reference.h5")  # read by test_brian2_golden.py


@pytest.mark.parametrize("path", [*KIND_OF, BRIAN2], ids=os.path.basename)
def test_golden_file_has_its_kind_and_the_current_schema(path):
    kind = KIND_OF.get(path, "brian2_reference")
    assert os.path.getsize(path) < 1_000_000
    with open_kind(path, kind) as fh:
        assert fh.attrs["kind"] == kind
        assert schema_version(fh) == KINDS[kind].schema_version
        assert "provenance.git_commit" in fh.attrs


def test_every_golden_file_is_listed():
    on_disk = {name for name in os.listdir(GOLDEN_DIR) if name.endswith(".h5")}
    assert on_disk == {os.path.basename(p) for p in [*KIND_OF, BRIAN2]}


def test_tiny_run_loads_and_evaluates_to_its_stored_accuracy(tmp_path):
    from ei_sim.store.run import load_run
    from ei_sim.training.stored import evaluate_run, load_stored

    run_dir = tiny_run_dir(tmp_path / "run")
    attrs, metrics, best, last, _ = load_run(run_dir)
    assert attrs["status"] == "complete" and attrs["epochs_done"] == 1
    assert attrs["train.tier"] == "tiny" and attrs["train.n_samples"] == 120
    assert all(len(values) == 1 for values in metrics.values())
    for weights in (best, last):
        assert weights.w_in.shape == (784, 32) and weights.w_out.shape == (32, 10)
        assert weights.w_ei.shape == (32, 8) and weights.w_ie.shape == (8, 32)
    model, split, _, _ = load_stored(run_dir)
    assert (model.config.n_e, model.config.n_i, model.config.t_ms) == (32, 8, 50.0)
    assert len(split.y_test) == 24 and len(split.y_train) == 96
    result = evaluate_run(run_dir)
    assert result.accuracy == pytest.approx(attrs["best_accuracy"])
    assert result.accuracy == pytest.approx(metrics["test_accuracy"][0])


def test_grid_holds_its_four_cells_and_labels():
    from ei_sim.analysis.basins import analyze_grid, read_grid
    from ei_sim.sweeps.store import cell_name, read_cells

    cells = {c["name"]: c for c in read_cells(GRID_2X2)}
    expected = {cell_name(a, b, 42) for a in (0.0, 2.0) for b in (0.0, 4.0)}
    assert set(cells) == expected
    for cell in cells.values():
        assert 0.0 <= cell["best_accuracy"] <= 1.0 and cell["best_epoch"] == 1
        assert cell["rate_e_Hz"] >= 0 and cell["rate_i_Hz"] >= 0
    assert cells[cell_name(0.0, 4.0, 42)]["label"] == "no-loop"
    assert cells[cell_name(2.0, 4.0, 42)]["label"] == "PING"
    table = read_grid(GRID_2X2)
    result = analyze_grid(table)
    assert len(result["labels"]) == 4
    assert list(result["labels"]) == [cells[n]["label"] for n in table["name"]]


@pytest.mark.parametrize("path, target, shape", [
    (SCALE_SWEEP, "none", (1, 24)), (COUPLING_SWEEP, "w_ie", (2, 3)),
], ids=["scale", "coupling"])  # fmt: skip
def test_sweep_reads_with_its_axes(path, target, shape):
    from ei_sim.analysis.cliff import read_sweep

    sweep = read_sweep(path)
    assert sweep["coupling_target"] == target
    assert np.shape(sweep["scales"]) == (shape[1],)
    assert np.shape(sweep["coupling_scales"]) == (shape[0],)
    for key in ("accuracy", "rate_e_Hz", "rate_i_Hz"):
        values = np.asarray(sweep[key])
        assert values.shape == shape and np.all(np.isfinite(values)) and np.all(values >= 0)
    assert np.all(np.asarray(sweep["accuracy"]) <= 1.0)
    zero = int(np.argmin(np.asarray(sweep["scales"])))
    if np.asarray(sweep["scales"])[zero] == 0.0:  # no input, no activity
        assert np.all(np.asarray(sweep["rate_e_Hz"])[:, zero] == 0.0)


def test_simulate_file_spikes_match_its_rates(tmp_path):
    from ei_sim.analysis.report import write_report

    with open_kind(SIMULATE, "simulate") as fh:
        attrs = dict(fh.attrs)
        n_e, n_i = int(attrs["model.config.n_e"]), int(attrs["model.config.n_i"])
        seconds = int(attrs["n_steps"]) * float(attrs["model.config.dt_ms"]) * 1e-3
        for pop, n, rate in (("e", n_e, attrs["rate_e_Hz"]), ("i", n_i, attrs["rate_i_Hz"])):
            g = fh[f"spikes/{pop}"]
            steps, index = g["step"][()], g["index"][()]
            assert len(steps) == pytest.approx(rate * n * seconds, abs=0.5)
            assert np.all((0 <= steps) & (steps < attrs["n_steps"]))
            assert np.all((0 <= index) & (index < n))
            np.testing.assert_allclose(g["time_ms"][()], steps * attrs["model.config.dt_ms"])
        assert fh["population/e"].shape == (50, 1)  # 1 ms bins of 50 ms, one trial
        assert attrs["complete"] and attrs["digit"] == 3
    assert write_report(SIMULATE, str(tmp_path / "sim.html")) == "simulate"
