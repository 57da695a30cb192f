"""Videos of snapshots: one frame per snapshot (:mod:`ei_sim.analysis.video.draw`), encoded by
:mod:`ei_sim.analysis.video.encode`; a run's video, and the file names of a grid's cell videos."""

from __future__ import annotations

import os
import time

import numpy as np

from ei_sim.analysis.video.draw import FrameRenderer
from ei_sim.analysis.video.encode import VideoInfo, check_video_args, write_video
from ei_sim.store.snapshot import NO_SNAPSHOTS, read_snapshots


def render_snapshots(snapshots, out_path: str, fps: float = 2, fmt: str = "mp4") -> VideoInfo:
    """Render snapshots (one frame each, in the given order) to a video at ``out_path``."""
    snapshots = list(snapshots)
    if not snapshots:
        raise ValueError(NO_SNAPSHOTS)
    check_video_args(out_path, fps, fmt)
    first = min(s.epoch - len(s.accuracy) + 1 for s in snapshots)
    last = max(s.epoch for s in snapshots)
    rate_max_Hz = max(float(np.max(np.r_[s.rate_e_Hz, s.rate_i_Hz], initial=0)) for s in snapshots)
    renderer = FrameRenderer((first - 0.5, last + 0.5), 1.1 * rate_max_Hz or None)
    seconds = []

    def frames():
        for snapshot in snapshots:
            start = time.perf_counter()
            frame = renderer(snapshot)
            seconds.append(time.perf_counter() - start)
            yield frame

    try:
        n_frames = write_video(frames(), out_path, fps, fmt)
    finally:
        renderer.close()
    return VideoInfo(out_path, n_frames, float(np.mean(seconds)))


def render_run(
    h5_path: str, out_path: str | None = None, fps: float = 2, fmt: str = "mp4"
) -> VideoInfo:
    """Render every snapshot of a run file (opened read-only) to a video; default name
    ``video.<fmt>`` beside the run file. Returns a :class:`VideoInfo`."""
    if not os.path.isfile(h5_path):
        raise ValueError(f"run file {h5_path} does not exist")
    if out_path is None:
        out_path = os.path.join(os.path.dirname(os.path.abspath(h5_path)), f"video.{fmt}")
    check_video_args(out_path, fps, fmt)
    return render_snapshots(read_snapshots(h5_path), out_path, fps, fmt)


def _number_tag(value: float) -> str:
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"coupling must be finite, got {value}")
    text = np.format_float_positional(value, trim="-")
    return text.replace("-", "m").replace(".", "p")


def cell_video_name(w_ei: float, w_ie: float, ext: str = "mp4") -> str:
    """File name of a grid cell's video: ``cell_video_name(0.5, 2.0)`` -> ``wei0p5__wie2.mp4``."""
    return f"wei{_number_tag(w_ei)}__wie{_number_tag(w_ie)}.{ext.lstrip('.')}"
