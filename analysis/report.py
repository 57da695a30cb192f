"""``ei-sim report``: one self-contained, styled HTML page per file, to read and to send.

The page is a single file: its figures are PNGs embedded as ``data:`` URIs, its style sheet
inline, so nothing beside it is written (no stray ``<name>_map.png`` next to the grid's own
``<name>_basins.png``). The kind is read from the file's root attribute ``kind`` (a file
without it, written before the attribute existed, is recognised by its groups:
:func:`ei_sim.store.kinds.kind_of`); a run directory stands for its ``run.h5``.

Pages, by kind (docs/reports.md shows them):

* **run** (a training run): learning curves (loss, train and test accuracy in %), rates per
  epoch, the gamma peak per epoch with the reference trial's surrogate verdict, the
  reference trial's E and I rasters and spectrum (the stored snapshot of the best epoch
  with ``--video``, else simulated now under the best weights), parameters and provenance;
* **simulate**: E and I rasters of trial 0 (at most :data:`RASTER_CELLS` cells, evenly
  spaced, so 4,000 cells read as spikes, not as a block), population rates, every recorded
  trace the file holds (V, g_exc, g_inh), the E spectrum beside its surrogates with the peak,
  its verdict and the frequency resolution, parameters with units and provenance;
* **grid**: the basin map, heatmaps of accuracy (0-100 %), rates and the gamma rhythm, the
  rate-accuracy scatter and the cell table with each cell's verdict;
* **scale_sweep / coupling_sweep**: I rate (the cliff threshold and each f* marked), E rate
  and accuracy (%) against the W_in scale, and the cliff report.

The page is written atomically (:func:`write_page`): a failure (a full disk, a kill, a
damaged input) leaves the previous report as it was.

Old files open too: a run or grid without verdicts says "no verdict stored"; a simulate
file's verdict is computed from its spikes.
"""

from __future__ import annotations

import base64
import html
import os

import numpy as np

from ei_sim.analysis import basins, cliff
from ei_sim.analysis import figures as F
from ei_sim.store.atomic import write_text
from ei_sim.store.kinds import file_kind as _file_kind
from ei_sim.store.verify import resolve  # a run directory stands for its run.h5

REPORT_KINDS = ("run", "simulate", "grid", *cliff.SWEEP_KINDS)
RASTER_CELLS = 400  # at most this many cells per raster (evenly spaced over the population)
MAX_TRACE_CELLS = 8  # cells per trace panel
SMOOTH_MS = 1.0  # Gaussian smoothing of the population rates shown
UNIT_SUFFIXES = (
    ("_per_mV", "1/mV"), ("_mV", "mV"), ("_ms", "ms"), ("_nF", "nF"), ("_uS", "uS"),
    ("_nA", "nA"), ("_Hz", "Hz"), ("_s", "s"),
)  # fmt: skip
UNITS = {  # attributes whose unit the name does not say
    "model.w_in_mean": "uS", "model.w_ei_mean": "uS", "model.w_ie_mean": "uS",
    "model.ei_strength": "uS", "model.w_e_uS": "uS", "model.ei_ratio": "1",
    "model.w_in_sparsity": "fraction", "model.w_in_std_fraction": "fraction",
    "model.w_out_mean": "a.u.", "model.w_out_std": "a.u.", "model.w_out_scale": "a.u.",
    "train.learning_rate": "1/step", "train.budget": "spikes/cell/step",
}  # fmt: skip

STYLE = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:0;color:#1d2330;
background:#f4f5f7;line-height:1.45}
main{max-width:1180px;margin:0 auto;padding:24px 28px 60px;background:#fff;
box-shadow:0 0 12px rgba(0,0,0,.06)}
h1{font-size:1.55em;margin:.2em 0 .1em}h2{font-size:1.2em;margin:1.8em 0 .5em;
border-bottom:2px solid #e3e6eb;padding-bottom:.2em}h3{font-size:1em;margin:1.2em 0 .3em}
.sub{color:#5b6475;margin:0 0 1em}.cards{display:flex;flex-wrap:wrap;gap:10px;margin:1em 0}
.card{background:#f7f8fa;border:1px solid #e3e6eb;border-radius:6px;padding:8px 12px;
min-width:130px}.card b{display:block;font-size:1.15em}.card span{color:#5b6475;font-size:.8em}
.verdict{border-radius:6px;padding:10px 14px;margin:1em 0;border-left:5px solid}
.rhythm{background:#eaf6ec;border-color:#2e8b3e}.none{background:#fdf3e7;border-color:#d9822b}
.unknown{background:#eef1f5;border-color:#8a94a6}
figure{margin:1em 0}.figs{display:grid;grid-template-columns:1fr 1fr;gap:0 18px}
.params{display:flex;flex-wrap:wrap;gap:0 24px;align-items:flex-start}
figure img{max-width:100%;height:auto;border:1px solid #e3e6eb}
figcaption{color:#5b6475;font-size:.88em;margin-top:.3em}
table{border-collapse:collapse;font-size:.86em;margin:.6em 0}
th,td{border-bottom:1px solid #e3e6eb;padding:3px 9px;text-align:left}
th{background:#f1f3f6}tr:nth-child(even) td{background:#fafbfc}
td.num{text-align:right;font-variant-numeric:tabular-nums}
pre{background:#f7f8fa;border:1px solid #e3e6eb;padding:10px;overflow-x:auto;font-size:.85em}
details{margin:.6em 0}summary{cursor:pointer;color:#33507a}code{font-size:.9em}
"""


def file_kind(path: str) -> str:
    """One of :data:`REPORT_KINDS`; ValueError (one line) for a missing or unreadable file or
    one of another kind."""
    return _file_kind(
        resolve(path),
        REPORT_KINDS,
        missing="give a run (directory or run.h5), simulate, grid or sweep file",
    )




# ---------------------------------------------------------------- HTML pieces
def esc(value) -> str:
    return html.escape(str(value))


def fmt(v, digits: int = 4) -> str:
    """A value for a table: numbers to ``digits`` significant digits, NaN as "n/a"."""
    if v is None:
        return "none"
    if isinstance(v, bool | np.bool_):
        return str(bool(v))
    if isinstance(v, float | np.floating):
        return "n/a" if not np.isfinite(v) else f"{float(v):.{digits}g}"
    if isinstance(v, bytes):
        return v.decode(errors="replace")
    return str(v)


def table(rows: list[dict], numeric: tuple = ()) -> str:
    """An HTML table of ``rows`` (dicts with the same keys); ``numeric`` columns right-aligned."""
    if not rows:
        return "<p>(empty)</p>"
    keys = list(rows[0])
    head = "".join(f"<th>{esc(k)}</th>" for k in keys)
    body = "".join(
        "<tr>" + "".join(
            f"<td class='num'>{esc(fmt(r[k]))}</td>" if k in numeric else
            f"<td>{esc(fmt(r[k]))}</td>" for k in keys) + "</tr>"
        for r in rows
    )  # fmt: skip
    return f"<table><tr>{head}</tr>{body}</table>"


def cards(items: list[tuple[str, str]]) -> str:
    """Key numbers as small cards: ``[(value, what), ...]``."""
    inner = "".join(f"<div class='card'><b>{esc(v)}</b><span>{esc(w)}</span></div>"
                    for v, w in items)  # fmt: skip
    return f"<div class='cards'>{inner}</div>"


def figure(fig, alt: str, caption: str = "") -> str:
    """``fig`` embedded as a PNG ``data:`` URI, with its caption."""
    data = base64.b64encode(F.png_bytes(fig)).decode("ascii")
    cap = f"<figcaption>{esc(caption)}</figcaption>" if caption else ""
    return f"<figure><img src='data:image/png;base64,{data}' alt='{esc(alt)}'>{cap}</figure>"


def verdict_box(v, frequency_Hz=None, what: str = "") -> str:
    """The gamma verdict in a coloured box: green rhythm, orange none, grey no verdict."""
    from ei_sim.sim.spectrum import gamma_text

    if v is None:
        return (
            "<div class='verdict unknown'><b>Gamma verdict: no verdict stored</b> (this "
            "file was written before ei-sim tested its peaks against surrogates)</div>"
        )
    css = "rhythm" if v.rhythmic else "none" if v.verdict == "no rhythm" else "unknown"
    f = frequency_Hz if frequency_Hz is not None else v.frequency_Hz
    head = f"Gamma {what}: {esc(gamma_text(f, v, why=False))}"
    return (
        f"<div class='verdict {css}'><b>{head}</b><br>{esc(v.reason)}. "
        "Surrogates: each cell's spike train rotated by its own random offset (rates and "
        "spike patterns kept, alignment between cells destroyed); "
        "<a href='#about-verdict'>how the verdict is made</a>.</div>"
    )


ABOUT_VERDICT = (
    "<h2 id='about-verdict'>How the gamma verdict is made</h2><p>The peak is the reference "
    "lab's arg-max of the E population's spectrum in 5-150 Hz (one Hann segment per trial; the "
    "bin width, 1 / trial length, is the resolution). It is called a <b>rhythm</b> when (1) "
    "its excess over 99 surrogates, in which every cell's spike train is circularly shifted by "
    "its own random offset, beats all but 4 of the surrogates' largest excess anywhere in the "
    "band (p &le; 0.05); (2) the coordinated power within &plusmn;2 bins amounts to a "
    "modulation of the population rate of at least 50 % of its mean; (3) the coordination "
    "peaks there: at least twice its floor below (down to f*/3) and above (up to 2 f*). "
    "Asynchronous networks fail (2), broadband shared input fails (3), independent cells fail "
    "(1). See docs/gamma.md.</p>"
)


def unit_of(key: str) -> str:
    """The unit of an attribute, from :data:`UNITS` or its name's suffix ("" when none)."""
    if key in UNITS:
        return UNITS[key]
    for suffix, unit in UNIT_SUFFIXES:
        if key.endswith(suffix):
            return unit
    return ""


def parameter_rows(attrs: dict, prefixes: tuple) -> list[dict]:
    """``parameter / value / unit`` rows of the attributes starting with ``prefixes``."""
    return [{"parameter": k, "value": attrs[k], "unit": unit_of(k)}
            for k in sorted(attrs) if k.startswith(prefixes)]  # fmt: skip


def parameters_section(attrs: dict, prefixes: tuple, title: str = "Parameters") -> str:
    rows = parameter_rows(attrs, prefixes)
    prov = [{"provenance": k.removeprefix("provenance."), "value": attrs[k]}
            for k in sorted(attrs) if k.startswith("provenance.")]  # fmt: skip
    file_rows = [{"attribute": k, "value": attrs[k]} for k in sorted(attrs)
                 if not k.startswith((*prefixes, "provenance."))]  # fmt: skip
    out = f"<h2>{esc(title)}</h2>"
    if len(rows) > 24:  # two tables side by side
        half = -(-len(rows) // 2)
        out += (f"<div class='params'>{table(rows[:half], ('value',))}"
                f"{table(rows[half:], ('value',))}</div>")  # fmt: skip
    else:
        out += table(rows, ("value",)) if rows else "<p>(none stored)</p>"
    out += "<h3>Provenance</h3>" + (table(prov) if prov else "<p>(none stored)</p>")
    if file_rows:
        out += f"<details><summary>Other attributes ({len(file_rows)})</summary>"
        out += table(file_rows) + "</details>"
    return out


def page(title: str, subtitle: str, body: str) -> str:
    """The whole page (its ``<title>`` first, so that ei-sim recognises its own reports)."""
    return (f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>ei-sim report: "
            f"{esc(title)}</title><meta name='viewport' content='width=device-width'>"
            f"<style>{STYLE}</style></head><body><main><h1>{esc(title)}</h1>"
            f"<p class='sub'>{esc(subtitle)}</p>{body}</main></body></html>")  # fmt: skip


# ---------------------------------------------------------------- shared figures
def thinning(n_cells: int) -> tuple[int, int]:
    """``(step, shown)``: a raster of ``n_cells`` draws every ``step``-th cell, ``shown`` in
    all, at most :data:`RASTER_CELLS`."""
    step = max(1, int(np.ceil(n_cells / RASTER_CELLS)))
    return step, -(-n_cells // step)


def thinning_text(n_cells: int) -> str:
    step, shown = thinning(n_cells)
    return f"all {n_cells} cells" if step == 1 else f"{shown} of {n_cells} cells (one in {step})"


def raster_figure(panels: list[tuple], t_ms_range: tuple, title: str = ""):
    """Rasters of several populations stacked: ``panels`` = ``[(name, times_ms, cells,
    n_cells, colour)]``. At most :data:`RASTER_CELLS` cells per population are drawn (every
    k-th), with ticks sized to the rows, so large populations stay readable."""
    plt = F.pyplot()
    heights = [max(1.0, min(3.0, p[3] / 150)) for p in panels]
    fig, axes = plt.subplots(len(panels), 1, figsize=(11, 1.3 + 1.6 * sum(heights)),
                             sharex=True, gridspec_kw={"height_ratios": heights},
                             constrained_layout=True, squeeze=False)  # fmt: skip
    for ax, (name, times_ms, cells, n_cells, colour) in zip(axes[:, 0], panels, strict=True):
        step, shown = thinning(n_cells)
        keep = cells % step == 0
        rows = cells[keep] // step
        size = float(np.clip(250.0 / max(shown, 1), 0.8, 6.0))
        alpha = float(np.clip(4000.0 / max(int(keep.sum()), 1), 0.25, 1.0))
        ax.plot(times_ms[keep], rows, ls="", marker="|", ms=size, mew=0.8, color=colour,
                alpha=alpha)  # fmt: skip
        which = thinning_text(n_cells)
        ylabel = f"{name} cell" + ("" if step == 1 else f" / {step}")
        ax.set(ylim=(-0.5, shown - 0.5), ylabel=ylabel)
        ax.set_title(f"{name}: {which}", fontsize=9, loc="left")
    axes[-1, 0].set(xlabel="time (ms)", xlim=t_ms_range)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def spectrum_figure(spectra, verdict, lab_peak=None, title="E population spectrum"):
    """The observed E spectrum beside its surrogates (mean and 5-95 % range), the tested peak
    marked, and the coordination ratio N(f) = P / mean surrogate below."""
    plt = F.pyplot()
    from ei_sim.sim.spectrum import F_HI_HZ, F_LO_HZ, gamma_text

    f, p = spectra.freqs, spectra.observed
    keep = (f > 0) & (f <= 200)
    tested = len(spectra.surrogates) > 0
    if tested:
        fig, (ax, bx) = plt.subplots(2, 1, figsize=(8.5, 5.6), sharex=True,
                                     gridspec_kw={"height_ratios": [2, 1]},
                                     constrained_layout=True)  # fmt: skip
    else:
        fig, ax = plt.subplots(figsize=(8.5, 3.8), constrained_layout=True)
        bx = None
    ax.axvspan(F_LO_HZ, F_HI_HZ, color="#f1f3f6", zorder=0, label="band 5-150 Hz")
    if len(spectra.surrogates):
        lo, hi = np.percentile(spectra.surrogates, [5, 95], axis=0)
        mean = spectra.surrogates.mean(axis=0)
        ax.fill_between(
            f[keep],
            lo[keep],
            hi[keep],
            color="grey",
            alpha=0.3,
            lw=0,
            label=f"{len(spectra.surrogates)} shifted surrogates, 5-95 %",
        )
        ax.plot(f[keep], mean[keep], color="grey", lw=1, label="surrogate mean")
        with np.errstate(divide="ignore", invalid="ignore"):
            bx.plot(f[keep], p[keep] / mean[keep], color="tab:blue", lw=1.2)
        bx.axhline(1.0, color="grey", lw=0.8, ls="--")
    positive = p[keep] > 0
    if positive.any():
        ax.semilogy(f[keep][positive], p[keep][positive], color="tab:blue", lw=1.4,
                    label="observed")  # fmt: skip
    if verdict is not None and verdict.frequency_Hz is not None:
        colour = "tab:green" if verdict.rhythmic else "tab:orange"
        for a in (ax, bx) if bx is not None else (ax,):
            a.axvline(verdict.frequency_Hz, color=colour, ls="--", lw=1.2)
        text = gamma_text(verdict.frequency_Hz, verdict, why=False)
        if np.isfinite(verdict.p_value):
            peak = ("at the low edge" if not np.isfinite(verdict.prominence)
                    else f"{fmt(verdict.prominence, 3)} x floor")  # fmt: skip
            text += (f"\np = {fmt(verdict.p_value, 2)}, modulation {fmt(100 * verdict.depth, 3)} "
                     f"%, peak {peak}")  # fmt: skip
        ax.text(0.99, 0.97, text, transform=ax.transAxes, ha="right", va="top", fontsize=8,
                bbox={"fc": "white", "ec": colour})  # fmt: skip
    ax.set(ylabel="PSD ((spikes / cell / step)$^2$ / Hz)", title=title, xlim=(0, 200))
    ax.legend(fontsize=7, loc="lower left")
    if bx is None:
        ax.set(xlabel="frequency (Hz)")
        return fig
    bx.set(xlabel="frequency (Hz)", ylabel="N(f) = observed / surrogates", xlim=(0, 200))
    bx.set_ylim(bottom=0)
    return fig


# ---------------------------------------------------------------- simulate
def _simulate_data(path: str) -> dict:
    from ei_sim.store.attrs import read_attrs
    from ei_sim.store.checksum import ATTR as CHECKSUM
    from ei_sim.store.checksum import ensure_sound
    from ei_sim.store.kinds import open_kind

    with open_kind(path, "simulate") as fh:
        ensure_sound(fh, path)  # a simulate file that fails its checksum: one line
        attrs = {k: v for k, v in read_attrs(fh).items() if k != CHECKSUM}
        missing = [g for g in ("spikes/e", "population/e") if g not in fh]
        if missing or "model.config.dt_ms" not in attrs:
            raise ValueError(f"{path} lacks {', '.join(missing) or 'model.config.dt_ms'}; "
                             "is it a file of ei-sim simulate --out?")  # fmt: skip
        dt = float(attrs["model.config.dt_ms"])
        pops = {}
        for pop in ("e", "i"):
            if f"spikes/{pop}" not in fh:
                continue
            g = fh[f"spikes/{pop}"]
            step = (g["step"][()] if "step" in g
                    else np.rint(g["time_ms"][()] / dt).astype(np.int64))  # fmt: skip
            act = fh[f"population/{pop}"] if f"population/{pop}" in fh else None
            pops[pop] = {
                "step": np.asarray(step, np.int64),
                "trial": g["trial"][()],
                "cell": g["index"][()],
                "n_cells": int(g.attrs["n_cells"]),
                "n_trials": int(g.attrs["n_trials"]),
                "activity": None if act is None else act[()],
                "bin_steps": 1 if act is None else int(act.attrs.get("bin_steps", 1)),
            }
        traces = []
        if "traces" in fh:
            order = {"v_mV": 0, "g_exc_uS": 1, "g_inh_uS": 2}
            for pop in fh["traces"]:
                for var in sorted(fh["traces"][pop], key=lambda v: (order.get(v, 9), v)):
                    g = fh[f"traces/{pop}/{var}"]
                    values = g["values"]
                    traces.append(
                        {
                            "pop": pop,
                            "var": var,
                            "cells": g["cells"][()],
                            "values": values[:, 0, :MAX_TRACE_CELLS],
                            "every_ms": float(values.attrs.get("every_ms", dt)),
                        }
                    )
    e = pops["e"]
    n_steps = int(attrs.get("steps_done", attrs.get("n_steps", 0)) or 0)
    if not n_steps:
        n_steps = e["activity"].shape[0] * e["bin_steps"]
    return {"attrs": attrs, "dt_ms": dt, "pops": pops, "traces": traces, "n_steps": n_steps}


def _simulate_gamma(data: dict):
    """The lab's peak of the E activity (as ``simulate`` measured it) and the verdict with its
    spectra (computed from the spikes, whatever the file stores)."""
    from ei_sim.sim.monitors import SpikeEvents
    from ei_sim.sim.run import VerdictWindow, gamma_of_run
    from ei_sim.sim.spectrum import decide

    e, dt = data["pops"]["e"], data["dt_ms"]
    bin_ms = e["bin_steps"] * dt
    activity = np.asarray(e["activity"], float)
    peak = gamma_of_run(activity, bin_ms, 0.0) if activity.shape[0] >= 8 else None
    window = VerdictWindow(data["n_steps"], e["bin_steps"], 0.0, dt)
    window.add(SpikeEvents(e["step"], e["trial"], e["cell"]))
    spectra = window.spectra(e["n_trials"], e["n_cells"])
    return peak, spectra, None if spectra is None else decide(spectra)


def _rates_figure(data: dict):
    from scipy.ndimage import gaussian_filter1d

    plt = F.pyplot()
    fig, ax = plt.subplots(figsize=(11, 2.8), constrained_layout=True)
    dt = data["dt_ms"]
    for pop, colour in (("e", "tab:blue"), ("i", "tab:red")):
        p = data["pops"].get(pop)
        if p is None or p["activity"] is None:
            continue
        bin_ms = p["bin_steps"] * dt
        rate = np.asarray(p["activity"][:, 0], float) * 1000.0 / dt  # spikes / cell / s
        sigma = max(SMOOTH_MS / bin_ms, 0.0)
        shown = gaussian_filter1d(rate, sigma, mode="nearest") if sigma >= 0.5 else rate
        ax.plot(np.arange(rate.size) * bin_ms, shown, color=colour, lw=1,
                label=f"{pop.upper()} (mean {rate.mean():.2f} Hz)")  # fmt: skip
    ax.set(
        xlabel="time (ms)",
        ylabel="population rate (Hz)",
        title=f"population rates, trial 0 (Gaussian smoothing {SMOOTH_MS:g} ms)",
    )
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=8, loc="upper right")
    return fig


TRACE_LABELS = {"v_mV": "membrane potential V (mV)", "g_exc_uS": "excitatory conductance (uS)",
                "g_inh_uS": "inhibitory conductance (uS)"}  # fmt: skip


def _traces_figure(traces: list[dict], n_steps: int, dt_ms: float):
    plt = F.pyplot()
    fig, axes = plt.subplots(len(traces), 1, figsize=(11, 2.3 * len(traces)), sharex=True,
                             constrained_layout=True, squeeze=False)  # fmt: skip
    for ax, tr in zip(axes[:, 0], traces, strict=True):
        t = np.arange(tr["values"].shape[0]) * tr["every_ms"]
        n_total = len(tr["cells"])
        for k in range(tr["values"].shape[1]):
            ax.plot(t, tr["values"][:, k], lw=0.9,
                    label=f"{tr['pop'].upper()} cell {int(tr['cells'][k])}")  # fmt: skip
        shown = "" if n_total <= MAX_TRACE_CELLS else f" (first {MAX_TRACE_CELLS} of {n_total})"
        ax.set(ylabel=TRACE_LABELS.get(tr["var"], tr["var"]).split(" (")[-1].rstrip(")"))
        ax.set_title(f"{tr['pop'].upper()}: {TRACE_LABELS.get(tr['var'], tr['var'])}, "
                     f"trial 0{shown}", fontsize=9, loc="left")  # fmt: skip
        ax.legend(fontsize=7, loc="upper right", ncol=4)
    axes[-1, 0].set(xlabel="time (ms)", xlim=(0, n_steps * dt_ms))
    return fig


def simulate_body(path: str, log) -> str:
    data = _simulate_data(path)
    attrs, dt = data["attrs"], data["dt_ms"]
    log("computing the spectrum and its surrogates ...")
    peak, spectra, verdict = _simulate_gamma(data)
    e = data["pops"]["e"]
    t_ms = data["n_steps"] * dt
    seconds = t_ms * 1e-3
    rates = {p: len(v["step"]) / v["n_cells"] / v["n_trials"] / seconds
             for p, v in data["pops"].items()}  # fmt: skip
    body = cards([
        (attrs.get("model.name", "?"), "model"),
        (f"{t_ms:g} ms x {e['n_trials']}", "trial length x trials"),
        (f"{rates.get('e', float('nan')):.2f} Hz", f"E rate ({e['n_cells']} cells)"),
        (f"{rates.get('i', float('nan')):.2f} Hz",
         f"I rate ({data['pops'].get('i', {}).get('n_cells', 0)} cells)"),
        ("none" if peak is None else f"{peak.frequency_Hz:.1f} Hz", "gamma peak (lab's arg-max)"),
        ("n/a" if verdict is None else f"{verdict.resolution_Hz:.3g} Hz", "frequency resolution"),
        ("n/a" if peak is None else f"{peak.significance:.3g} x", "peak / band median (lab)"),
    ])  # fmt: skip
    body += verdict_box(verdict, None if peak is None else peak.frequency_Hz, "peak")
    panels = []
    for pop, colour in (("e", "tab:blue"), ("i", "tab:red")):
        p = data["pops"].get(pop)
        if p is not None:
            mine = p["trial"] == 0
            panels.append((pop.upper(), p["step"][mine] * dt, p["cell"][mine], p["n_cells"],
                           colour))  # fmt: skip
    shown = "; ".join(f"{name}: {thinning_text(n)}" for name, _, _, n, _ in panels)
    body += "<h2>Spikes</h2>" + figure(
        raster_figure(panels, (0, t_ms)),
        "E and I rasters",
        f"Trial 0; {shown}. Large populations are thinned to evenly spaced cells so that "
        "single spikes stay visible.",
    )
    body += figure(
        _rates_figure(data),
        "population rates",
        "Fraction of each population spiking per second (Hz per cell), trial 0.",
    )
    if data["traces"]:
        body += "<h2>Recorded traces</h2>" + figure(
            _traces_figure(data["traces"], data["n_steps"], dt),
            "traces",
            "Every trace the file holds (--record-v, --record-g), trial 0.",
        )
    else:
        body += (
            "<h2>Recorded traces</h2><p>None in this file (record some with "
            "<code>ei-sim simulate --record-v CELLS --record-g CELLS</code>).</p>"
        )
    if spectra is not None:
        body += "<h2>Gamma</h2>" + figure(
            spectrum_figure(spectra, verdict),
            "E spectrum",
            "Observed spectrum of the E population activity (blue) against 99 surrogates "
            "(grey); dashed line: the tested peak. Below: the coordination ratio N(f).",
        )
    body += ABOUT_VERDICT
    body += parameters_section(attrs, ("model.",), "Parameters (model)")
    return body


# ---------------------------------------------------------------- run
def _run_data(path: str) -> dict:
    from ei_sim.store.run import load_run

    attrs, metrics, _, _, _ = load_run(path)
    return {"attrs": attrs, "metrics": {k: np.asarray(v, float) for k, v in metrics.items()}}


def _learning_figure(m: dict):
    plt = F.pyplot()
    epochs = np.arange(1, len(m["test_accuracy"]) + 1)
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(11, 3.6), constrained_layout=True)
    ax.plot(epochs, m["train_loss"], "o-", label="loss")
    ax.plot(epochs, m["train_cross_entropy"], "s--", ms=4, label="cross-entropy")
    ax.set(xlabel="epoch", ylabel="training loss", title="loss")
    bx.plot(epochs, 100 * m["train_accuracy"], "o-", label="train")
    bx.plot(epochs, 100 * m["test_accuracy"], "s-", label="test")
    bx.axhline(10, color="grey", ls="--", lw=0.8, label="chance 10 %")
    bx.set(xlabel="epoch", ylabel="accuracy (%)", ylim=(0, 100), title="accuracy")
    for a in (ax, bx):
        a.grid(alpha=0.3)
        a.legend(fontsize=8)
        a.set_xticks(epochs if len(epochs) <= 20 else a.get_xticks())
    return fig


def _rates_gamma_figure(m: dict, resolution_Hz: float):
    plt = F.pyplot()
    epochs = np.arange(1, len(m["test_accuracy"]) + 1)
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(11, 3.6), constrained_layout=True)
    ax.plot(epochs, m["test_rate_e_Hz"], "o-", color="tab:blue", label="E, test set")
    ax.plot(epochs, m["test_rate_i_Hz"], "s-", color="tab:red", label="I, test set")
    ax.plot(epochs, m["ref_rate_e_Hz"], "o:", color="tab:blue", alpha=0.6, label="E, ref. trial")
    ax.plot(epochs, m["ref_rate_i_Hz"], "s:", color="tab:red", alpha=0.6, label="I, ref. trial")
    ax.set(xlabel="epoch", ylabel="rate (Hz)", title="rates per epoch")
    ax.set_ylim(bottom=0)
    bx.plot(epochs, m["gamma_peak_Hz"], "-", color="grey", lw=1,
            label=f"test-set peak ({resolution_Hz:.3g} Hz bins)")  # fmt: skip
    rhythmic = m.get("gamma_rhythmic", np.full(epochs.size, np.nan))
    ref = m.get("ref_gamma_peak_Hz", np.full(epochs.size, np.nan))
    styles = ((rhythmic == 1.0, "o", "tab:green", "reference trial: rhythm"),
              (rhythmic == 0.0, "o", "none", "reference trial: no rhythm"))  # fmt: skip
    for mask, marker, face, label in styles:
        if mask.any():
            bx.plot(
                epochs[mask],
                ref[mask],
                ls="",
                marker=marker,
                ms=8,
                mfc=face,
                mec="tab:green" if face != "none" else "tab:orange",
                mew=1.5,
                label=label,
            )
    none = ~np.isfinite(rhythmic)
    if none.any():
        bx.plot(epochs[none], m["gamma_peak_Hz"][none], ls="", marker="x", color="grey",
                label="no verdict stored")  # fmt: skip
    bx.set(xlabel="epoch", ylabel="gamma peak (Hz)", title="gamma per epoch", ylim=(0, 155))
    for a in (ax, bx):
        a.grid(alpha=0.3)
        a.legend(fontsize=7)
        a.set_xticks(epochs if len(epochs) <= 20 else a.get_xticks())
    return fig


def _reference_trial(path: str, attrs: dict, log):
    """``(spikes_e, spikes_i, dt_ms, drop_ms, where)`` of the reference trial: the stored
    snapshot of the best epoch (or the last stored), else simulated under the best weights."""
    import h5py

    from ei_sim.store.snapshot import SNAPSHOT_GROUP, read_snapshots

    dt = float(attrs["model.config.dt_ms"])
    best = int(attrs.get("best_epoch", 0))
    with h5py.File(path, "r") as fh:
        has = SNAPSHOT_GROUP in fh and len(fh[SNAPSHOT_GROUP]) > 0
    if has:
        snaps = read_snapshots(path)
        snap = next((s for s in snaps if s.epoch == best), snaps[-1])
        return (snap.spikes_e, snap.spikes_i, snap.dt_ms, snap.drop_ms,
                f"the stored snapshot of epoch {snap.epoch}")  # fmt: skip
    from ei_sim.training.evaluate import reference_trial
    from ei_sim.training.stored import load_stored

    log("simulating the reference trial under the best weights (compiles on first use) ...")
    model, split, weights, _ = load_stored(path, "best")
    drop = float(attrs.get("train.ref_drop_ms", 20.0))
    ref = reference_trial(weights, model, split.x_test[0], int(attrs["train.seed"]), drop)
    return (ref.spikes_e, ref.spikes_i, dt, drop,
            f"simulated now under the best weights (epoch {best})")  # fmt: skip


def run_body(path: str, log) -> str:
    from ei_sim.sim.spectrum import (
        gamma_verdict_raster,
        surrogate_spectra,
        verdict_line,
        verdict_word,
    )

    data = _run_data(path)
    attrs, m = data["attrs"], data["metrics"]
    n = len(m["test_accuracy"])
    if n == 0:
        raise ValueError(f"{path} holds no completed epoch yet; report it after the first")
    b = int(np.nanargmax(m["test_accuracy"]))
    t_ms = float(attrs.get("model.config.t_ms", np.nan))
    resolution = 1000.0 / t_ms if np.isfinite(t_ms) else float("nan")
    nan = np.full(n, np.nan)
    words = [verdict_word(m.get("gamma_rhythmic", nan)[k], m.get("gamma_p_value", nan)[k],
                          m.get("ref_gamma_peak_Hz", nan)[k]) for k in range(n)]  # fmt: skip
    verdict_best = words[b]
    body = cards([
        (attrs.get("model.name", "?"), f"model ({attrs.get('model.setting', 'canonical')})"),
        (f"{100 * m['test_accuracy'][b]:.2f} %", f"best test accuracy (epoch {b + 1})"),
        (f"{n}", f"epochs done ({attrs.get('status', '?')})"),
        (f"{m['test_rate_e_Hz'][b]:.2f} / {m['test_rate_i_Hz'][b]:.2f} Hz",
         "E / I rate at the best epoch"),
        (fmt(m["gamma_peak_Hz"][b], 3) + " Hz", f"gamma peak, test set ({resolution:.3g} Hz bins)"),
        (verdict_best, "reference trial's verdict, best epoch"),
    ])  # fmt: skip
    body += "<h2>Learning</h2>" + figure(
        _learning_figure(m), "learning curves", "Training loss and accuracy per epoch (%)."
    )
    body += "<h2>Rates and gamma per epoch</h2>" + figure(
        _rates_gamma_figure(m, resolution),
        "rates and gamma",
        "Left: mean rates on the test set (solid) and in the reference trial (dotted). Right: "
        "the gamma peak of the test set (grey line) and the reference trial's peak with its "
        "surrogate verdict (filled green: rhythm; open orange: no rhythm; x: no verdict stored)",
    )
    try:
        s_e, s_i, dt, drop, where = _reference_trial(path, attrs, log)
    except (ValueError, OSError, KeyError) as err:
        body += f"<h2>Reference trial</h2><p>Not available: {esc(err)}</p>"
    else:
        t = np.arange(s_e.shape[0]) * dt + drop
        panels = [(name, t[steps], cells, spikes.shape[1], colour)
                  for name, spikes, colour in (("E", s_e, "tab:blue"), ("I", s_i, "tab:red"))
                  for steps, cells in [np.nonzero(spikes)]]  # fmt: skip
        v = gamma_verdict_raster(s_e, dt)
        body += "<h2>Reference trial</h2>" + verdict_box(v, what="of the reference trial")
        body += figure(
            raster_figure(panels, (drop, drop + s_e.shape[0] * dt)),
            "reference trial rasters",
            f"Test sample 0 under a fixed seed, first {drop:g} ms dropped: {where}.",
        )
        steps, cells = np.nonzero(s_e)
        spectra = surrogate_spectra(steps, np.zeros_like(steps), cells, s_e.shape[0], 1,
                                    s_e.shape[1], dt)  # fmt: skip
        body += figure(
            spectrum_figure(spectra, v, title="reference trial: E spectrum"),
            "reference trial spectrum",
            f"Verdict: {verdict_line(v)}.",
        )
    rows = []
    for k in range(n):
        rows.append({"epoch": k + 1, "loss": m["train_loss"][k],
                     "train acc (%)": 100 * m["train_accuracy"][k],
                     "test acc (%)": 100 * m["test_accuracy"][k],
                     "E (Hz)": m["test_rate_e_Hz"][k], "I (Hz)": m["test_rate_i_Hz"][k],
                     "gamma (Hz)": m["gamma_peak_Hz"][k],
                     "ref. verdict": words[k],
                     "ref. peak (Hz)": m.get("ref_gamma_peak_Hz", np.full(n, np.nan))[k],
                     "wall (s)": m["epoch_wall_s"][k]})  # fmt: skip
    body += "<h2>Metrics per epoch</h2>" + table(
        rows, ("epoch", "loss", "train acc (%)", "test acc (%)", "E (Hz)", "I (Hz)",
               "gamma (Hz)", "ref. peak (Hz)", "wall (s)"))  # fmt: skip
    body += ABOUT_VERDICT
    body += parameters_section(attrs, ("model.", "train."), "Parameters (model and training)")
    return body


# ---------------------------------------------------------------- grid
def grid_body(path: str, log) -> str:
    from ei_sim.analysis.sweep_plots import cell_verdict, grid_heatmap_figures
    from ei_sim.store.attrs import read_attrs
    from ei_sim.store.kinds import open_kind
    from ei_sim.sweeps.store import read_cells, unfinished_cells

    cells = read_cells(path)
    with open_kind(path, "grid") as fh:
        attrs = read_attrs(fh)
    pending = unfinished_cells(path)
    if not cells:
        body = cards([("0", "cells finished"), (f"{len(pending)}", "cells to train")])
        body += unfinished_section(pending)
        return body + parameters_section(attrs, ("grid.",), "Grid settings")
    result = basins.analyze_grid(basins.read_grid(path))
    t = result["table"]
    acc = 100 * t["best_accuracy"]
    by_name = {c["name"]: cell_verdict(c) for c in cells}
    stored = np.array([by_name[name] != "no verdict stored" for name in t["name"]])
    n_all = len({c["name"] for c in cells} | {c["name"] for c in pending})
    body = cards([
        (f"{n_all - len(pending)} of {n_all}" if pending else f"{len(cells)}",
         "cells finished" if pending else "cells"),
        (f"{len(set(t['w_ei']))} x {len(set(t['w_ie']))}", "W_EI x W_IE values"),
        (f"{np.nanmin(acc):.1f}-{np.nanmax(acc):.1f} %", "best accuracy range"),
        (", ".join(f"{s['label']} {s['n']}" for s in result["summary"]), "basins"),
        (f"{sum(v == 'rhythm' for v in by_name.values())} of {int(stored.sum())}"
         if stored.any()
         else "no verdict stored", "cells with a gamma rhythm"),
    ])  # fmt: skip
    figs = grid_heatmap_figures(cells)
    body += "<h2>Basins</h2>" + figure(
        basins.grid_map_figure(result),
        "basin map",
        "Label of each cell (one stripe per seed); the number is the mean best accuracy. "
        "Rule: " + basins.label_rule(result["thresholds"]["i_active_Hz"]) + ".",
    )
    body += "<h2>Heatmaps</h2><div class='figs'>"
    captions = {
        "best_accuracy": "Colours on a fixed 0-100 % scale: cells that differ by a point look "
                         "alike because they are alike; each cell's number is written in it.",
        "rate_e_Hz": "Both rate maps share one scale from 0 Hz to the largest rate.",
        "rate_i_Hz": "I rate on the same scale; 0.00: the I cells stayed silent.",
        "gamma": "Coloured where the reference trial's peak passes the surrogate test; grey: "
                 "no rhythm, or no verdict stored.",
    }  # fmt: skip
    for name, fig in figs.items():
        body += figure(fig, name, captions.get(name, ""))
    body += "</div>" + figure(
        basins.rate_accuracy_figure(result),
        "E rate vs accuracy",
        "Each cell one marker (shape: label; colour: I rate); x2 etc.: cells on the same point.",
    )
    body += figure(
        basins.trajectory_figure(_finished_histories(path, result), pending),
        "cells over their epochs",
        "Each cell's test-set E and I rates epoch by epoch, coloured by its label at the end; "
        "a cell whose I rate is still falling through the rule's threshold is a basin "
        "forming. Dashed: cells still training (from their run files).",
    )
    rows = [{"cell": t["name"][k], "W_EI (uS)": t["w_ei"][k], "W_IE (uS)": t["w_ie"][k],
             "seed": int(t["seed"][k]), "best acc (%)": acc[k], "E (Hz)": t["rate_e_Hz"][k],
             "I (Hz)": t["rate_i_Hz"][k], "gamma (Hz)": t["gamma_peak_Hz"][k],
             "verdict": by_name[t["name"][k]],
             "label": result["labels"][k]} for k in range(len(t["name"]))]  # fmt: skip
    body += "<h2>Cells</h2>" + table(
        rows, ("W_EI (uS)", "W_IE (uS)", "seed", "best acc (%)", "E (Hz)", "I (Hz)",
               "gamma (Hz)"))  # fmt: skip
    ari = result["check"]["ari"]
    check = (
        "not made: it needs at least two labels, and twice as many cells as labels"
        if ari is None
        else f"a Gaussian mixture on (E rate, I rate, accuracy) agrees with the labels with "
        f"adjusted Rand index {esc(fmt(ari, 3))} (1: the same partition; 0: chance)"
    )
    body += (
        f"<p>Unsupervised check: {check}.</p><pre>{esc(basins.format_basins(result))}</pre>"
    )
    body += unfinished_section(pending)
    body += ABOUT_VERDICT
    body += parameters_section(attrs, ("grid.",), "Grid settings")
    return body


def _finished_histories(path: str, result: dict) -> list[dict]:
    """Per finished cell of a grid store: ``name``, ``label`` (from ``result``, the basins'
    analysis) and its per-epoch test rates ``e_history``, ``i_history``."""
    from ei_sim.sweeps.store import read_grid

    labels = dict(zip(result["table"]["name"], result["labels"], strict=True))
    out = []
    for cell in read_grid(path)["cells"]:
        m = cell["metrics"]
        out.append({"name": cell["name"], "label": labels.get(cell["name"]),
                    "e_history": m.get("test_rate_e_Hz", np.zeros(0)),
                    "i_history": m.get("test_rate_i_Hz", np.zeros(0))})  # fmt: skip
    return out


def unfinished_section(pending: list[dict]) -> str:
    """The cells the grid names but does not hold yet, with how far each run has got (read
    from the cells' run files when the report is made); "" when every cell is finished."""
    if not pending:
        return ""
    rows = []
    for c in pending:
        of = f" of {c['epochs']}" if c["epochs"] else ""
        rows.append({"cell": c["name"], "W_EI (uS)": c["w_ei"], "W_IE (uS)": c["w_ie"],
                     "seed": c["seed"],
                     "epochs": f"{c['epochs_done']}{of}" if c["epochs_done"] else "not started",
                     "best acc so far (%)": 100 * c["best_accuracy"],
                     "E, last epoch (Hz)": c["rate_e_Hz"],
                     "I, last epoch (Hz)": c["rate_i_Hz"]})  # fmt: skip
    started = sum(c["epochs_done"] > 0 for c in pending)
    return (
        f"<h2>Cells not finished</h2><p>{len(pending)} cells of this grid are not in the store "
        f"yet, or are being continued to more epochs; {started} of them "
        f"{'has' if started == 1 else 'have'} stored epochs "
        "in their run files (read when this report was made; the figures and tables above "
        "hold the cells in the store, as stored).</p>"
        + table(rows, ("W_EI (uS)", "W_IE (uS)", "seed", "best acc so far (%)",
                       "E, last epoch (Hz)", "I, last epoch (Hz)"))  # fmt: skip
    )


# ---------------------------------------------------------------- sweeps
def sweep_body(path: str, log) -> str:
    from ei_sim.analysis.sweep_plots import TARGET_NAMES, sweep_figure
    from ei_sim.store.attrs import read_attrs
    from ei_sim.store.kinds import open_kind

    result = cliff.analyze_sweep(path)
    with open_kind(path, cliff.SWEEP_KINDS) as fh:
        attrs = read_attrs(fh)
    target = result["coupling_target"]
    located = [cl for cl in result["cliffs"] if cl.status == "ok"]
    body = cards([
        ("W_in only" if target == "none" else TARGET_NAMES.get(target, target),
         "coupling scaled"),
        (f"{len(result['scales'])} x {len(result['coupling_scales'])}",
         "W_in scales x coupling scales"),
        (f"{result['threshold_Hz']:g} Hz", "I-rate threshold of the cliff"),
        (", ".join(f"{cl.f_star:.3g}" for cl in located) or "none", "cliff f* (W_in scale)"),
        ("not defined" if result["alpha"] is None else f"{result['alpha'].alpha:.3g}",
         "alpha (W_EI law; see below)"),
    ])  # fmt: skip
    body += "<h2>Recruitment cliff</h2>" + figure(
        sweep_figure(result, result["threshold_Hz"], result["cliffs"]),
        "sweep",
        "I rate on a symmetric-log axis, linear below the threshold (dashed), so 0 Hz is drawn "
        "at 0; dotted lines and triangles: the cliff f* of each coupling scale (the midpoint "
        "of the last scale below and the first at or above the threshold). E rate and test "
        "accuracy (%) on the same scales.",
    )
    rows = []
    for c, cl in zip(result["coupling_scales"], result["cliffs"], strict=True):
        k = list(result["coupling_scales"]).index(c)
        at = None
        if cl.f_star is not None and "rate_e_Hz" in result:
            at = float(np.interp(cl.f_star, result["scales"], result["rate_e_Hz"][k]))
        rows.append(
            {
                "coupling scale": c,
                "f*": cl.f_star,
                "log-linear f*": cl.refined,
                "status": cl.status.replace("_", " "),
                "E rate at f* (Hz)": at,
            }
        )
    body += table(rows, ("coupling scale", "f*", "log-linear f*", "E rate at f* (Hz)"))
    body += f"<pre>{esc(cliff.format_cliff_report(result))}</pre>"
    body += parameters_section(attrs, ("coupling_target", "run_dir"), "Sweep settings")
    return body


BODIES = {"run": run_body, "simulate": simulate_body, "grid": grid_body}
TITLES = {"run": "training run", "simulate": "simulation", "grid": "training grid",
          "scale_sweep": "W_in scale sweep", "coupling_sweep": "coupling sweep"}  # fmt: skip


def write_report(path_in: str, out_html: str, log=None) -> str:
    """Write the report of ``path_in`` (a file, or a run directory) to ``out_html``, one
    self-contained page; return the kind. ``log(text)``: told of slow steps."""
    log = log or (lambda text: None)
    if not os.path.exists(path_in):
        raise ValueError(f"{path_in} does not exist")
    folder = os.path.dirname(os.path.abspath(out_html))
    if not os.path.isdir(folder):
        raise ValueError(f"output directory {folder} does not exist; create it first")
    source = resolve(path_in)
    kind = file_kind(source)
    body = BODIES.get(kind, sweep_body)(source, log)
    name = os.path.basename(os.path.normpath(path_in))
    text = page(
        f"{name}: {TITLES.get(kind, kind)}",
        f"{os.path.abspath(source)} (kind: {kind}) - ei-sim report",
        body,
    )
    write_page(out_html, text)
    return kind


def write_page(path: str, text: str) -> None:
    """The one place a report page is written: atomically (a temporary file renamed into
    place, :func:`ei_sim.store.atomic.write_text`), so a full disk or a kill leaves the
    previous page as it was."""
    write_text(path, text)
