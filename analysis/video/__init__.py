"""Oscilloscope videos of training: one frame per epoch (or per step of a sweep).

After every epoch the training loop stores one :class:`Snapshot`, the network's response to
one fixed test trial, in the run's HDF5 file (:func:`write_snapshot`, the hook
:func:`ei_sim.analysis.video_hook.snapshot_writer`). :func:`render_run` reads them back read-only,
draws one 1920x1080 frame per epoch (:class:`FrameRenderer`) and encodes the frames as an
H.264 MP4 or a GIF (:func:`write_video`), written atomically.

The snapshot and its HDF5 layout (read and write) are the core's
(:mod:`ei_sim.store.snapshot`); here: :mod:`~ei_sim.analysis.video.draw` (one frame),
:mod:`~ei_sim.analysis.video.encode` (MP4 / GIF), :mod:`~ei_sim.analysis.video.render` (snapshots
to a
video) and :mod:`~ei_sim.analysis.video.sweep` (the W_in scale-sweep video). Every public name is
importable from ``ei_sim.analysis.video`` itself.
"""

from ei_sim.analysis.video.draw import (
    FONT_STYLE,
    FRAME_DPI,
    FRAME_SIZE_IN,
    SMOOTH_SIGMA_MS,
    FrameRenderer,
    population_rate_Hz,
    render_frame,
)
from ei_sim.analysis.video.encode import (
    H264_QUALITY,
    MAX_FPS,
    MIN_FPS,
    VIDEO_FORMATS,
    VideoInfo,
    check_video_args,
    write_video,
)
from ei_sim.analysis.video.render import cell_video_name, render_run, render_snapshots
from ei_sim.analysis.video.sweep import scale_video
from ei_sim.store.snapshot import (
    NO_SNAPSHOTS,
    SNAPSHOT_GROUP,
    WEIGHT_NAMES,
    Snapshot,
    read_snapshots,
    weight_histograms,
    write_snapshot,
)

__all__ = [
    "FONT_STYLE", "FRAME_DPI", "FRAME_SIZE_IN", "H264_QUALITY", "MAX_FPS", "MIN_FPS",
    "NO_SNAPSHOTS", "SMOOTH_SIGMA_MS", "SNAPSHOT_GROUP", "VIDEO_FORMATS", "WEIGHT_NAMES",
    "FrameRenderer", "Snapshot", "VideoInfo", "cell_video_name", "check_video_args",
    "population_rate_Hz", "read_snapshots", "render_frame", "render_run", "render_snapshots",
    "scale_video", "weight_histograms", "write_snapshot", "write_video",
]  # fmt: skip
