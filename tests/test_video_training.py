"""Videos recorded by training: one frame per epoch, and rendering never costs results."""

import h5py
import imageio_ffmpeg
import numpy as np
import pytest

from ei_sim.cli import main

QUICK = ["--tier", "tiny", "--samples", "120", "--batch-size", "40", "--epochs", "3"]


@pytest.mark.slow
def test_train_with_video_has_one_frame_per_epoch(tmp_path, capsys):
    run_dir = tmp_path / "run"
    assert main(["train", *QUICK, "--out", str(run_dir), "--video"]) == 0
    assert "video:" in capsys.readouterr().out
    reader = imageio_ffmpeg.read_frames(str(run_dir / "video.mp4"))
    meta = next(reader)
    frames = [np.frombuffer(f, np.uint8) for f in reader]
    assert meta["size"] == (1920, 1080)
    assert len(frames) == 3
    assert all(not np.array_equal(a, b) for a, b in zip(frames, frames[1:], strict=False))
    assert main(["video", str(run_dir / "run.h5"), "--format", "gif",
                 "--out", str(tmp_path / "again.gif")]) == 0  # fmt: skip
    assert (tmp_path / "again.gif").stat().st_size > 0


def test_failed_snapshot_keeps_training_results(tmp_path, monkeypatch, capsys):
    import ei_sim.analysis.video_hook as hook

    def broken(*args):
        raise RuntimeError("renderer exploded")

    monkeypatch.setattr(hook, "snapshot_writer", broken)
    run_dir = tmp_path / "run"
    quick = [a if a != "3" else "1" for a in QUICK]
    code = main(["train", *quick, "--out", str(run_dir), "--video"])
    captured = capsys.readouterr()
    assert "snapshot not stored" in captured.err
    with h5py.File(run_dir / "run.h5") as fh:
        assert fh["metrics/test_accuracy"].shape == (1,)
        assert "snapshots" not in fh
    assert code == 2  # no snapshots to render: a one-line error after the results are safe
    assert "no snapshots" in captured.err


@pytest.mark.slow
def test_grid_with_video_stores_one_snapshot_per_epoch_in_each_cell(tmp_path, capsys):
    """The CLI passes the snapshot writer to every cell (sweeps imports nothing of analysis)."""
    store = tmp_path / "grid.h5"
    quick = [a if a != "3" else "2" for a in QUICK]
    args = ["grid", "--wei", "0,1", "--wie", "2", *quick, "--n-e", "16", "--t-ms", "40",
            "--executor", "serial", "--out", str(store), "--video"]  # fmt: skip
    assert main(args) == 0
    with h5py.File(store) as fh:
        cells = fh["cells"]
        assert len(cells) == 2
        for cell in cells.values():
            assert sorted(cell["snapshots"]) == ["epoch_0001", "epoch_0002"]
    out = tmp_path / "videos"
    out.mkdir()
    capsys.readouterr()
    assert main(["video", str(store), "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["wei0__wie2.mp4", "wei1__wie2.mp4"]
    reader = imageio_ffmpeg.read_frames(str(out / "wei1__wie2.mp4"))
    next(reader)
    assert sum(1 for _ in reader) == 2
