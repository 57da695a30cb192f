"""Encoding frames as an H.264 MP4 (yuv420p) or a GIF, written atomically.

MP4s are encoded by the ffmpeg that imageio-ffmpeg ships, fed raw frames on its standard
input. Its exit status and its error output are read: any failure (a full disk: "Error
writing trailer ... No space left on device"; a crash; an early exit) ends in one line, the
temporary file is removed and the previous video stays. A finished file is checked once
more (its boxes whole, its index ``moov`` present: :mod:`ei_sim.store.media`) before it is
renamed into place; a GIF likewise (its trailer).
"""

from __future__ import annotations

import contextlib
import numbers
import subprocess
import tempfile
from fractions import Fraction
from typing import NamedTuple

import numpy as np

from ei_sim import validate
from ei_sim.store.atomic import atomic_file, check_output_path, is_disk_full, no_space
from ei_sim.store.media import file_problem

MIN_FPS, MAX_FPS = 0.01, 60.0
VIDEO_FORMATS = ("mp4", "gif")
H264_QUALITY = 7  # imageio-ffmpeg scale 0-10; 7 is crf 15, sharp text
H264_CRF = int((1 - H264_QUALITY / 10.0) * 51)  # what imageio-ffmpeg makes of that quality


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


def ffmpeg_command(size: tuple[int, int], fps: float, path: str) -> list[str]:
    """The ffmpeg command that encodes raw RGB frames of ``size`` (width, height) from its
    standard input as H.264 (yuv420p, crf :data:`H264_CRF`) at ``path``."""
    import imageio_ffmpeg

    rate = str(Fraction(fps).limit_denominator())
    return [imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-f", "rawvideo", "-vcodec", "rawvideo",
            "-s", f"{size[0]}x{size[1]}", "-pix_fmt", "rgb24", "-r", rate, "-i", "-", "-an",
            "-vcodec", "libx264", "-pix_fmt", "yuv420p", "-crf", str(H264_CRF),
            "-v", "error", "-f", "mp4", path]  # fmt: skip


def ffmpeg_failure(log: str, returncode: int | None) -> str:
    """What went wrong in one line, from ffmpeg's error output and exit status."""
    lines = [line.strip() for line in log.splitlines() if line.strip()]
    errors = [line for line in lines if "error" in line.lower()] or lines
    reason = errors[-1] if errors else "no message"
    status = "" if returncode in (None, 0) else f" (exit status {returncode})"
    return f"ffmpeg failed{status}: {reason[:200]}"


def _finish(proc, log_file, broken: bool, path: str) -> None:
    """Wait for ffmpeg; ValueError (one line) unless it exited 0 without reporting an
    error (ffmpeg of some versions exits 0 after "Error writing trailer")."""
    with contextlib.suppress(OSError, ValueError):
        proc.stdin.close()
    returncode = proc.wait()
    log_file.seek(0)
    log = log_file.read().decode("utf-8", "replace")
    if returncode != 0 or broken or "error" in log.lower():
        failure = ffmpeg_failure(log, returncode)
        if is_disk_full(ValueError(log)):
            raise ValueError(f"{no_space(path)} ({failure})")
        raise ValueError(f"cannot write {path}: {failure}")


def _write_mp4(frames, path: str, fps: float, shown_as: str | None = None) -> int:
    """Encode ``frames`` with ffmpeg into ``path``; errors name ``shown_as`` (the output)."""
    shown_as = shown_as or path
    proc, size, n_frames, broken = None, None, 0, False
    with tempfile.TemporaryFile() as log_file:
        try:
            for frame in map(_even_rgb, frames):
                if proc is None:
                    size = (frame.shape[1], frame.shape[0])
                    proc = subprocess.Popen(ffmpeg_command(size, fps, path),
                                            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                            stderr=log_file)  # fmt: skip
                elif (frame.shape[1], frame.shape[0]) != size:
                    raise ValueError(f"all frames must have one size; got {frame.shape} after "
                                     f"{size}")  # fmt: skip
                try:
                    proc.stdin.write(frame.tobytes())
                except BrokenPipeError:  # ffmpeg stopped: its log says why
                    broken = True
                    break
                n_frames += 1
        except BaseException:
            if proc is not None:
                proc.kill()
                proc.wait()
            raise
        if proc is not None:
            _finish(proc, log_file, broken, shown_as)
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

    Returns the number of frames; raises ValueError (one line) for bad arguments, no frames
    or a failed encoding (the previous file at ``path`` then stays)."""
    check_video_args(path, fps, fmt)
    with atomic_file(path, check=lambda tmp: file_problem(tmp, fmt)) as tmp:
        if fmt == "mp4":
            n_frames = _write_mp4(frames_iterable, tmp, fps, shown_as=path)
        else:
            n_frames = _write_gif(frames_iterable, tmp, fps)
        if n_frames == 0:
            raise ValueError("no frames to write")
    return n_frames
