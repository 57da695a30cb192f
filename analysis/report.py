"""One HTML page (figures as PNG files beside it, plus tables) for a simulate file, a grid
store or a sweep store; the kind is read from the file's root attribute ``kind`` (a file
without it, written before the attribute existed, is recognised by its groups:
:func:`ei_sim.store.kinds.kind_of`).

The page and its figures are written as one set (:func:`ei_sim.store.atomic.staged_files`):
each to a temporary file, checked to be whole, and all renamed into place once the report
is complete, so a failure (a full disk, a kill, a damaged input) leaves the previous report
and its figures as they were."""

from __future__ import annotations

import html
import os

import numpy as np

from ei_sim.analysis import basins, cliff, gamma
from ei_sim.store.atomic import staged_files
from ei_sim.store.kinds import file_kind as _file_kind
from ei_sim.store.media import file_problem

REPORT_KINDS = ("simulate", "grid", *cliff.SWEEP_KINDS)


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def file_kind(path: str) -> str:
    """One of :data:`REPORT_KINDS`; ValueError (one line) for a missing or unreadable file or
    one of another kind."""
    return _file_kind(path, REPORT_KINDS, missing="give a simulate, grid or sweep file")


def _table(rows: list[dict]) -> str:
    if not rows:
        return "<p>(empty)</p>"
    keys = list(rows[0])
    head = "".join(f"<th>{html.escape(str(k))}</th>" for k in keys)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_fmt(r[k]))}</td>" for k in keys) + "</tr>"
        for r in rows
    )
    return f"<table border='1' cellspacing='0' cellpadding='3'><tr>{head}</tr>{body}</table>"


def _fmt(v) -> str:
    if v is None:
        return "none"
    if isinstance(v, float | np.floating):
        return "nan" if not np.isfinite(v) else f"{v:.4g}"
    return str(v)


def _simulate_section(path, figure) -> str:
    run = gamma.read_simulate_file(path)
    stats = gamma.gamma_from_file(path)
    dt = run["dt_ms"]
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 3))
    t, n = np.nonzero(run["spikes_e"][:, 0])
    ax.plot(t * dt, n, ",k")
    ax.set(xlabel="time (ms)", ylabel="E cell", title="E raster, trial 0")
    raster_png = figure(fig, "raster")
    _, freqs, power = gamma.psd_peak(run["spikes_e"], dt)
    fig, ax = plt.subplots(figsize=(5, 3))
    ax.semilogy(freqs[1:], power[1:])
    ax.set(xlim=(0, 150), xlabel="frequency (Hz)", ylabel="PSD", title="E population PSD")
    psd_png = figure(fig, "psd")
    rows = [{"quantity": k, "value": v} for k, v in stats.items()]
    return f"{_table(rows)}<img src='{raster_png}'><img src='{psd_png}'>"


def _grid_section(path, figure) -> str:
    result = basins.analyze_grid(basins.read_grid(path))
    names = {}
    for key, fn in (("map", basins.plot_grid_map), ("scatter", basins.plot_rate_accuracy)):
        names[key] = figure(None, key)
        fn(result, figure.staged[key])
    t = result["table"]
    rows = [
        {"cell": t["name"][k], "w_ei": t["w_ei"][k], "w_ie": t["w_ie"][k], "seed": t["seed"][k],
         "best_accuracy": t["best_accuracy"][k], "rate_e_Hz": t["rate_e_Hz"][k],
         "rate_i_Hz": t["rate_i_Hz"][k], "gamma_peak_Hz": t["gamma_peak_Hz"][k],
         "label": result["labels"][k]}
        for k in range(len(t["name"]))
    ]  # fmt: skip
    ari = result["check"]["ari"]
    return (
        f"<pre>{html.escape(basins.format_basins(result))}</pre>{_table(rows)}"
        f"<p>GMM adjusted Rand index: {_fmt(ari)}</p>"
        f"<img src='{names['map']}'><img src='{names['scatter']}'>"
    )


def _sweep_section(path, figure) -> str:
    result = cliff.analyze_sweep(path)
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    for c, row, cl in zip(result["coupling_scales"], result["rate_i_Hz"], result["cliffs"],
                          strict=True):  # fmt: skip
        line = axes[0].plot(result["scales"], np.maximum(row, 1e-3), "o-", label=f"c={c:g}")
        if cl.f_star is not None:
            axes[0].axvline(cl.f_star, color=line[0].get_color(), ls=":")
        if "accuracy" in result:
            k = list(result["coupling_scales"]).index(c)
            axes[1].plot(result["scales"], result["accuracy"][k], "o-", label=f"c={c:g}")
    axes[0].axhline(result["threshold_Hz"], color="k", lw=0.5)
    axes[0].set(yscale="log", xlabel="input scale s", ylabel="I rate (Hz)", title="cliff")
    axes[1].set(xlabel="input scale s", ylabel="accuracy")
    axes[0].legend(fontsize=7)
    png = figure(fig, "sweep")
    rows = [{"coupling_scale": c, "f_star": cl.f_star, "status": cl.status, "refined": cl.refined}
            for c, cl in zip(result["coupling_scales"], result["cliffs"], strict=True)]  # fmt: skip
    text = cliff.format_cliff_report(result)
    return f"<pre>{html.escape(text)}</pre>{_table(rows)}<img src='{png}'>"


def write_report(path_in: str, out_html: str) -> str:
    """Write the report of ``path_in`` to ``out_html`` (PNG files beside it); return the kind."""
    if not os.path.exists(path_in):
        raise ValueError(f"{path_in} does not exist")
    folder = os.path.dirname(os.path.abspath(out_html))
    if not os.path.isdir(folder):
        raise ValueError(f"output directory {folder} does not exist; create it first")
    kind = file_kind(path_in)
    stem = os.path.splitext(os.path.basename(out_html))[0]
    with staged_files() as stage:
        html_tmp = stage(out_html, file_problem)  # the page's lock first, before any figure

        def figure(fig, name):
            """Stage ``<stem>_<name>.png``; save ``fig`` into it (None: the caller will)."""
            png = f"{stem}_{name}.png"
            figure.staged[name] = stage(os.path.join(folder, png), file_problem)
            if fig is not None:
                fig.tight_layout()
                fig.savefig(figure.staged[name], format="png", dpi=110)
                _plt().close(fig)
            return png

        figure.folder, figure.staged = folder, {}
        section = {"simulate": _simulate_section, "grid": _grid_section}.get(kind,
                                                                            _sweep_section)
        body = section(path_in, figure)
        page = (
            f"<!doctype html><html><head><meta charset='utf-8'><title>ei-sim report: "
            f"{html.escape(os.path.basename(path_in))}</title></head><body>"
            f"<h1>ei-sim report</h1><p>{html.escape(path_in)} (kind: {kind})</p>{body}"
            "</body></html>"
        )
        with open(html_tmp, "w", encoding="utf-8") as fh:
            fh.write(page)
    return kind
