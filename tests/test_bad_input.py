"""Bad input to every command: exit status 2, one line naming the option or path, nothing
created, nothing changed (the validation runs before any work or file creation)."""

import hashlib
import os

import h5py
import numpy as np
import pytest

from ei_sim.cli import main


def _files(root):
    """Every file and folder under ``root`` with a digest of each file's bytes and mode."""
    out = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs:
            out[os.path.relpath(os.path.join(folder, name), root)] = "dir"
        for name in files:
            path = os.path.join(folder, name)
            with open(path, "rb") as fh:
                out[os.path.relpath(path, root)] = (hashlib.sha256(fh.read()).hexdigest(),
                                                    os.stat(path).st_mode)  # fmt: skip
    return out


def _run_file(path, status="complete", failure=None):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with h5py.File(path, "w") as fh:
        fh.attrs["model.name"] = "ping"
        fh.attrs["status"] = status
        if failure:
            fh.attrs["failure"] = failure
        fh.create_dataset("weights/best/w_in", data=np.zeros((4, 4), np.float32))


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """One file of each kind that a command might be pointed at, plus a folder and text."""
    root = tmp_path_factory.mktemp("bad_input")
    paths = {"tmp": str(root), "dir": str(root / "folder"), "text": str(root / "notes.txt"),
             "grid": str(root / "grid.h5"), "sim": str(root / "sim.h5"),
             "sweep": str(root / "scale_sweep.h5"), "run": str(root / "run"),
             "failed": str(root / "failed"), "rate": str(root / "rate.h5"),
             "empty": str(root / "empty.h5")}  # fmt: skip
    os.makedirs(paths["dir"])
    open(paths["empty"], "wb").close()  # e.g. what a write killed at its start leaves
    with open(paths["text"], "w") as fh:
        fh.write("my notes\n")
    with h5py.File(paths["grid"], "w") as fh:
        fh.attrs["kind"] = "grid"
        cell = fh.create_group("cells/wei1__wie2__seed42")
        for key, value in (("w_ei", 1.0), ("w_ie", 2.0), ("rate_e_Hz", 3.0),
                           ("rate_i_Hz", 20.0), ("best_accuracy", 0.5)):  # fmt: skip
            cell.attrs[key] = value
    with h5py.File(paths["sim"], "w") as fh:
        fh.attrs["kind"] = "simulate"
        fh.create_group("spikes/e")
    with h5py.File(paths["sweep"], "w") as fh:
        fh.attrs["kind"] = "scale_sweep"
        fh.create_dataset("scales", data=np.linspace(0.5, 2, 4))
        fh.create_dataset("rate_i_Hz", data=np.zeros((1, 4)))
    with h5py.File(paths["rate"], "w") as fh:
        fh.attrs["kind"] = "wilson_cowan"
    _run_file(os.path.join(paths["run"], "run.h5"))
    _run_file(os.path.join(paths["failed"], "run.h5"), "failed", "w_in became non-finite")
    return paths


TINY = ["--tier", "tiny"]
# (argv with {placeholders} of the files fixture, what the one line must name)
CASES = [
    # simulate
    (["simulate", "--t-ms", "1e12"], "--t-ms"),
    (["simulate", "--dt-ms", "1e-9"], "--dt-ms"),
    (["simulate", "--t-ms", "nan"], "--t-ms"),
    (["simulate", "--t-ms", "inf"], "--t-ms"),
    (["simulate", "--seed", "100000000000000000000000"], "--seed"),
    (["simulate", "--seed", "-1"], "--seed"),
    (["simulate", "--chunk-ms", "nan"], "--chunk-ms"),
    (["simulate", "--bin-ms", "-1"], "--bin-ms"),
    (["simulate", "--model", "hodgkin"], "hodgkin"),
    (["simulate", "--digit", "12"], "--digit"),
    (["simulate", "--out", "/proc/x.h5"], "/proc/x.h5"),
    (["simulate", "--out", "{dir}"], "{dir}"),
    (["simulate", "--out", "{grid}"], "{grid}"),
    (["simulate", "--out", "{run}/run.h5"], "{run}/run.h5"),
    (["simulate", "--out", "{text}"], "{text}"),
    (["simulate", "--out", "{empty}"], "{empty}"),
    (["rate", "train", "--out", "{rate}", "--epochs", "-1"], "--epochs"),
    (["simulate", "--out", "{tmp}/missing/x.h5"], "{tmp}/missing/x.h5"),
    (["simulate", "--frobnicate"], "--frobnicate"),
    # train
    (["train", *TINY, "--learning-rate", "nan"], "--learning-rate"),
    (["train", *TINY, "--lr", "-1"], "--learning-rate"),
    (["train", *TINY, "--seed", "-1"], "--seed"),
    (["train", *TINY, "--seed", "4294967296"], "--seed"),
    (["train", *TINY, "--epochs", "0"], "--epochs"),
    (["train", *TINY, "--epochs", "x"], "--epochs"),
    (["train", *TINY, "--batch-size", "1000", "--out", "{tmp}/r"], "--batch-size"),
    (["train", *TINY, "--n-e", "100000000", "--out", "{tmp}/r"], "--n-e"),
    (["train", *TINY, "--t-ms", "1e12", "--out", "{tmp}/r"], "--t-ms"),
    (["train", *TINY, "--w-in", "nan"], "--w-in"),
    (["train", *TINY, "--w-ei", "-1"], "--w-ei"),
    (["train", *TINY, "--devices", "-1"], "--devices"),
    (["train", *TINY, "--data", "{tmp}/nowhere"], "--data"),
    (["train", *TINY, "--budget", "-0.5"], "--budget"),
    (["train", *TINY, "--out", "{text}"], "{text}"),
    (["train", *TINY, "--out", "{run}"], "{run}"),
    (["train", *TINY, "--out", "/proc/r"], "/proc/r"),
    (["train", *TINY, "--out", "{text}/sub"], "{text}"),
    # eval
    (["eval", "{failed}"], "{failed}"),
    (["eval", "{run}", "--w-in-scale", "nan"], "--w-in-scale"),
    (["eval", "{run}", "--w-ie-scale", "-2"], "--w-ie-scale"),
    (["eval", "{tmp}/none"], "{tmp}/none"),
    # grid
    (["grid", *TINY, "--workers", "-1", "--out", "{tmp}/g.h5"], "--workers"),
    (["grid", *TINY, "--workers", "0", "--out", "{tmp}/g.h5"], "--workers"),
    (["grid", *TINY, "--w-ei", "0,,1", "--out", "{tmp}/g.h5"], "--w-ei"),
    (["grid", *TINY, "--wei", "2..1", "--out", "{tmp}/g.h5"], "--w-ei"),
    (["grid", *TINY, "--diagonal", "--w-ie", "1", "--out", "{tmp}/g.h5"], "--w-ie"),
    (["grid", *TINY, "--points", "1000000000", "--out", "{tmp}/g.h5"], "--points"),
    (["grid", *TINY, "--seeds", "1,,2", "--out", "{tmp}/g.h5"], "--seeds"),
    (["grid", *TINY, "--seeds", "-3", "--out", "{tmp}/g.h5"], "--seeds"),
    (["grid", *TINY, "--diagonal", "--ei-ratio", "nan", "--out", "{tmp}/g.h5"], "--ei-ratio"),
    (["grid", *TINY, "--batch-size", "1000", "--out", "{tmp}/g.h5"], "--batch-size"),
    (["grid", *TINY, "--lr", "inf", "--out", "{tmp}/g.h5"], "--learning-rate"),
    (["grid", *TINY, "--out", "{sim}"], "{sim}"),
    (["grid", *TINY, "--out", "{dir}"], "{dir}"),
    (["grid", *TINY, "--executor", "threads", "--out", "{tmp}/g.h5"], "--executor"),
    # sweep
    (["sweep", "scale", "{failed}"], "{failed}"),
    (["sweep", "scale", "{run}", "--out", "{text}"], "{text}"),
    (["sweep", "scale", "{run}", "--out", "{tmp}/missing"], "{tmp}/missing"),
    (["sweep", "scale", "{tmp}/none"], "{tmp}/none"),
    (["sweep", "coupling", "{run}"], "--w-ei-scale"),
    (["sweep", "coupling", "{run}", "--wei-scale", "nan"], "--w-ei-scale"),
    (["sweep", "scale", "{run}", "--scales", "0..2:5000"], "--scales"),
    # rate model
    (["rate", "train", "--out", "{grid}"], "{grid}"),
    (["rate", "train", "--out", "{run}/run.h5"], "{run}/run.h5"),
    (["rate", "train", "--learning-rate", "nan"], "--learning-rate"),
    (["rate", "train", "--e-fraction", "2"], "--e-fraction"),
    (["rate", "train", "--epochs", "0"], "--epochs"),
    (["rate", "train", "--tau-e-ms", "inf"], "--tau-e-ms"),
    (["rate", "train", "--seed", "-7"], "--seed"),
    (["rate", "analyze", "--max-scale", "inf"], "--max-scale"),
    (["rate", "analyze", "{grid}"], "{grid}"),
    # analyze, meanfield, report
    (["analyze", "cliff", "{sweep}", "--threshold-hz", "nan"], "--threshold-hz"),
    (["analyze", "cliff", "{sweep}", "--threshold-hz", "-1"], "--threshold-hz"),
    (["analyze", "basins", "{grid}", "--i-active-hz", "nan"], "--i-active-hz"),
    (["analyze", "basins", "{grid}", "--e-elevated-hz", "-4"], "--e-elevated-hz"),
    (["analyze", "basins", "{grid}", "--plots", "/proc/p"], "/proc/p"),
    (["analyze", "gamma", "{dir}"], "{dir}"),
    (["analyze", "gamma", "{tmp}/none.h5"], "{tmp}/none.h5"),
    (["meanfield", "check", "--t-ms", "100"], "--t-ms"),
    (["meanfield", "check", "--t-ms", "nan"], "--t-ms"),
    (["meanfield", "check", "--seed", "-5"], "--seed"),
    (["report", "{sim}", "--out", "{grid}"], "{grid}"),
    (["report", "{sim}", "--out", "/proc/r.html"], "/proc/r.html"),
    (["report", "{tmp}/none.h5"], "{tmp}/none.h5"),
    # video, export, reproduce, the top level
    (["video", "{dir}"], "{dir}"),
    (["video", "{run}", "--fps", "1e9"], "--fps"),
    (["video", "{run}", "--fps", "0"], "--fps"),
    (["video", "{run}", "--format", "gif", "--out", "{tmp}/x.mp4"], "{tmp}/x.mp4"),
    (["video", "{grid}", "--out", "{text}"], "{text}"),
    (["video", "{text}"], "{text}"),
    (["export", "{sim}", "--to", "xarray"], "--to"),
    (["export", "{sim}", "--to", "nwb", "--out", "{grid}", "--force"], "{grid}"),
    (["reproduce", "grid", "--workers", "0"], "--workers"),
    (["--bogus", "train"], "--bogus"),
    (["frobnicate"], "frobnicate"),
]


def test_the_table_covers_every_command():
    commands = {argv[0] for argv, _ in CASES}
    assert len(CASES) >= 50
    assert {"simulate", "train", "eval", "grid", "sweep", "rate", "analyze", "meanfield",
            "report", "video", "export", "reproduce"} <= commands  # fmt: skip


@pytest.mark.parametrize("argv, names", CASES, ids=[" ".join(c[0]) for c in CASES])
def test_bad_input_exits_2_with_one_line_and_touches_nothing(argv, names, files, capsys,
                                                            monkeypatch):  # fmt: skip
    monkeypatch.chdir(files["tmp"])
    argv = [a.format(**files) for a in argv]
    before = _files(files["tmp"])
    try:
        code = main(argv)
    except SystemExit as stop:  # argparse
        code = stop.code
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, err
    assert len(lines) == 1, err
    assert names.format(**files) in lines[0]
    assert "Traceback" not in err
    assert _files(files["tmp"]) == before


def test_help_still_prints_the_usage(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["train", "--help"])
    assert stop.value.code == 0
    out = capsys.readouterr().out
    assert "usage: ei-sim train" in out and "--resume" in out


def test_version(capsys):
    from ei_sim import __version__

    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0
    assert capsys.readouterr().out.strip() == f"ei-sim {__version__}"


def test_grid_help_states_its_own_defaults(capsys):
    with pytest.raises(SystemExit):
        main(["grid", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "(default 0.6, the lab's grid recipe)" in out
    assert "render them with ei-sim video STORE" in out and "default 0.2)" in out
