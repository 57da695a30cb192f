"""Oscilloscope videos of training: one frame per epoch (issue 7).

After every epoch the training loop stores one :class:`Snapshot`, the network's response to
one fixed test trial, in the run's HDF5 file (:func:`write_snapshot`). :func:`render_run`
reads them back read-only, draws one 1920x1080 frame per epoch (:class:`FrameRenderer`) and
encodes the frames as an H.264 MP4 or a GIF (:func:`write_video`), written atomically.

HDF5 layout of one snapshot, group ``snapshots/epoch_NNNN``:

- attributes: epoch, label, dt_ms, drop_ms, v_th_mV, v_reset_mV, model, w_ei, w_ie, budget
- datasets: image, v_trace_mV, accuracy, rate_e_Hz, rate_i_Hz
- ``spikes_e/``, ``spikes_i/``: event lists ``step`` and ``cell`` (int32), with attributes
  ``n_steps`` and ``n_cells`` (a raster is never stored as a dense float array)
- ``weights/<name>/counts`` and ``weights/<name>/bin_edges`` for w_in, w_out, w_ei, w_ie
"""

from __future__ import annotations

import dataclasses
import numbers
import os
import tempfile
import time
from typing import NamedTuple

import h5py
import numpy as np
from matplotlib import rc_context
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from scipy.ndimage import gaussian_filter1d

from ei_sim import validate
from ei_sim.spectrum import population_psd, spectral_peak
from ei_sim.storage import check_output_path, read_attrs, readable_mode, write_attrs

MIN_FPS, MAX_FPS = 0.01, 60.0

SNAPSHOT_GROUP = "snapshots"
WEIGHT_NAMES = ("w_in", "w_out", "w_ei", "w_ie")
VIDEO_FORMATS = ("mp4", "gif")
NO_SNAPSHOTS = "run has no snapshots; train with --video to record them"
FRAME_SIZE_IN = (19.2, 10.8)  # at FRAME_DPI: 1920 x 1080 pixels
FRAME_DPI = 100
SMOOTH_SIGMA_MS = 1.0  # Gaussian smoothing of the population rates
H264_QUALITY = 7  # imageio-ffmpeg scale 0-10; 7 is crf 15, sharp text
FONT_STYLE = {
    "font.size": 14, "axes.titlesize": 15, "axes.labelsize": 14, "xtick.labelsize": 12,
    "ytick.labelsize": 12, "legend.fontsize": 12, "lines.linewidth": 1.6,
}  # fmt: skip
_ATTR_FIELDS = ("epoch", "label", "dt_ms", "drop_ms", "v_th_mV", "v_reset_mV", "model", "w_ei",
                "w_ie", "budget", "step_label", "step_text")  # fmt: skip
_ARRAY_FIELDS = ("image", "v_trace_mV", "accuracy", "rate_e_Hz", "rate_i_Hz")


@dataclasses.dataclass(frozen=True, eq=False)
class Snapshot:
    """One epoch's response to one fixed test trial; the first ``drop_ms`` are already dropped,
    so step k of the rasters and of the trace is at ``drop_ms + k * dt_ms`` in the trial."""

    epoch: int
    image: np.ndarray  # (784,) pixel intensities in [0, 1]
    label: int
    dt_ms: float
    drop_ms: float
    spikes_e: np.ndarray  # (T, N_E) bool
    spikes_i: np.ndarray  # (T, N_I) bool
    v_trace_mV: np.ndarray  # (T,) membrane potential of one E cell
    v_th_mV: float
    v_reset_mV: float
    weight_hists: dict  # name -> (counts (n_bins,), bin_edges (n_bins + 1,))
    accuracy: np.ndarray  # (epochs so far,) test accuracy as a fraction in [0, 1]
    rate_e_Hz: np.ndarray  # (epochs so far,) mean E rate on the test set
    rate_i_Hz: np.ndarray  # (epochs so far,) mean I rate on the test set
    model: str
    w_ei: float
    w_ie: float
    budget: str  # spike budget theta: "off" or a number such as "0.2"
    step_label: str = "epoch"  # what one frame is ("epoch", or "W_in scale" in sweeps)
    step_text: str = ""  # title text of this frame's step; default "<step_label> <epoch>"

    def __post_init__(self):
        for name in ("spikes_e", "spikes_i"):
            object.__setattr__(self, name, np.asarray(getattr(self, name), dtype=bool))
        n_steps = self.v_trace_mV.shape[0]
        if self.spikes_e.ndim != 2 or self.spikes_i.ndim != 2:
            raise ValueError("spikes_e and spikes_i must be (T, N) rasters")
        if not self.spikes_e.shape[0] == self.spikes_i.shape[0] == n_steps:
            raise ValueError("spikes_e, spikes_i and v_trace_mV must have the same length T")
        if not len(self.accuracy) == len(self.rate_e_Hz) == len(self.rate_i_Hz):
            raise ValueError("accuracy, rate_e_Hz and rate_i_Hz histories must have one length")
        if not self.dt_ms > 0:
            raise ValueError(f"dt_ms must be positive, got {self.dt_ms}")


def weight_histograms(weights: dict, n_bins: int = 40) -> dict:
    """Histograms name -> (counts, bin_edges) of weight arrays, for ``Snapshot.weight_hists``."""
    return {name: np.histogram(np.asarray(w).ravel(), bins=n_bins) for name, w in weights.items()}


# ---------------------------------------------------------------- HDF5 read and write


def _write_events(group, spikes: np.ndarray) -> None:
    steps, cells = np.nonzero(spikes)
    for key, data in (("step", steps), ("cell", cells)):
        group.create_dataset(
            key, data=data.astype(np.int32), compression="gzip" if data.size else None
        )
    group.attrs["n_steps"], group.attrs["n_cells"] = spikes.shape


def _read_events(group) -> np.ndarray:
    spikes = np.zeros((int(group.attrs["n_steps"]), int(group.attrs["n_cells"])), dtype=bool)
    spikes[group["step"][()], group["cell"][()]] = True
    return spikes


def write_snapshot(h5_group, snapshot: Snapshot) -> None:
    """Store ``snapshot`` as ``snapshots/epoch_NNNN`` under ``h5_group`` (a file or a group);
    an existing snapshot of the same epoch is replaced."""
    snapshots = h5_group.require_group(SNAPSHOT_GROUP)
    name = f"epoch_{int(snapshot.epoch):04d}"
    if name in snapshots:
        del snapshots[name]
    group = snapshots.create_group(name)
    write_attrs(group, {key: getattr(snapshot, key) for key in _ATTR_FIELDS})
    for key in _ARRAY_FIELDS:
        group.create_dataset(key, data=np.asarray(getattr(snapshot, key)))
    _write_events(group.create_group("spikes_e"), snapshot.spikes_e)
    _write_events(group.create_group("spikes_i"), snapshot.spikes_i)
    weights = group.create_group("weights")
    for wname, (counts, edges) in snapshot.weight_hists.items():
        weights.create_dataset(f"{wname}/counts", data=np.asarray(counts))
        weights.create_dataset(f"{wname}/bin_edges", data=np.asarray(edges))


def _read_snapshot(group) -> Snapshot:
    fields = read_attrs(group)
    fields = {key: fields[key] for key in _ATTR_FIELDS if key in fields}
    fields.update({key: group[key][()] for key in _ARRAY_FIELDS})
    fields["spikes_e"] = _read_events(group["spikes_e"])
    fields["spikes_i"] = _read_events(group["spikes_i"])
    hists = group["weights"]
    fields["weight_hists"] = {
        name: (hists[name]["counts"][()], hists[name]["bin_edges"][()]) for name in hists
    }
    return Snapshot(**fields)


def read_snapshots(h5_file_or_group) -> list[Snapshot]:
    """All snapshots under a file, a group or a path (opened read-only), sorted by epoch."""
    if isinstance(h5_file_or_group, str | os.PathLike):
        with h5py.File(h5_file_or_group, "r") as fh:
            return read_snapshots(fh)
    group = h5_file_or_group.get(SNAPSHOT_GROUP)
    if group is None or len(group) == 0:
        raise ValueError(NO_SNAPSHOTS)
    return sorted((_read_snapshot(group[name]) for name in group), key=lambda s: s.epoch)


# ---------------------------------------------------------------- frame drawing


def population_rate_Hz(spikes: np.ndarray, dt_ms: float, sigma_ms=SMOOTH_SIGMA_MS):
    """Fraction of cells spiking per step over ``dt_ms``, in Hz, Gaussian-smoothed."""
    rate_Hz = spikes.mean(axis=1) * (1000.0 / dt_ms) if spikes.shape[1] else np.zeros(len(spikes))
    return gaussian_filter1d(rate_Hz, sigma_ms / dt_ms, mode="nearest")


def _title(s: Snapshot) -> str:
    acc = f"   test accuracy {100 * s.accuracy[-1]:.1f} %" if len(s.accuracy) else ""
    return (f"{s.model}   W_EI {s.w_ei:g}   W_IE {s.w_ie:g}   spike budget {s.budget}"
            f"   {s.step_text or f'{s.step_label} {s.epoch}'}{acc}")  # fmt: skip


def _note(ax, text: str, right: bool = False) -> None:
    """Boxed label in the top corner of an axes."""
    ax.text(0.995 if right else 0.005, 0.96, text, transform=ax.transAxes, va="top",
            ha="right" if right else "left", bbox={"fc": "white", "alpha": 0.8})  # fmt: skip


def _draw_digit(ax, s: Snapshot) -> None:
    side = int(round(np.sqrt(s.image.size)))
    ax.imshow(np.reshape(s.image, (side, -1)), cmap="gray_r", vmin=0.0, vmax=1.0)
    ax.set(xticks=[], yticks=[], title=f"test digit (label {s.label})")


def _draw_raster(ax, spikes, t_ms, name: str, color: str, dt_ms: float) -> None:
    steps, cells = np.nonzero(spikes)
    n_cells = spikes.shape[1]
    tick_pt = float(np.clip(300 / max(n_cells, 1), 1.5, 6))
    rate_Hz = float(spikes.mean() * 1000.0 / dt_ms) if spikes.size else 0.0
    ax.plot(t_ms[steps], cells, ls="", marker="|", ms=tick_pt, mew=1.0, color=color)
    ax.set(ylim=(-0.5, n_cells - 0.5), ylabel=f"{name} cell")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    _note(ax, f"{name} raster, {n_cells} cells, {rate_Hz:.1f} Hz", True)


def _draw_rates(ax, s: Snapshot, t_ms) -> None:
    ax.plot(t_ms, population_rate_Hz(s.spikes_e, s.dt_ms), color="tab:blue", label="E")
    ax.plot(t_ms, population_rate_Hz(s.spikes_i, s.dt_ms), color="tab:red", label="I")
    ax.set(ylabel="rate (Hz)")
    ax.legend(loc="upper right", ncol=2)
    _note(ax, f"population rates ({SMOOTH_SIGMA_MS:g} ms smoothing)")


def _draw_voltage(ax, s: Snapshot, t_ms) -> None:
    ax.plot(t_ms, s.v_trace_mV, color="black", lw=1.2)
    ax.axhline(s.v_th_mV, color="tab:red", ls="--", label=f"threshold {s.v_th_mV:g} mV")
    ax.axhline(s.v_reset_mV, color="tab:gray", ls=":", label=f"reset {s.v_reset_mV:g} mV")
    low_mV = min(s.v_reset_mV, float(np.min(s.v_trace_mV, initial=s.v_reset_mV))) - 5
    high_mV = max(s.v_th_mV, float(np.max(s.v_trace_mV, initial=s.v_th_mV))) + 5
    ax.set(ylim=(low_mV, high_mV), ylabel="V (mV)", xlabel="time in trial (ms)")
    ax.legend(loc="lower right", ncol=2)
    _note(ax, "one E cell")


def _draw_psd(ax, s: Snapshot) -> None:
    ax.set(title="PSD of E population activity", xlabel="frequency (Hz)", xlim=(0, 200),
           ylabel="power (a.u.)")  # fmt: skip
    if s.spikes_e.shape[0] < 8 or not s.spikes_e.any():
        return _note(ax, "no E spikes: no peak", True)
    freqs, power = population_psd(s.spikes_e.mean(axis=1), s.dt_ms)
    keep = (freqs > 0) & (freqs <= 200)
    ax.semilogy(freqs[keep], power[keep], color="tab:blue")
    ax.minorticks_off()  # log-axis minor ticks cost a third of the frame time
    peak = spectral_peak(freqs, power)
    if peak is None:
        return _note(ax, "no peak", True)
    ax.axvline(peak.frequency_Hz, color="tab:orange", ls="--")
    _note(ax, f"gamma peak {peak.frequency_Hz:.1f} Hz ({peak.significance:.0f} x band median)", True)


def _history_epochs(s: Snapshot) -> np.ndarray:
    return np.arange(s.epoch - len(s.accuracy) + 1, s.epoch + 1)


def _draw_accuracy(ax, s: Snapshot, epoch_range) -> None:
    ax.plot(_history_epochs(s), 100 * np.asarray(s.accuracy), marker="o", color="tab:green")
    ax.set(xlim=epoch_range, ylim=(0, 100), ylabel="test accuracy (%)")
    ax.set(title=f"test accuracy by {s.step_label}")
    ax.grid(alpha=0.3)


def _draw_rate_history(ax, s: Snapshot, epoch_range, rate_max_Hz) -> None:
    epochs = _history_epochs(s)
    ax.plot(epochs, s.rate_e_Hz, marker="o", color="tab:blue", label="E")
    ax.plot(epochs, s.rate_i_Hz, marker="s", color="tab:red", label="I")
    ax.set(xlim=epoch_range, ylim=(0, rate_max_Hz), xlabel=s.step_label, ylabel="rate (Hz)")
    ax.set(title=f"test-set rates by {s.step_label}")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend(loc="upper left", ncol=2)
    ax.grid(alpha=0.3)


def _draw_weights(ax, s: Snapshot, name: str) -> None:
    ax.set(title=name.replace("w_", "W_").replace("_ei", "_EI").replace("_ie", "_IE"))
    if name not in s.weight_hists:
        return _note(ax, "not recorded")
    counts, edges = (np.asarray(a) for a in s.weight_hists[name])
    ax.stairs(np.maximum(counts, 0.8), edges, baseline=0.8, fill=True, color="tab:purple")
    ax.set_yscale("log")
    ax.minorticks_off()
    ax.set(ylim=(0.8, max(2.0, float(counts.max(initial=1)) * 2)), xlabel="weight")


class FrameRenderer:
    """One reusable 1920x1080 figure with a fixed layout; ``renderer(snapshot)`` -> frame.

    ``epoch_range`` and ``rate_max_Hz`` fix the axes of the history curves across frames.
    """

    def __init__(self, epoch_range=None, rate_max_Hz=None):
        self.epoch_range, self.rate_max_Hz = epoch_range, rate_max_Hz
        with rc_context(FONT_STYLE):
            self.figure = Figure(figsize=FRAME_SIZE_IN, dpi=FRAME_DPI)
            FigureCanvasAgg(self.figure)
            self.axes = self._layout(self.figure)
            self.title = self.figure.text(0.5, 0.975, "", ha="center", va="top", fontsize=22)

    @staticmethod
    def _layout(fig) -> dict:
        outer = fig.add_gridspec(1, 3, left=0.045, right=0.985, top=0.91, bottom=0.065,
                                 width_ratios=[1, 2.4, 1.45], wspace=0.2)  # fmt: skip
        left = outer[0].subgridspec(3, 1, height_ratios=[1.3, 1, 1], hspace=0.5)
        mid = outer[1].subgridspec(4, 1, height_ratios=[2.2, 1, 1.1, 1.2], hspace=0.1)
        right = outer[2].subgridspec(3, 2, height_ratios=[1.5, 1, 1], hspace=0.7, wspace=0.3)
        axes = {"digit": fig.add_subplot(left[0]), "accuracy": fig.add_subplot(left[1])}
        axes["rate_history"] = fig.add_subplot(left[2], sharex=axes["accuracy"])
        axes["raster_e"] = fig.add_subplot(mid[0])
        for row, key in enumerate(("raster_i", "rates", "voltage"), start=1):
            axes[key] = fig.add_subplot(mid[row], sharex=axes["raster_e"])
        axes["psd"] = fig.add_subplot(right[0, :])
        for k, name in enumerate(WEIGHT_NAMES):
            axes[name] = fig.add_subplot(right[1 + k // 2, k % 2])
        return axes

    def __call__(self, s: Snapshot) -> np.ndarray:
        with rc_context(FONT_STYLE):
            for ax in self.axes.values():
                ax.cla()
            self._draw(s)
            self.figure.canvas.draw()
        return np.asarray(self.figure.canvas.buffer_rgba())[..., :3].copy()

    def _draw(self, s: Snapshot) -> None:
        ax = self.axes
        t_ms = s.drop_ms + np.arange(s.v_trace_mV.shape[0]) * s.dt_ms
        self.title.set_text(_title(s))
        _draw_digit(ax["digit"], s)
        _draw_raster(ax["raster_e"], s.spikes_e, t_ms, "E", "tab:blue", s.dt_ms)
        _draw_raster(ax["raster_i"], s.spikes_i, t_ms, "I", "tab:red", s.dt_ms)
        _draw_rates(ax["rates"], s, t_ms)
        _draw_voltage(ax["voltage"], s, t_ms)
        ax["raster_e"].set_xlim(t_ms[0] if t_ms.size else 0, s.drop_ms + t_ms.size * s.dt_ms)
        for key in ("raster_e", "raster_i", "rates"):
            ax[key].tick_params(labelbottom=False)
        _draw_psd(ax["psd"], s)
        _draw_accuracy(ax["accuracy"], s, self.epoch_range)
        _draw_rate_history(ax["rate_history"], s, self.epoch_range, self.rate_max_Hz)
        for name in WEIGHT_NAMES:
            _draw_weights(ax[name], s, name)

    def close(self) -> None:
        self.figure.clear()


def render_frame(snapshot: Snapshot, renderer: FrameRenderer | None = None) -> np.ndarray:
    """One (1080, 1920, 3) uint8 frame; pass a :class:`FrameRenderer` to reuse its figure."""
    return (renderer or FrameRenderer())(snapshot)


# ---------------------------------------------------------------- video encoding


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
