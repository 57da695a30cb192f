"""Drawing one 1920x1080 oscilloscope frame of a :class:`Snapshot`.

Layout: the test digit, the accuracy and test-set rate histories (left); E and I rasters,
the Gaussian-smoothed population rates and one E cell's membrane potential against time in
the trial (middle); the PSD of the E population activity with its gamma peak, and the
histograms of the four weight blocks (right).
"""

from __future__ import annotations

import numpy as np
from matplotlib import rc_context
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from scipy.ndimage import gaussian_filter1d

from ei_sim.sim.spectrum import gamma_verdict_raster, population_psd, spectral_peak
from ei_sim.store.snapshot import WEIGHT_NAMES, Snapshot

FRAME_SIZE_IN = (19.2, 10.8)  # at FRAME_DPI: 1920 x 1080 pixels
FRAME_DPI = 100
SMOOTH_SIGMA_MS = 1.0  # Gaussian smoothing of the population rates
FONT_STYLE = {
    "font.size": 14, "axes.titlesize": 15, "axes.labelsize": 14, "xtick.labelsize": 12,
    "ytick.labelsize": 12, "legend.fontsize": 12, "lines.linewidth": 1.6,
}  # fmt: skip


def population_rate_Hz(spikes: np.ndarray, dt_ms: float, sigma_ms=SMOOTH_SIGMA_MS):
    """Fraction of cells spiking per step over ``dt_ms``, in Hz, Gaussian-smoothed."""
    rate_Hz = spikes.mean(axis=1) * (1000.0 / dt_ms) if spikes.shape[1] else np.zeros(len(spikes))
    return gaussian_filter1d(rate_Hz, sigma_ms / dt_ms, mode="nearest")


def _title(s: Snapshot) -> str:
    acc = f"   test accuracy {100 * s.accuracy[-1]:.1f} %" if len(s.accuracy) else ""
    return (f"{s.model}   W_EI {s.w_ei:g}   W_IE {s.w_ie:g}   spike budget {s.budget}"
            f"   {s.step_text or f'{s.step_label} {s.epoch}'}{acc}")  # fmt: skip


def _note(ax, text: str, right: bool = False, bottom: bool = False) -> None:
    """Boxed label in the top (or bottom) corner of an axes."""
    ax.text(0.995 if right else 0.005, 0.04 if bottom else 0.96, text, transform=ax.transAxes,
            va="bottom" if bottom else "top", ha="right" if right else "left",
            bbox={"fc": "white", "alpha": 0.8})  # fmt: skip


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
    verdict = gamma_verdict_raster(s.spikes_e, s.dt_ms)
    _note(ax, psd_note(peak.frequency_Hz, verdict), right=True, bottom=True)


def psd_note(frequency_Hz: float, verdict) -> str:
    """The PSD panel's label: the peak, the resolution and the surrogate verdict
    (:func:`ei_sim.sim.spectrum.gamma_verdict`) of the trial shown."""
    head = f"gamma peak {frequency_Hz:.1f} Hz ({verdict.resolution_Hz:.3g} Hz bins)"
    if verdict.verdict == "rhythm":
        depth = f"rate modulated {100 * verdict.depth:.0f} %"
        return f"{head}\nrhythm: p = {verdict.p_value:.2g}, {depth}"
    short = verdict.reason.split(":")[0] if verdict.verdict == "no rhythm" else ""
    return f"{head}\n{verdict.verdict}" + (f": {short}" if short else "")


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
