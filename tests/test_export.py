"""Exports of spikes to NWB and Neo: exact round trips, metadata, nwbinspector, bad input,
and the gamma PSD against Elephant's welch_psd. Tests of a format skip without its extra
(grids and sweeps to xarray: test_export_xarray.py)."""

from __future__ import annotations

import json
import os
import shutil
import sys

import h5py
import numpy as np
import pytest

from ei_sim.analysis.export import export_file
from ei_sim.analysis.video import Snapshot, write_snapshot
from ei_sim.cli import main
from ei_sim.sim.spectrum import population_psd, spectral_peak
from ei_sim.store.atomic import atomic_h5

DT_MS = 0.1


# ---------------------------------------------------------------- fixture files
@pytest.fixture(scope="module")
def sim_file(tmp_path_factory):
    """A real simulate file: a small PING network, two digits (two trials), 60 ms."""
    from ei_sim.data.mnist import embedded_pool, first_of_class
    from ei_sim.models import get_model
    from ei_sim.sim.run import run_preset
    from ei_sim.store.stream import write_run

    model = get_model("ping", t_ms=60.0, n_e=40, n_i=10)
    pool = embedded_pool()
    images = pool.images[[first_of_class(pool, 0), first_of_class(pool, 1)]]
    path = str(tmp_path_factory.mktemp("sim") / "sim.h5")
    write_run(path, model, run_preset(model, seed=0, images=images), {"seed": 0, "digit": 0})
    return path


@pytest.fixture(scope="module")
def legacy_file(sim_file, tmp_path_factory):
    """The same spikes in the layout of earlier ei-sim versions: time_ms float32 only."""
    path = str(tmp_path_factory.mktemp("legacy") / "legacy.h5")
    shutil.copyfile(sim_file, path)
    with h5py.File(path, "a") as fh:
        for pop in "ei":
            g = fh[f"spikes/{pop}"]
            times = g["time_ms"][()].astype(np.float32)
            for name in ("time_ms", "step"):
                if name in g:
                    del g[name]
            g["time_ms"] = times
        if "checksum" in fh.attrs:
            del fh.attrs["checksum"]  # files of that layout were written before checksums
    return path


@pytest.fixture(params=["current", "legacy"])
def spike_file(request, sim_file, legacy_file):
    return sim_file if request.param == "current" else legacy_file


def _original_spikes(path: str) -> dict:
    """{pop: sorted (trial, cell, key)} straight from a simulate file; the key of a spike is
    its step where the file stores steps, else its float32 time in ms."""
    out = {}
    with h5py.File(path, "r") as fh:
        for pop in "ei":
            g = fh[f"spikes/{pop}"]
            keys = g["step"][()] if "step" in g else g["time_ms"][()].astype(np.float32)
            rows = zip(g["trial"][()], g["index"][()], keys, strict=True)
            out[pop] = sorted((int(b), int(n), k.item()) for b, n, k in rows)
    return out


def _stored_times_ms(path: str, pop: str) -> list:
    """Sorted (trial, cell, time_ms as float64) of a simulate file."""
    with h5py.File(path, "r") as fh:
        g = fh[f"spikes/{pop}"]
        rows = zip(g["trial"][()], g["index"][()], g["time_ms"][()].astype(float), strict=True)
        return sorted((int(b), int(n), float(t)) for b, n, t in rows)


def _spike_key(path: str, time_ms: float):
    """The key of :func:`_original_spikes` for a time read back from an export."""
    with h5py.File(path, "r") as fh:
        steps = "step" in fh["spikes/e"]
    return round(time_ms / DT_MS) if steps else np.float32(time_ms).item()


T_DONE_MS = 3.6e6  # an hour, stopped before the planned two


@pytest.fixture(scope="module")
def step_file(tmp_path_factory):
    """A simulate file in the streamed layout: /spikes/<pop>/step (int64) with time_ms
    (float64) and the group attribute dt_ms, binned /population, /traces/<pop>/<variable>/
    values (samples, trials, cells) and cells, and a run stopped at t_done_ms."""
    rng = np.random.default_rng(5)
    path = str(tmp_path_factory.mktemp("step") / "steps.h5")
    with atomic_h5(path) as fh:
        fh.attrs.update({"kind": "simulate", "model.config.dt_ms": DT_MS, "complete": False,
                         "model.config.t_ms": 2 * T_DONE_MS, "t_done_ms": T_DONE_MS,
                         "model.name": "va_coba", "seed": 3})  # fmt: skip
        for pop, n in (("e", 8), ("i", 3)):
            g = fh.create_group(f"spikes/{pop}")
            g["step"] = np.sort(rng.integers(0, int(T_DONE_MS / DT_MS), 50)).astype(np.int64)
            g["time_ms"] = g["step"][()] * DT_MS
            g["trial"] = np.zeros(50, np.int32)
            g["index"] = rng.integers(0, n, 50).astype(np.int32)
            g.attrs.update({"n_cells": n, "n_trials": 1, "dt_ms": DT_MS})
            fh[f"population/{pop}"] = np.zeros((36, 1), np.float32)  # 100-s bins
        for var, values in (("v_mV", rng.normal(-60, 3, (40, 1, 2))),
                            ("g_exc_uS", rng.random((40, 1, 2)))):  # fmt: skip
            fh[f"traces/e/{var}/cells"] = np.array([2, 5], np.int32)
            fh[f"traces/e/{var}/values"] = values
            fh[f"traces/e/{var}/values"].attrs["every_steps"] = 5
    return path


def _snapshot(epoch: int) -> Snapshot:
    rng = np.random.default_rng(epoch)
    n_steps = 300
    return Snapshot(
        epoch=epoch, image=rng.random(784), label=7, dt_ms=DT_MS, drop_ms=20.0,
        spikes_e=rng.random((n_steps, 12)) < 0.01, spikes_i=rng.random((n_steps, 4)) < 0.03,
        v_trace_mV=(-65 + 10 * rng.random(n_steps)).astype(np.float32), v_th_mV=-50.0,
        v_reset_mV=-65.0, weight_hists={}, accuracy=np.full(epoch, 0.5),
        rate_e_Hz=np.ones(epoch), rate_i_Hz=np.ones(epoch), model="ping", w_ei=1.0, w_ie=2.0,
        budget="off",
    )  # fmt: skip


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A training run directory whose run.h5 holds two reference-trial snapshots."""
    folder = tmp_path_factory.mktemp("run")
    with atomic_h5(str(folder / "run.h5")) as fh:
        fh.attrs.update({"model.name": "ping", "model.config.dt_ms": DT_MS, "train.seed": 42,
                         "provenance.git_commit": "abc123"})  # fmt: skip
        fh["weights/best/w_in"] = np.zeros((3, 2))
        for epoch in (1, 2):
            write_snapshot(fh, _snapshot(epoch))
    return str(folder)


# ---------------------------------------------------------------- NWB
def _nwb_spikes(nwb, pop: str, trial_ms: float) -> list:
    """(trial, cell, time within the trial in ms) of an exported Units table."""
    units = nwb.processing["network"][f"units_{pop}"]
    out = []
    for row in range(len(units)):
        for t_s in units.get_unit_spike_times(row):
            trial = int(np.floor(t_s * 1e3 / trial_ms))
            out.append((trial, int(units["cell_index"][row]), t_s * 1e3 - trial * trial_ms))
    return out


def test_simulate_to_nwb_round_trip(spike_file, tmp_path):
    pynwb = pytest.importorskip("pynwb")
    nwbinspector = pytest.importorskip("nwbinspector")
    out = export_file(spike_file, "nwb", str(tmp_path / "sim.nwb"))
    original = _original_spikes(spike_file)
    assert sum(len(v) for v in original.values()) > 0
    with h5py.File(spike_file, "r") as fh:
        commit = fh.attrs["provenance.git_commit"]
    with pynwb.NWBHDF5IO(out, "r") as io:
        nwb = io.read()
        assert len(nwb.trials) == 2 and nwb.trials["stop_time"][0] == pytest.approx(0.06)
        for pop, n_cells in (("e", 40), ("i", 10)):
            assert len(nwb.processing["network"][f"units_{pop}"]) == n_cells
            spikes = _nwb_spikes(nwb, pop, 60.0)
            got = sorted((b, n, _spike_key(spike_file, t)) for b, n, t in spikes)
            assert got == original[pop]  # each spike's step (or float32 time) exactly
        config = json.loads(nwb.notes)
        assert config["model.config.n_e"] == 40 and config["model.name"] == "ping"
        assert json.loads(nwb.data_collection)["provenance.git_commit"] == commit
        assert commit in nwb.source_script
    assert list(pynwb.validate(path=out)) == []  # the NWB schema
    messages = list(nwbinspector.inspect_nwbfile(nwbfile_path=out))
    critical = [m for m in messages if m.importance.name == "CRITICAL"]
    assert not critical, [m.message for m in critical]


def test_streamed_layout_exact_steps_and_traces(step_file, tmp_path):
    pynwb = pytest.importorskip("pynwb")
    out = export_file(step_file, "nwb", str(tmp_path / "steps.nwb"))
    with h5py.File(step_file, "r") as fh:
        want = sorted(zip(fh["spikes/e/index"][()], fh["spikes/e/step"][()], strict=True))
        v_mV, g_uS = fh["traces/e/v_mV/values"][()], fh["traces/e/g_exc_uS/values"][()]
    with pynwb.NWBHDF5IO(out, "r") as io:
        nwb = io.read()
        got = [(n, round(t / DT_MS)) for _, n, t in _nwb_spikes(nwb, "e", T_DONE_MS)]
        assert nwb.trials["stop_time"][0] == T_DONE_MS * 1e-3  # what the file holds
        v, g = nwb.acquisition["v_e_trial0"], nwb.acquisition["g_exc_e_trial0"]
        np.testing.assert_array_equal(v.data[:], v_mV[:, 0])
        np.testing.assert_array_equal(g.data[:], g_uS[:, 0])
        assert (v.unit, v.conversion, g.unit, g.conversion) == ("volts", 1e-3, "siemens", 1e-6)
        assert v.rate == pytest.approx(1000 / (5 * DT_MS))
        assert json.loads(v.comments) == {"cell_index": [2, 5]}
    assert sorted(got) == [(int(n), int(s)) for n, s in want]  # an hour in, to the step


def test_run_snapshots_to_nwb_with_traces(run_dir, tmp_path):
    pynwb = pytest.importorskip("pynwb")
    out = export_file(run_dir, "nwb", str(tmp_path / "run.nwb"))
    trial_ms = 20.0 + 300 * DT_MS
    with pynwb.NWBHDF5IO(out, "r") as io:
        nwb = io.read()
        assert list(nwb.trials["epoch"][:]) == [1, 2] and list(nwb.trials["digit"][:]) == [7, 7]
        for epoch in (1, 2):
            snap = _snapshot(epoch)
            v = nwb.acquisition[f"v_e_trial{epoch - 1}"]
            np.testing.assert_array_equal(v.data[:, 0], snap.v_trace_mV)
            assert v.conversion == 1e-3 and v.unit == "volts"
            for pop in "ei":
                steps, cells = np.nonzero(getattr(snap, f"spikes_{pop}"))
                spikes = [(n, t) for b, n, t in _nwb_spikes(nwb, pop, trial_ms) if b == epoch - 1]
                got = sorted((n, round((t - 20.0) / DT_MS)) for n, t in spikes)
                assert got == sorted(zip(cells.tolist(), steps.tolist(), strict=True))
    export_file(run_dir, "nwb", str(tmp_path / "bare.nwb"), traces=False)
    with pynwb.NWBHDF5IO(str(tmp_path / "bare.nwb"), "r") as io:
        assert len(io.read().acquisition) == 0


# ---------------------------------------------------------------- Neo
def _read_neo(path: str):
    from neo.io import NixIO, PickleIO

    if path.endswith(".nix"):
        with NixIO(path, mode="ro") as io:
            return io.read_block()
    return PickleIO(path).read_block()


@pytest.mark.parametrize("suffix", [".pkl", ".nix"])
def test_simulate_to_neo_round_trip(spike_file, tmp_path, suffix):
    pytest.importorskip("neo")
    if suffix == ".nix":
        pytest.importorskip("nixio")
    import quantities as pq

    out = export_file(spike_file, "neo", str(tmp_path / f"sim{suffix}"))
    block = _read_neo(out)
    assert len(block.segments) == 2
    assert [g.name for g in block.groups] == ["excitatory", "inhibitory"]
    for pop, n_cells in (("e", 40), ("i", 10)):
        got = []
        for k, segment in enumerate(block.segments):
            trains = [st for st in segment.spiketrains if st.annotations["population"] == pop]
            assert len(trains) == n_cells
            for st in trains:
                assert st.units == pq.ms and float(st.t_stop) == 60.0
                got += [(k, int(st.annotations["cell_index"]), t) for t in st.magnitude]
        assert sorted(got) == _stored_times_ms(spike_file, pop)  # the stored times exactly
    assert json.loads(block.annotations["configuration"])["model.config.n_i"] == 10


def test_run_snapshots_to_neo(run_dir, tmp_path):
    pytest.importorskip("neo")
    block = _read_neo(export_file(run_dir, "neo", str(tmp_path / "run.pkl")))
    assert [s.annotations["epoch"] for s in block.segments] == [1, 2]
    for segment, epoch in zip(block.segments, (1, 2), strict=True):
        snap = _snapshot(epoch)
        (signal,) = segment.analogsignals
        np.testing.assert_array_equal(signal.magnitude[:, 0], snap.v_trace_mV)
        assert float(signal.t_start) == 20.0 and str(signal.units.dimensionality) == "mV"
        assert list(signal.array_annotations["cell_index"]) == [0]
        trains = [st for st in segment.spiketrains if st.annotations["population"] == "e"]
        steps, cells = np.nonzero(snap.spikes_e)
        got = sorted((int(st.annotations["cell_index"]), round((t - 20.0) / DT_MS))
                     for st in trains for t in st.magnitude)  # fmt: skip
        assert got == sorted(zip(cells.tolist(), steps.tolist(), strict=True))


# ---------------------------------------------------------------- bad input
def _one_line_exit_2(argv, capsys, fragment):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and fragment in err, err


def test_bad_input_is_one_line_exit_2(tmp_path, sim_file, capsys, monkeypatch):
    odd, grid_file = tmp_path / "odd.h5", str(tmp_path / "grid.h5")
    with h5py.File(odd, "w") as fh:
        fh.attrs["kind"] = "mystery"
    with h5py.File(grid_file, "w") as fh:
        fh.attrs["kind"] = "grid"
    (tmp_path / "text.h5").write_text("not hdf5")
    out = str(tmp_path / "x.nc")
    _one_line_exit_2(["export", str(odd), "--to", "xarray", "--out", out], capsys, "unknown kind")
    _one_line_exit_2(["export", str(tmp_path / "text.h5"), "--to", "nwb"], capsys, "unreadable")
    _one_line_exit_2(["export", grid_file, "--to", "nwb", "--out", out], capsys, "--to xarray")
    _one_line_exit_2(["export", sim_file, "--to", "neo", "--out", str(tmp_path / "a.h5")],
                     capsys, ".nix")  # fmt: skip
    monkeypatch.setitem(sys.modules, "pynwb", None)
    _one_line_exit_2(["export", sim_file, "--to", "nwb", "--out", str(tmp_path / "a.nwb")],
                     capsys, "pip install 'ei-sim[nwb]'")  # fmt: skip
    assert sorted(os.listdir(tmp_path)) == ["grid.h5", "odd.h5", "text.h5"]  # nothing written


# ---------------------------------------------------------------- Elephant
def _rhythm(freq_Hz=40.0, t_ms=500.0, n_cells=100, trials=3, seed=0) -> np.ndarray:
    """(T, trials) population activity of cells firing in volleys at ``freq_Hz``."""
    rng = np.random.default_rng(seed)
    t_ms_axis = np.arange(int(t_ms / DT_MS)) * DT_MS
    drive = 0.5 * (1 + np.sin(2 * np.pi * freq_Hz * t_ms_axis / 1000)) ** 8
    spikes = rng.random((t_ms_axis.size, trials, n_cells)) < 0.01 * drive[:, None, None]
    return spikes.mean(axis=2)


def test_gamma_psd_matches_elephant_welch(sim_file):
    elephant = pytest.importorskip("elephant")
    import neo
    import quantities as pq

    with h5py.File(sim_file, "r") as fh:
        stored = np.asarray(fh["population/e"][()], float)
    for activity in (_rhythm(), stored):
        freqs, power = population_psd(activity, DT_MS)
        signal = neo.AnalogSignal(activity, units=pq.dimensionless,
                                  sampling_period=DT_MS * pq.ms)  # fmt: skip
        f_el, p_el = elephant.spectral.welch_psd(
            signal, n_segments=1, overlap=0.0, window="hann", detrend="constant",
            scaling="density", return_onesided=True,
        )  # fmt: skip
        np.testing.assert_allclose(f_el.rescale(pq.Hz).magnitude, freqs, rtol=1e-12)
        np.testing.assert_allclose(p_el.magnitude.mean(axis=0), power, rtol=1e-9, atol=0)
        ours, theirs = spectral_peak(freqs, power), spectral_peak(freqs, p_el.magnitude.mean(0))
        assert ours.frequency_Hz == pytest.approx(theirs.frequency_Hz, abs=1e-9)
        assert ours.significance == pytest.approx(theirs.significance, rel=1e-9)
    assert spectral_peak(*population_psd(_rhythm(), DT_MS)).frequency_Hz == pytest.approx(40, abs=1)
