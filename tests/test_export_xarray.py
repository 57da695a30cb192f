"""Exports of grid stores and sweep files to xarray (netCDF): labelled dimensions, units,
exact values, a file xarray opens without ei-sim, and atomic, --force-guarded writes.
Skipped without the xarray extra."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import h5py
import numpy as np
import pytest

from ei_sim.analysis.export import export_file
from ei_sim.cli import main
from ei_sim.sweeps.inference import write_sweep
from ei_sim.sweeps.store import add_cell, cell_name, open_or_create

xr = pytest.importorskip("xarray")

GRID_CELLS = {(0.0, 0.0): 2, (0.0, 2.0): 3, (1.0, 0.0): 3}  # (w_ei, w_ie) -> epochs; (1, 2) absent


@pytest.fixture(scope="module")
def grid_file(tmp_path_factory):
    """A grid store written by the store's own functions, from synthetic numbers."""
    path = str(tmp_path_factory.mktemp("grid") / "grid.h5")
    open_or_create(path, {"grid.model": "ping", "grid.tier": "tiny"}, force=False)
    for k, ((w_ei, w_ie), epochs) in enumerate(GRID_CELLS.items()):
        summary = {"w_ei": w_ei, "w_ie": w_ie, "seed": 42, "best_accuracy": 0.5 + 0.1 * k,
                   "final_accuracy": 0.45 + 0.1 * k, "best_epoch": epochs, "rate_e_Hz": 1.5 * k,
                   "rate_i_Hz": 2.5 * k, "gamma_peak_Hz": np.nan if k == 0 else 30.0 + k,
                   "label": ["no-loop", "no-loop", "PING"][k]}  # fmt: skip
        metrics = {"test_accuracy": 0.1 * np.arange(1, epochs + 1) + k,
                   "test_rate_i_Hz": np.arange(epochs) * 1.0,
                   "gamma_peak_Hz": np.full(epochs, 20.0 + k)}  # fmt: skip
        add_cell(path, cell_name(w_ei, w_ie, 42), summary, metrics, {"w_in": np.ones((2, 2))})
    return path


@pytest.fixture(scope="module")
def sweep_file(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("sweep") / "coupling_w_ei.h5")
    rng = np.random.default_rng(1)
    result = {"scales": np.array([0.5, 1.0, 2.0]), "coupling_scales": np.array([0.5, 1.0]),
              "accuracy": rng.random((2, 3)), "rate_e_Hz": rng.random((2, 3)),
              "rate_i_Hz": rng.random((2, 3)), "coupling_target": "w_ei",
              "run_dir": "runs/x"}  # fmt: skip
    write_sweep(path, result)
    return path, result


# ---------------------------------------------------------------- xarray
def test_grid_to_xarray(grid_file, tmp_path):
    out = export_file(grid_file, "xarray", str(tmp_path / "grid.nc"))
    with xr.open_dataset(out, engine="h5netcdf") as ds:
        assert dict(ds.sizes) == {"w_ei": 2, "w_ie": 2, "seed": 1, "epoch": 3}
        cell = ds.sel(w_ei=1.0, w_ie=0.0, seed=42)
        assert float(cell.best_accuracy) == 0.7 and str(cell.label.values) == "PING"
        np.testing.assert_array_equal(cell.test_accuracy.values, 0.1 * np.arange(1, 4) + 2)
        short = ds.sel(w_ei=0.0, w_ie=0.0, seed=42).test_accuracy.values
        np.testing.assert_array_equal(short[:2], [0.1, 0.2])
        assert np.isnan(short[2])
        assert np.isnan(float(ds.best_accuracy.sel(w_ei=1.0, w_ie=2.0, seed=42)))
        assert float(cell.gamma_peak_Hz) == 32.0  # the best epoch's, beside the per-epoch one
        np.testing.assert_array_equal(cell.gamma_peak_Hz_per_epoch.values, [22.0] * 3)
        assert ds.rate_i_Hz.attrs["units"] == "Hz" and ds.w_ei.attrs["units"] == "uS"
        assert ds.gamma_peak_Hz_per_epoch.attrs["units"] == "Hz"
        assert ds.attrs["source_kind"] == "grid" and ds.attrs["grid.tier"] == "tiny"
        assert "kind" not in ds.attrs and "schema_version" not in ds.attrs  # an export, no store


def test_real_grid_and_sweep_to_xarray(tmp_path):
    """The golden 2x2 grid (one epoch per cell) and the golden W_in sweep of the golden tiny
    run (data/README.md), both exported."""
    from golden_files import GRID_2X2, SCALE_SWEEP, copy_of

    store = copy_of(GRID_2X2, tmp_path)
    with h5py.File(store, "r") as fh:
        cell = fh["cells"][cell_name(2.0, 4.0, 42)]
        best, metrics = cell.attrs["best_accuracy"], {k: cell["metrics"][k][()] for k in
                                                       cell["metrics"]}  # fmt: skip
    with xr.open_dataset(export_file(store, "xarray"), engine="h5netcdf") as ds:
        at = ds.sel(w_ei=2, w_ie=4, seed=42)
        assert float(at.best_accuracy) == best
        for key, values in metrics.items():
            name = "gamma_peak_Hz_per_epoch" if key == "gamma_peak_Hz" else key
            np.testing.assert_array_equal(at[name].values, values)
    sweep = copy_of(SCALE_SWEEP, tmp_path)
    with h5py.File(sweep, "r") as fh:
        accuracy, scales = fh["accuracy"][()], fh["scales"][()]
    with xr.open_dataset(export_file(sweep, "xarray"), engine="h5netcdf") as ds:
        assert dict(ds.sizes) == {"coupling_scale": 1, "input_scale": 24}
        np.testing.assert_array_equal(ds.accuracy.values, accuracy)
        np.testing.assert_array_equal(ds.input_scale.values, scales)


def test_sweep_to_xarray_opens_without_ei_sim(sweep_file, tmp_path):
    path, result = sweep_file
    out = export_file(path, "xarray", str(tmp_path / "sweep.nc"))
    script = (
        "import sys, json\n"
        "for name in ('ei_sim', 'analysis', 'sweeps', 'models'): sys.modules[name] = None\n"
        "import xarray\n"
        f"ds = xarray.open_dataset({out!r})\n"
        "print(json.dumps({'dims': list(ds.accuracy.dims), 'acc': ds.accuracy.values.tolist(),"
        " 'c': ds.coupling_scale.values.tolist(), 'units': ds.rate_e_Hz.attrs['units'],"
        " 'target': ds.attrs['coupling_target']}))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          check=True, cwd=str(tmp_path))  # fmt: skip
    got = json.loads(done.stdout)
    assert got["dims"] == ["coupling_scale", "input_scale"] and got["units"] == "Hz"
    assert got["acc"] == result["accuracy"].tolist() and got["c"] == [0.5, 1.0]
    assert got["target"] == "w_ei"


def _one_line_exit_2(argv, capsys, fragment):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and fragment in err, err


def test_existing_output_needs_force_and_failed_write_leaves_nothing(
    sweep_file, tmp_path, capsys, monkeypatch
):
    path, _ = sweep_file
    out = tmp_path / "sweep.nc"
    out.write_text("keep me")
    _one_line_exit_2(["export", path, "--to", "xarray", "--out", str(out)], capsys, "--force")
    assert out.read_text() == "keep me"

    def broken(self, *args, **kwargs):
        if args:  # written to a file: half of it first (built in memory: nothing written)
            with open(args[0], "w") as fh:
                fh.write("half")
        raise OSError("disk full")

    monkeypatch.setattr(xr.Dataset, "to_netcdf", broken)
    _one_line_exit_2(["export", path, "--to", "xarray", "--out", str(out), "--force", "--quiet"],
                     capsys, "disk full")  # fmt: skip
    assert out.read_text() == "keep me" and os.listdir(tmp_path) == ["sweep.nc"]
    monkeypatch.undo()
    assert main(["export", path, "--to", "xarray", "--out", str(out), "--force"]) == 0
    assert "wrote" in capsys.readouterr().out
    with xr.open_dataset(out, engine="h5netcdf") as ds:
        assert "accuracy" in ds


def test_an_export_is_never_taken_for_its_source(grid_file, tmp_path, capsys):
    """Defect: the .nc carried its grid's ``kind``: a second export with --force was refused
    ("holds a grid store") and report / analyze basins called it a corrupt grid store."""
    out = str(tmp_path / "grid.nc")
    argv = ["export", grid_file, "--to", "xarray", "--out", out]
    assert main(argv) == 0 and main([*argv, "--force"]) == 0
    capsys.readouterr()
    with h5py.File(out, "r") as fh:
        assert "kind" not in fh.attrs and fh.attrs["source_kind"] == "grid"
    for command in (["report", out], ["analyze", "basins", out]):
        _one_line_exit_2(command, capsys, "is a netCDF file")
    # an export written before the fix (kind copied from the grid) is replaced with --force
    with h5py.File(out, "a") as fh:
        fh.attrs["kind"] = "grid"
    _one_line_exit_2(["report", out], capsys, f"exported from ({grid_file})")
    assert main([*argv, "--force"]) == 0
    with h5py.File(out, "r") as fh:
        assert "kind" not in fh.attrs
