"""Encoding frames as an H.264 MP4 (yuv420p) or a GIF, written atomically."""

from __future__ import annotations

import numbers
import os
import tempfile
from typing import NamedTuple

import numpy as np

from ei_sim import validate
from ei_sim.store.atomic import check_output_path, readable_mode

MIN_FPS, MAX_FPS = 0.01, 60.0
VIDEO_FORMATS = ("mp4", "gif")
H264_QUALITY = 7  # imageio-ffmpeg scale 0-10; 7 is crf 15, sharp text


class VideoInfo(NamedTuple):
    path: str
    n_frames: int
    seconds_per_frame: float  # rendering time only, encoding excluded


def check_video_args(path: str, fps: float, fmt: str) -> None:
    """ValueError unless fps lies in [0.01, 60], fmt is mp4 or gif and the folder of ``path``
    is writable (a GIF stores frame delays in 1/100 s, a player shows at most ~60 frames/s)."""
    if isinstance(fps, bool) or not isinstance(fps, numbers.Real) or not fps > 0:
        raise ValueError(f"fps must be positive, got {fps!r}")
    validate.between("fps", fps, MIN_FPS, MAX_FPS)
    if fmt not in VIDEO_FORMATS:
        raise ValueError(f"video format must be one of {', '.join(VIDEO_FORMATS)}, got {fmt!r}")
    check_output_path(path)


def _even_rgb(frame) -> np.ndarray:
    """Frame as contiguous (H, W, 3) uint8 with even H and W (edge rows/columns repeated)."""
    frame = np.asarray(frame)
    if frame.ndim != 3 or frame.shape[2] < 3 or frame.dtype != np.uint8:
        raise ValueError(f"frames must be (H, W, 3) uint8 arrays, got {frame.dtype} {frame.shape}")
    pad = ((0, frame.shape[0] % 2), (0, frame.shape[1] % 2), (0, 0))
    return np.ascontiguousarray(np.pad(frame[..., :3], pad, mode="edge"))


def _write_mp4(frames, path: str, fps: float) -> int:
    import imageio_ffmpeg

    # imageio-ffmpeg puts ffmpeg in a process group of its own through a preexec_fn, which
    # makes subprocess fork this multithreaded process (JAX then warns about os.fork()); without
    # it ffmpeg is started without a fork of Python and stops with us on Ctrl-C.
    os.environ.setdefault("IMAGEIO_FFMPEG_NO_PREVENT_SIGINT", "1")

    writer, size, n_frames = None, None, 0
    try:
        for frame in map(_even_rgb, frames):
            if writer is None:
                size = (frame.shape[1], frame.shape[0])
                writer = imageio_ffmpeg.write_frames(
                    path, size, fps=fps, codec="libx264", pix_fmt_out="yuv420p",
                    quality=H264_QUALITY, macro_block_size=2, ffmpeg_log_level="error",
                )  # fmt: skip
                writer.send(None)
            elif (frame.shape[1], frame.shape[0]) != size:
                raise ValueError(f"all frames must have one size; got {frame.shape} after {size}")
            writer.send(frame)
            n_frames += 1
    finally:
        if writer is not None:
            writer.close()
    return n_frames


def _write_gif(frames, path: str, fps: float) -> int:
    from PIL import Image

    images = (Image.fromarray(_even_rgb(f)) for f in frames)
    first = next(images, None)
    if first is None:
        return 0
    rest = list(images)
    # PIL merges a frame identical to the previous one into it (durations add up)
    first.save(path, format="GIF", save_all=True, append_images=rest, duration=1000.0 / fps,
               loop=0)  # fmt: skip
    return 1 + len(rest)


def write_video(frames_iterable, path: str, fps: float = 2, fmt: str = "mp4") -> int:
    """Encode (H, W, 3) uint8 frames as H.264 MP4 (yuv420p) or GIF at ``path``, atomically.

    Returns the number of frames; raises ValueError for bad arguments or no frames.
    """
    check_video_args(path, fps, fmt)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=f".{fmt}", dir=folder)
    os.close(fd)
    try:
        n_frames = (_write_mp4 if fmt == "mp4" else _write_gif)(frames_iterable, tmp, fps)
        if n_frames == 0:
            raise ValueError("no frames to write")
        os.chmod(tmp, readable_mode())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return n_frames
