"""Sweeps: axis parsing, the grid on a LocalCluster with resumption, inference sweeps."""

import contextlib
import os
import signal
import subprocess
import sys

import h5py
import numpy as np
import pytest

from ei_sim.sweeps.ranges import format_value, parse_axis, parse_seeds


@pytest.mark.parametrize("text, points, expected", [
    ("0..2", 5, [0, 0.5, 1, 1.5, 2]),
    ("0..2:9", 5, list(np.linspace(0, 2, 9))),
    ("0,0.25,0.5,1,2", 5, [0, 0.25, 0.5, 1, 2]),
    ("1..1", 5, [1.0]),
    ("0..4", 3, [0, 2, 4]),
])  # fmt: skip
def test_parse_axis(text, points, expected):
    np.testing.assert_allclose(parse_axis(text, points), expected)


@pytest.mark.parametrize("text, points, fragment", [
    ("2..0", 5, "below its start"), ("abc", 5, "abc"), ("0..2", 0, "--points"),
    ("-1,2", 5, ">= 0"), ("0..2:0", 5, "positive integer"), ("nan", 5, "finite"),
    ("", 5, "no values"),
])  # fmt: skip
def test_parse_axis_rejects(text, points, fragment):
    with pytest.raises(ValueError, match=fragment):
        parse_axis(text, points, "--wei")


def test_seeds_and_names():
    assert parse_seeds("42,43,44") == [42, 43, 44]
    with pytest.raises(ValueError):
        parse_seeds("4x")
    assert format_value(0.5) == "0p5" and format_value(2.0) == "2"


GRID_ARGS = ["--wei", "0,1", "--wie", "0,2", "--tier", "tiny", "--epochs", "1", "--samples",
             "120", "--batch-size", "40"]  # fmt: skip


def _grid_cmd(store, *extra):
    return [sys.executable, "-m", "ei_sim.cli", "grid", *GRID_ARGS, "--out", str(store), *extra]


def _cells(store):
    with h5py.File(store) as fh:
        return {n: dict(fh["cells"][n].attrs) for n in fh["cells"]}


# Runs the grid CLI and kills its whole process group (client and Dask workers) with SIGKILL
# right after the KILL_AFTER-th finished cell has been stored: a kill at a known point, so the
# resumed run always has cells to skip and cells to train.
KILL_AFTER = 2
KILLED_GRID = """
import os, signal, sys

import ei_sim.sweeps.grid as grid
from ei_sim.cli import main

if not callable(getattr(grid, "add_cell", None)):
    sys.exit("test hook: ei_sim.sweeps.grid.add_cell (the store write of a finished cell) is gone")
store_cell, stored = grid.add_cell, []


def store_then_kill(*args, **kwargs):
    store_cell(*args, **kwargs)
    stored.append(args[1])
    if len(stored) == int(os.environ["KILL_AFTER"]):
        os.killpg(os.getpgid(0), signal.SIGKILL)


grid.add_cell = store_then_kill
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.slow
def test_grid_on_local_cluster_resumes_after_kill(tmp_path):
    reference = tmp_path / "serial.h5"
    done = subprocess.run(_grid_cmd(reference, "--executor", "serial"), capture_output=True,
                          text=True, timeout=900)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert "figures:" in done.stdout and os.path.exists(tmp_path / "serial_basins.png")
    expected = _cells(reference)
    assert len(expected) == 4

    store = tmp_path / "dask.h5"
    argv = [sys.executable, "-c", KILLED_GRID, *_grid_cmd(store, "--workers", "2")[3:]]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, env={**os.environ,
                            "KILL_AFTER": str(KILL_AFTER)})  # fmt: skip
    try:
        _, err = proc.communicate(timeout=600)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # whatever is left of the client and workers
    assert proc.returncode == -signal.SIGKILL, err[-2000:]  # killed mid-sweep, not finished
    partial = _cells(store)
    assert 1 <= len(partial) <= 4
    assert len(partial) == KILL_AFTER and set(partial) < set(expected)
    resumed = subprocess.run(_grid_cmd(store, "--workers", "2"), capture_output=True, text=True,
                             timeout=900)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"skipped {len(partial)} finished cells" in resumed.stdout
    final = _cells(store)
    for name, attrs in partial.items():  # cells stored before the kill are kept as they were
        assert final[name]["best_accuracy"] == attrs["best_accuracy"]
    assert set(final) == set(expected)
    vmapped = tmp_path / "vmap.h5"
    done = subprocess.run(_grid_cmd(vmapped, "--executor", "vmap"), capture_output=True,
                          text=True, timeout=900)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    for other in (final, _cells(vmapped)):  # same numbers as the uninterrupted serial run
        assert set(other) == set(expected)
        for name, attrs in expected.items():
            for key in ("best_accuracy", "rate_e_Hz", "rate_i_Hz", "w_ei", "w_ie"):
                assert other[name][key] == pytest.approx(attrs[key], rel=1e-4), (name, key)


@pytest.mark.slow
def test_grid_refuses_other_settings_and_bad_scheduler(tmp_path, capsys):
    from ei_sim.cli import main
    from ei_sim.sweeps.grid import SETTINGS_VERSION
    from ei_sim.sweeps.store import open_or_create

    store = tmp_path / "g.h5"
    open_or_create(str(store), {"grid.settings_version": SETTINGS_VERSION,
                                "grid.w_ei": "(0.0, 1.0)"}, force=False)  # fmt: skip
    assert main(["grid", *GRID_ARGS, "--out", str(store), "--executor", "serial"]) == 2
    assert "different settings" in capsys.readouterr().err
    code = main(["grid", *GRID_ARGS, "--out", str(tmp_path / "x.h5"), "--scheduler",
                 "tcp://127.0.0.1:9"])  # fmt: skip
    assert code == 2 and "tcp://127.0.0.1:9" in capsys.readouterr().err
    assert not (tmp_path / "x.h5").exists()


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """The golden tiny run (1 epoch of the tiny tier, 32 E / 8 I, 50 ms; data/README.md)."""
    from golden_files import tiny_run_dir

    return tiny_run_dir(tmp_path_factory.mktemp("run") / "r")


@pytest.mark.slow
def test_scale_sweep_matches_single_evaluations(trained_run):
    from ei_sim.sweeps.inference import sweep_scales
    from ei_sim.training.stored import evaluate_run

    result = sweep_scales(trained_run, (0.0, 1.0, 2.0), "w_ei", (0.5, 1.0), progress=False)
    assert result["accuracy"].shape == (2, 3)
    for ci, c in enumerate((0.5, 1.0)):
        for si, s in enumerate((0.0, 1.0, 2.0)):
            single = evaluate_run(trained_run, w_in_scale=s, w_ei_scale=c)
            assert result["accuracy"][ci, si] == pytest.approx(single.accuracy)
            assert result["rate_i_Hz"][ci, si] == pytest.approx(single.rate_i_Hz, rel=1e-4)
    assert result["rate_e_Hz"][0, 0] == 0.0  # no input, no activity


def test_sweep_cli_writes_store_for_the_cliff_analysis(trained_run, tmp_path, capsys):
    from ei_sim.analysis.cliff import read_sweep
    from ei_sim.cli import main

    args = ["sweep", "coupling", trained_run, "--wie-scale", "0.5,2", "--scales", "0,0.5,1",
            "--out", str(tmp_path)]  # fmt: skip
    assert main(args) == 0
    sweep = read_sweep(str(tmp_path / "coupling_w_ie.h5"))
    assert np.asarray(sweep["accuracy"]).shape == (2, 3)
    assert (tmp_path / "coupling_w_ie.png").exists()
    assert main(["sweep", "scale", str(tmp_path)]) == 2
    assert "not an ei-sim run" in capsys.readouterr().err


@pytest.mark.slow
def test_scale_sweep_video_has_one_frame_per_scale(trained_run, tmp_path):
    import imageio_ffmpeg

    from ei_sim.cli import main

    assert main(["sweep", "scale", trained_run, "--scales", "0.5,1,2", "--out", str(tmp_path),
                 "--video"]) == 0  # fmt: skip
    reader = imageio_ffmpeg.read_frames(str(tmp_path / "scale_sweep.mp4"))
    next(reader)
    assert sum(1 for _ in reader) == 3
