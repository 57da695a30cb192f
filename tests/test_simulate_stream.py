"""ei-sim simulate: streamed HDF5 files, interrupted runs, traces, bad input, compile cache."""

import errno
import json
import os
import subprocess
import sys

import h5py
import numpy as np
import pytest

from ei_sim.cli import main
from ei_sim.models.va_coba import va_coba
from ei_sim.sim.compile_cache import AtomicFileCache
from ei_sim.sim.engine import simulate_jit
from ei_sim.sim.monitors import Monitors
from ei_sim.sim.run import initial_conditions, run_preset
from ei_sim.store import stream as h5stream
from ei_sim.store.stream import run_to_file

VA_ARGS = ["simulate", "--model", "va_coba", "--no-progress"]


def _events(group) -> np.ndarray:
    return np.stack([group["step"][()], group["trial"][()], group["index"][()]], axis=1)


def test_streamed_file_layout_traces_and_bins(tmp_path):
    out = tmp_path / "va.h5"
    argv = VA_ARGS + ["--t-ms", "30", "--chunk-ms", "7", "--record-v", "0-2,i:5",
                      "--record-g", "3", "--record-every-ms", "0.3", "--bin-ms", "1",
                      "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    model = va_coba(t_ms=30.0)
    config = model.config
    weights, state, _ = initial_conditions(model, 0)
    _, full = simulate_jit(weights, state, None, config, n_steps=config.n_steps,
                           record=("spikes_e", "v_e", "v_i", "g_exc_e", "g_inh_e"))  # fmt: skip
    with h5py.File(out) as fh:
        attrs = dict(fh.attrs)
        assert attrs["complete"] and attrs["status"] == "complete" and attrs["kind"] == "simulate"
        # 7 ms = 70 steps, rounded up to a multiple of lcm(3, 10): 90-step chunks
        assert (
            attrs["chunks_done"] == 4 and attrs["steps_done"] == 300 and attrs["chunk_steps"] == 90
        )
        assert attrs["t_done_ms"] == pytest.approx(30.0)
        group = fh["spikes/e"]
        assert group["step"].dtype == np.int64 and group["time_ms"].dtype == np.float64
        t, b, n = np.nonzero(np.asarray(full["spikes_e"]))
        np.testing.assert_array_equal(_events(group), np.stack([t, b, n], axis=1))
        np.testing.assert_array_equal(group["time_ms"][()], t * 0.1)
        assert fh["population/e"].shape == (30, 1) and fh["population/e"].attrs["bin_ms"] == 1.0
        per_step = np.asarray(full["spikes_e"]).mean(axis=2)  # (T, 1)
        binned = per_step.reshape(30, 10).mean(1)[:, None]
        np.testing.assert_allclose(fh["population/e"][()], binned, rtol=1e-6)
        v_e = fh["traces/e/v_mV"]
        np.testing.assert_array_equal(v_e["cells"][()], [0, 1, 2])
        np.testing.assert_array_equal(v_e["values"][()], np.asarray(full["v_e"])[::3][:, :, :3])
        np.testing.assert_array_equal(fh["traces/i/v_mV/values"][()],
                                      np.asarray(full["v_i"])[::3][:, :, [5]])  # fmt: skip
        np.testing.assert_array_equal(fh["traces/e/g_inh_uS/values"][()],
                                      np.asarray(full["g_inh_e"])[::3][:, :, [3]])  # fmt: skip
        assert v_e["values"].attrs["every_ms"] == pytest.approx(0.3)
    assert not list(tmp_path.glob("*.partial"))


KILL_SCRIPT = """
import os, signal, sys
from ei_sim.store.stream import run_to_file
from ei_sim.models.va_coba import va_coba
done = []
def on_chunk(chunk):
    done.append(chunk.index)
    if len(done) == 2:
        os.kill(os.getpid(), signal.SIGKILL)  # killed between chunks, after the second
run_to_file(sys.argv[1], va_coba(t_ms=40.0), 0, chunk_steps=90, on_chunk=on_chunk)
"""


def test_a_run_killed_between_chunks_leaves_exactly_the_finished_chunks(tmp_path):
    out = tmp_path / "killed.h5"
    proc = subprocess.run([sys.executable, "-c", KILL_SCRIPT, str(out)], capture_output=True,
                          text=True, timeout=300)  # fmt: skip
    assert proc.returncode == -9, proc.stderr
    assert not out.exists()
    whole = run_preset(va_coba(t_ms=40.0), 0, chunk_steps=90).recording
    with h5py.File(h5stream.partial_path(str(out))) as fh:
        assert not fh.attrs["complete"] and fh.attrs["status"] == "running"
        assert fh.attrs["chunks_done"] == 2 and fh.attrs["steps_done"] == 180
        for pop in ("e", "i"):
            ev = whole.spikes[pop]
            kept = ev.step < 180
            expected = np.stack([ev.step[kept], ev.trial[kept], ev.index[kept]], axis=1)
            np.testing.assert_array_equal(_events(fh[f"spikes/{pop}"]), expected)
            assert fh[f"population/{pop}"].shape == (180, 1)
        assert "rate_e_Hz" not in fh.attrs


def test_ctrl_c_keeps_the_finished_chunks_marked_interrupted(tmp_path):
    out = str(tmp_path / "stopped.h5")

    def stop_after_three(chunk):
        if chunk.index == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_to_file(out, va_coba(t_ms=40.0), 0, chunk_steps=60, on_chunk=stop_after_three)
    with h5py.File(h5stream.partial_path(out)) as fh:
        assert fh.attrs["status"] == "interrupted" and not fh.attrs["complete"]
        assert fh.attrs["chunks_done"] == 3 and fh["population/e"].shape == (180, 1)
        assert fh["spikes/e/step"][()].max(initial=0) < 180
    assert not os.path.exists(out)


@pytest.mark.parametrize(
    "extra, fragment",
    [
        (["--record-v", "3200"], "out of range"),
        (["--record-v", "i:800"], "out of range"),
        (["--record-g", "x:3"], "unknown population"),
        (["--record-v", "0", "--record-every-ms", "0.15"], "not a positive multiple"),
        (["--bin-ms", "0.05"], "not a positive multiple"),
        (["--chunk-ms", "0"], "--chunk-ms must be > 0"),
        (["--out", "/proc/ei_sim_test.h5"], "/proc"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(extra, fragment, tmp_path, capsys):
    before = set(os.listdir(tmp_path))
    code = main(VA_ARGS + ["--t-ms", "5"] + extra)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and fragment in err[0], err
    assert set(os.listdir(tmp_path)) == before


def test_full_disk_up_front_and_during_the_run_leave_nothing(tmp_path, monkeypatch, capsys):
    out = tmp_path / "full.h5"

    class Usage:
        free = 0

    monkeypatch.setattr(h5stream.shutil, "disk_usage", lambda _: Usage)
    assert main(VA_ARGS + ["--t-ms", "5", "--out", str(out)]) == 2
    assert "is full" in capsys.readouterr().err
    monkeypatch.undo()

    calls = []
    real_append = h5stream.StreamWriter._append

    def append_until_full(self, dataset, values):
        calls.append(1)
        if len(calls) > 10:  # the second chunk
            raise OSError(errno.ENOSPC, "No space left on device")
        real_append(self, dataset, values)

    monkeypatch.setattr(h5stream.StreamWriter, "_append", append_until_full)
    assert main(VA_ARGS + ["--t-ms", "10", "--chunk-ms", "4", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no space left" in err[0].lower()
    assert list(tmp_path.iterdir()) == []


def test_atomic_file_cache_round_trip_and_first_entry_kept(tmp_path):
    cache = AtomicFileCache(tmp_path / "xla")
    assert cache.get("k") is None
    cache.put("k", b"one")
    cache.put("k", b"two")  # an existing entry stays (same key, same program)
    assert cache.get("k") == b"one"
    assert sorted(p.name for p in (tmp_path / "xla").iterdir()) == ["k-cache"]


COUNT_SCRIPT = """
import sys
from ei_sim.cli import main
sys.exit(main(["simulate", "--model", "va_coba", "--t-ms", "20", "--chunk-ms", "5",
               "--set", "cell_kernel=xla", "--no-progress", "--timings"]))
"""


@pytest.mark.slow
def test_a_second_identical_command_compiles_nothing(tmp_path):
    # the engine's compiled loop (cell_kernel=xla: not the native loop, which compiles nothing)
    from ei_sim.sim import native

    (tmp_path / "cache").mkdir()
    if native.cache_dir().exists():  # reuse the built kernels; the XLA cache starts empty
        os.symlink(native.cache_dir(), tmp_path / "cache" / "native")
    env = {**os.environ, "EI_SIM_CACHE_DIR": str(tmp_path / "cache")}
    env.pop("EI_SIM_COMPILE_CACHE", None)
    counts = []
    for _ in range(2):
        proc = subprocess.run([sys.executable, "-c", COUNT_SCRIPT], env=env, text=True,
                              capture_output=True, timeout=300)  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        counts.append(json.loads(proc.stderr.strip().splitlines()[-1]))
    assert counts[0]["compiled"] == counts[0]["programs"] >= 1
    assert counts[1]["programs"] == counts[0]["programs"]
    assert counts[1]["compiled"] == 0 and counts[1]["cache_hits"] == counts[1]["programs"]
    off = subprocess.run([sys.executable, "-c", COUNT_SCRIPT], text=True, capture_output=True,
                         env={**env, "EI_SIM_COMPILE_CACHE": "0"}, timeout=300)  # fmt: skip
    assert json.loads(off.stderr.strip().splitlines()[-1])["cache_hits"] == 0


def test_in_memory_result_and_write_run_share_the_layout(tmp_path):
    from ei_sim.store.stream import write_run

    model = va_coba(t_ms=10.0)
    result = run_preset(model, 0, monitors=Monitors(bin_steps=5), chunk_steps=30)
    path = tmp_path / "mem.h5"
    write_run(str(path), model, result, {"seed": 0})
    with h5py.File(path) as fh:
        assert fh.attrs["complete"] and fh["population/e"].shape == (20, 1)
        np.testing.assert_array_equal(fh["spikes/e/index"][()], result.recording.spikes["e"].index)
        assert fh.attrs["rate_e_Hz"] == pytest.approx(result.rate_e_Hz)
    assert result.spikes_e.shape == (100, 1, 3200)
    assert result.spikes_e.sum() == len(result.recording.spikes["e"].step)


def test_gamma_of_a_long_run_averages_segments_and_equals_the_whole_trial_below_one():
    from ei_sim.sim.run import gamma_of_run
    from ei_sim.sim.spectrum import gamma_peak

    rng = np.random.default_rng(0)
    t_ms = np.arange(250_000) * 0.1  # 25 s at dt 0.1 ms: two 10 s segments and a rest
    act = 0.01 * (1 + np.sin(2 * np.pi * 40.0 * t_ms / 1000.0)) + 0.002 * rng.random(t_ms.size)
    peak = gamma_of_run(act[:, None], 0.1, 20.0)
    assert peak.frequency_Hz == pytest.approx(40.0, abs=0.1)
    short = act[:20_000, None]
    assert gamma_of_run(short, 0.1, 20.0) == gamma_peak(short, 0.1, drop_ms=20.0)
