"""Figures and the terminal table of a finished training grid and of an inference-time sweep.

The numbers come from :mod:`sweeps` (a grid's cells from :func:`ei_sim.sweeps.store.read_cells`, a
sweep's result from :func:`ei_sim.sweeps.inference.sweep_scales`); this module only draws them, so
``sweeps`` stays free of figures (it imports nothing of matplotlib).

Honest scales: accuracy is in percent on a fixed 0-100 % colour range (80 % and 82 % look
alike because they are alike; the number is written in every cell), rates on 0 to the
largest rate of the grid (stated on the colour bar), the gamma map colours only cells whose
peak the surrogate test calls a rhythm (docs/gamma.md). The I rate of a sweep is drawn on a
symmetric-log axis that is linear below the cliff threshold, so an I rate of 0 is drawn at 0.
"""

from __future__ import annotations

import os

import numpy as np

from ei_sim.analysis import figures as F

ACCURACY_RANGE = (0.0, 100.0)  # percent: the colour scale of every accuracy heatmap
GAMMA_RANGE_HZ = (0.0, 150.0)  # the band the gamma peak is looked for in (5-150 Hz)
CHANCE_PERCENT = 10.0  # ten digits
TARGET_NAMES = {"w_ei": "W_EI", "w_ie": "W_IE"}


def cell_verdict(cell: dict) -> str:
    """A grid cell's stored verdict in words: its ``gamma_verdict``, or from its
    ``gamma_rhythmic`` (stores of the first verdict release); "no verdict stored" when it has
    neither (a store of an earlier release)."""
    if cell.get("gamma_verdict"):
        return str(cell["gamma_verdict"])
    from ei_sim.sim.spectrum import verdict_word

    return {"rhythm": "rhythm", "no verdict stored": "no verdict stored"}.get(
        verdict_word(cell.get("gamma_rhythmic")), "no rhythm"
    )


SHORT = {"rhythm": "yes", "no rhythm": "no", "too short": "short", "silent": "silent",
         "no verdict stored": "?"}  # fmt: skip


def grid_table(cells: list[dict]) -> str:
    """One line per cell, sorted by (W_EI, W_IE, seed): best accuracy (%), E/I rates (Hz), gamma
    peak (Hz, "none" for a silent or flat spectrum), its verdict (``rhythm`` yes / no / ? when
    the store has none: written before verdicts existed) and the basin label."""
    head = (
        f"{'W_EI':>6} {'W_IE':>6} {'seed':>5} {'best acc':>9} {'E Hz':>7} {'I Hz':>7} "
        f"{'gamma Hz':>8} {'rhythm':>6}  label"
    )
    rows = [head]
    unknown = False
    for c in sorted(cells, key=lambda c: (c["w_ei"], c["w_ie"], c["seed"])):
        gamma = c["gamma_peak_Hz"]
        gamma_text = "none" if not np.isfinite(gamma) else f"{gamma:.1f}"
        rhythm = SHORT.get(cell_verdict(c), "?")
        unknown |= rhythm == "?"
        rows.append(
            f"{c['w_ei']:6g} {c['w_ie']:6g} {c['seed']:5d} {100 * c['best_accuracy']:8.1f}% "
            f"{c['rate_e_Hz']:7.2f} {c['rate_i_Hz']:7.2f} {gamma_text:>8} {rhythm:>6}  "
            f"{c.get('label', '')}"
        )
    rows.append(
        "gamma: peak of the test-set E spectrum at the best epoch; rhythm: the surrogate "
        "verdict of the reference trial (docs/gamma.md: yes, no, short: a trial too "
        "short to tell, silent: no E spike)"
        + ("; ?: no verdict stored (a store of an earlier release)" if unknown else "")
    )
    return "\n".join(rows)


def _gamma_texts(cells, wei, wie):
    """Cell texts and values of the gamma map: the frequency where a rhythm was found."""
    values = np.full((len(wie), len(wei)), np.nan)
    texts = [["" for _ in wei] for _ in wie]
    for j, b in enumerate(wie):
        for i, a in enumerate(wei):
            mine = [c for c in cells if float(c["w_ei"]) == a and float(c["w_ie"]) == b]
            if not mine:
                continue
            words = [cell_verdict(c) for c in mine]
            freqs = [float(c["gamma_peak_Hz"]) for c, w in zip(mine, words, strict=True)
                     if w == "rhythm"]  # fmt: skip
            if freqs:
                values[j, i] = np.mean(freqs)
                texts[j][i] = f"{np.mean(freqs):.0f} Hz\n{len(freqs)}/{len(mine)} seeds"
            elif all(w == "no verdict stored" for w in words):
                texts[j][i] = "no verdict\nstored"
            else:
                texts[j][i] = "silent" if all(w == "silent" for w in words) else "no rhythm"
    return values, texts


def grid_heatmap_figures(cells: list[dict]) -> dict:
    """``{name: figure}`` of accuracy (%), E rate, I rate and gamma over (W_EI, W_IE), each
    cell the mean over its seeds (module docstring for the colour ranges)."""
    plt = F.pyplot()
    wei, wie = F.grid_axes(cells)
    axes_labels = {"xlabel": F.COUPLING_AXES["w_ei"], "ylabel": F.COUPLING_AXES["w_ie"]}
    size = (max(5.6, 1.05 * len(wei) + 2.8), max(4.4, 0.6 * len(wie) + 2.2))
    out = {}
    acc = F.cell_means(cells, "best_accuracy", wei, wie, 100.0)
    fig, ax = plt.subplots(figsize=size, constrained_layout=True)
    F.annotated_heatmap(ax, acc, wei, wie, vmin=ACCURACY_RANGE[0], vmax=ACCURACY_RANGE[1],
                        texts=_texts(acc, "{:.1f} %"), title="best test accuracy",
                        colorbar_label="accuracy (%), fixed scale 0-100 % (chance 10 %)",
                        **axes_labels)  # fmt: skip
    out["best_accuracy"] = fig
    top = F.nice_ceiling(max(np.nanmax(F.cell_means(cells, k, wei, wie))
                             for k in ("rate_e_Hz", "rate_i_Hz")))  # fmt: skip
    for key, title in (("rate_e_Hz", "E rate (test set)"), ("rate_i_Hz", "I rate (test set)")):
        grid = F.cell_means(cells, key, wei, wie)
        fig, ax = plt.subplots(figsize=size, constrained_layout=True)
        F.annotated_heatmap(ax, grid, wei, wie, vmin=0.0, vmax=top, cmap="magma",
                            texts=_texts(grid, "{:.2f}"), title=title,
                            colorbar_label=f"rate (Hz), scale 0-{top:g} Hz (both rate maps)",
                            **axes_labels)  # fmt: skip
        out[key] = fig
    values, texts = _gamma_texts(cells, wei, wie)
    fig, ax = plt.subplots(figsize=size, constrained_layout=True)
    F.annotated_heatmap(ax, values, wei, wie, vmin=GAMMA_RANGE_HZ[0], vmax=GAMMA_RANGE_HZ[1],
                        cmap="plasma", texts=texts,
                        title="gamma rhythm (surrogate verdict; seeds with a rhythm)",
                        colorbar_label="peak frequency of a rhythm (Hz); grey: none",
                        **axes_labels)  # fmt: skip
    out["gamma"] = fig
    return out


def _texts(grid, spec: str):
    return [["" if not np.isfinite(v) else spec.format(v) for v in row] for row in grid]


def grid_heatmaps(cells: list[dict], out_dir: str, stem: str = "grid") -> list[str]:
    """Write :func:`grid_heatmap_figures` as ``<stem>_<name>.png``; return the paths."""
    return [F.save_figure(fig, os.path.join(out_dir, f"{stem}_{name}.png"))
            for name, fig in grid_heatmap_figures(cells).items()]  # fmt: skip


def sweep_figure(result: dict, threshold_Hz: float = 0.05, cliffs=None):
    """I rate, E rate and accuracy (%) against the W_in scale, one curve per coupling scale
    (``result`` of :func:`ei_sim.sweeps.inference.sweep_scales` or
    :func:`ei_sim.analysis.cliff.analyze_sweep`): the cliff threshold as a dashed line, each
    located cliff f* marked on every panel."""
    from ei_sim.analysis.cliff import find_cliff

    plt = F.pyplot()
    scales = np.asarray(result["scales"], float)
    couplings = list(result["coupling_scales"])
    if cliffs is None:
        cliffs = [find_cliff(scales, row, threshold_Hz, refine=True)
                  for row in np.atleast_2d(result["rate_i_Hz"])]  # fmt: skip
    target = result.get("coupling_target", "none")
    fig, axes = plt.subplots(1, 3, figsize=(13, 4), constrained_layout=True)
    for ci, (c, cl) in enumerate(zip(couplings, cliffs, strict=True)):
        label = "trained" if target == "none" else f"{TARGET_NAMES.get(target, target)} x {c:g}"
        colour = f"C{ci % 10}"
        rows = {"rate_i_Hz": axes[0], "rate_e_Hz": axes[1], "accuracy": axes[2]}
        for key, ax in rows.items():
            if key not in result:
                continue
            y = np.atleast_2d(result[key])[ci] * (100.0 if key == "accuracy" else 1.0)
            ax.plot(scales, y, "o-", ms=3, color=colour, label=label)
            if cl.f_star is not None:
                ax.axvline(cl.f_star, color=colour, ls=":", lw=1.2)
        if cl.f_star is not None:
            axes[0].plot([cl.f_star], [threshold_Hz], marker="v", ms=9, color=colour,
                         mec="black", zorder=5, ls="",
                         label="cliff f* (dotted)" if ci == 0 else None)  # fmt: skip
    axes[0].axhline(threshold_Hz, color="black", ls="--", lw=1,
                    label=f"threshold {threshold_Hz:g} Hz")  # fmt: skip
    axes[0].set_yscale("symlog", linthresh=threshold_Hz, linscale=0.5)
    axes[0].set_ylim(bottom=0)
    axes[0].set(xlabel="W_in scale", ylabel="I rate (Hz; linear below the threshold)",
                title="recruitment cliff: I rate")  # fmt: skip
    axes[1].set(xlabel="W_in scale", ylabel="E rate (Hz)", title="E rate")
    axes[1].set_ylim(bottom=0)
    axes[2].axhline(CHANCE_PERCENT, color="grey", lw=0.8, ls="--", label="chance 10 %")
    axes[2].set(xlabel="W_in scale", ylabel="test accuracy (%)", title="accuracy",
                ylim=ACCURACY_RANGE)  # fmt: skip
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="best")
    return fig


def plot_sweep(result: dict, path: str, threshold_Hz: float = 0.05) -> str:
    """Write :func:`sweep_figure` at ``path``."""
    return F.save_figure(sweep_figure(result, threshold_Hz), path)
