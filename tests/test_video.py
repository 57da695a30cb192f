"""Training videos: snapshot HDF5 round trip, frame rendering, MP4/GIF encoding, CLI."""

import argparse
import dataclasses
import hashlib
import os

import h5py
import imageio_ffmpeg
import numpy as np
import pytest

from ei_sim.analysis.video import (
    WEIGHT_NAMES,
    Snapshot,
    cell_video_name,
    read_snapshots,
    render_frame,
    render_run,
    weight_histograms,
    write_snapshot,
    write_video,
)
from ei_sim.cli.video import register
from ei_sim.store.atomic import atomic_h5

DT_MS, DROP_MS, T_MS = 0.1, 20.0, 200.0


def make_snapshot(epoch, n_e=40, n_i=10, silent=False):
    """Synthetic snapshot: E and I rasters oscillating at a gamma frequency set by the epoch."""
    rng = np.random.default_rng(epoch)
    t_ms = DROP_MS + np.arange(int(round((T_MS - DROP_MS) / DT_MS))) * DT_MS
    freq_Hz = 30.0 + 10.0 * epoch
    drive = (0.5 * (1 + np.sin(2 * np.pi * freq_Hz * t_ms / 1000))) ** 6
    scale = 0.0 if silent else 1.0
    spikes_e = rng.random((t_ms.size, n_e)) < scale * 0.005 * drive[:, None]
    spikes_i = rng.random((t_ms.size, n_i)) < scale * 0.02 * np.roll(drive, 20)[:, None]
    y, x = np.mgrid[:28, :28]
    ring = np.abs(np.hypot((y - 14) / 1.4, x - 14) - 6.5) < 1.8  # a crude zero
    weights = {name: rng.gamma(2.0, 0.1 * (k + 1), 500) for k, name in enumerate(WEIGHT_NAMES)}
    n_hist = epoch + 1
    return Snapshot(
        epoch=epoch, image=ring.ravel() * rng.uniform(0.7, 1, 784), label=epoch % 10,
        dt_ms=DT_MS, drop_ms=DROP_MS,
        spikes_e=spikes_e, spikes_i=spikes_i,
        v_trace_mV=-65.0 + 14.0 * drive + rng.normal(0, 0.5, t_ms.size),
        v_th_mV=-50.0, v_reset_mV=-65.0, weight_hists=weight_histograms(weights, n_bins=30),
        accuracy=np.linspace(0.3, 0.3 + 0.05 * epoch, n_hist),
        rate_e_Hz=np.linspace(5, 3, n_hist), rate_i_Hz=np.linspace(10, 20, n_hist),
        model="ping", w_ei=0.5, w_ie=1.0, budget="0.2",
    )  # fmt: skip


def assert_snapshots_equal(a, b):
    for field in dataclasses.fields(Snapshot):
        x, y = getattr(a, field.name), getattr(b, field.name)
        if field.name == "weight_hists":
            assert x.keys() == y.keys()
            for name in x:
                np.testing.assert_array_equal(x[name][0], y[name][0])
                np.testing.assert_array_equal(x[name][1], y[name][1])
        else:
            np.testing.assert_array_equal(x, y, err_msg=field.name)


@pytest.fixture(scope="module")
def snapshots():
    return [make_snapshot(epoch) for epoch in range(3)]


@pytest.fixture(scope="module")
def run_file(tmp_path_factory, snapshots):
    path = str(tmp_path_factory.mktemp("run") / "run.h5")
    with atomic_h5(path) as fh:
        fh.attrs["kind"] = "train"
        for snapshot in snapshots[::-1]:  # written out of order, read back sorted
            write_snapshot(fh, snapshot)
    return path


def test_snapshots_round_trip(run_file, snapshots):
    back = read_snapshots(run_file)
    assert [s.epoch for s in back] == [0, 1, 2]
    for a, b in zip(snapshots, back, strict=True):
        assert_snapshots_equal(a, b)
    with h5py.File(run_file, "r") as fh:
        assert sorted(fh["snapshots"]) == ["epoch_0000", "epoch_0001", "epoch_0002"]
        events = fh["snapshots/epoch_0001/spikes_e"]
        assert events["step"].dtype.kind == "i" and events["cell"].dtype.kind == "i"
        assert events["step"].shape[0] == snapshots[1].spikes_e.sum()


def test_render_run_mp4(run_file, tmp_path):
    digest = hashlib.sha256(open(run_file, "rb").read()).hexdigest()
    out = str(tmp_path / "train.mp4")
    info = render_run(run_file, out, fps=2)
    assert info.n_frames == 3 and info.path == out
    reader = imageio_ffmpeg.read_frames(out)
    meta = reader.__next__()
    assert tuple(meta["size"]) == (1920, 1080)
    frames = [np.frombuffer(f, np.uint8).reshape(1080, 1920, 3) for f in reader]
    assert len(frames) == 3
    for a, b in zip(frames, frames[1:], strict=False):
        assert np.abs(a.astype(int) - b.astype(int)).mean() > 0.5
    assert hashlib.sha256(open(run_file, "rb").read()).hexdigest() == digest
    assert not [name for name in os.listdir(tmp_path) if name.startswith(".tmp-")]


def test_default_video_name_beside_run(run_file):
    info = render_run(run_file, fps=4, fmt="gif")
    assert info.path == os.path.join(os.path.dirname(run_file), "video.gif")
    from PIL import Image

    with Image.open(info.path) as gif:
        assert gif.n_frames == 3 and gif.size == (1920, 1080)


def test_render_frame_shape_and_silent_network():
    frame = render_frame(make_snapshot(0, silent=True))
    assert frame.shape == (1080, 1920, 3) and frame.dtype == np.uint8


def test_bad_video_arguments(tmp_path):
    frames = [np.zeros((10, 16, 3), np.uint8)]
    with pytest.raises(ValueError, match="fps must be positive"):
        write_video(frames, str(tmp_path / "a.mp4"), fps=0)
    missing = tmp_path / "nowhere"
    with pytest.raises(ValueError, match="nowhere"):
        write_video(frames, str(missing / "a.mp4"))
    with pytest.raises(ValueError, match="mp4, gif"):
        write_video(frames, str(tmp_path / "a.avi"), fmt="avi")
    with pytest.raises(ValueError, match="no frames"):
        write_video([], str(tmp_path / "a.mp4"))
    assert os.listdir(tmp_path) == []


def test_odd_frame_size_is_padded(tmp_path):
    frames = [np.full((11, 15, 3), 40 * k, np.uint8) for k in range(3)]
    path = str(tmp_path / "odd.mp4")
    assert write_video(frames, path, fps=1) == 3
    meta = imageio_ffmpeg.read_frames(path).__next__()
    assert tuple(meta["size"]) == (16, 12)


def test_run_without_snapshots(tmp_path):
    path = str(tmp_path / "empty.h5")
    with atomic_h5(path) as fh:
        fh.attrs["kind"] = "train"
    with pytest.raises(ValueError, match="run has no snapshots; train with --video"):
        render_run(path)


@pytest.mark.parametrize(
    "w_ei, w_ie, ext, name",
    [(0.5, 2.0, "mp4", "wei0p5__wie2.mp4"), (0.25, 1, "gif", "wei0p25__wie1.gif"),
     (0.0, 0.1, ".mp4", "wei0__wie0p1.mp4"), (1.5, 4.0, "mp4", "wei1p5__wie4.mp4")],
)  # fmt: skip
def test_cell_video_name(w_ei, w_ie, ext, name):
    assert cell_video_name(w_ei, w_ie, ext) == name


def _video_cli(argv):
    parser = argparse.ArgumentParser(prog="ei-sim")
    handlers = register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return handlers[args.command](args)


def test_cli_grid_store(tmp_path, snapshots):
    store = str(tmp_path / "grid.h5")
    with atomic_h5(store) as fh:
        fh.attrs["kind"] = "grid"
        for w_ei, w_ie in ((0.5, 1.0), (0.25, 2.0)):
            cell = fh.create_group(f"cells/cell_{w_ei}_{w_ie}")
            cell.attrs["w_ei"], cell.attrs["w_ie"] = w_ei, w_ie
            for snapshot in snapshots[:2]:
                write_snapshot(cell, snapshot)
        fh.create_group("cells/no_video").attrs.update({"w_ei": 1.0, "w_ie": 1.0})
    out = tmp_path / "videos"
    out.mkdir()
    assert _video_cli(["video", store, "--out", str(out), "--fps", "3"]) == 0
    assert sorted(os.listdir(out)) == ["wei0p25__wie2.mp4", "wei0p5__wie1.mp4"]
    with pytest.raises(ValueError, match="--fps must lie in"):
        _video_cli(["video", store, "--fps", "0"])
    with pytest.raises(ValueError, match="does not exist"):
        _video_cli(["video", str(tmp_path / "missing.h5")])
