"""Figures and the terminal table of a finished training grid and of an inference-time sweep.

The numbers come from :mod:`sweeps` (a grid's cells from :func:`ei_sim.sweeps.store.read_cells`, a
sweep's result from :func:`ei_sim.sweeps.inference.sweep_scales`); this module only draws them, so
``sweeps`` stays free of figures (it imports nothing of matplotlib).
"""

from __future__ import annotations

import os

import numpy as np

from ei_sim.analysis.savefig import save_figure


def grid_table(cells: list[dict]) -> str:
    """One line per cell, sorted by (W_EI, W_IE, seed): best accuracy, E/I rates (Hz), gamma
    peak (Hz, "none" for a silent or flat spectrum) and the basin label."""
    head = (
        f"{'W_EI':>6} {'W_IE':>6} {'seed':>5} {'best acc':>9} {'E Hz':>7} {'I Hz':>7} "
        f"{'gamma':>7}  label"
    )
    rows = [head]
    for c in sorted(cells, key=lambda c: (c["w_ei"], c["w_ie"], c["seed"])):
        gamma = c["gamma_peak_Hz"]
        gamma_text = "none" if not np.isfinite(gamma) else f"{gamma:.1f}"
        rows.append(
            f"{c['w_ei']:6g} {c['w_ie']:6g} {c['seed']:5d} {100 * c['best_accuracy']:8.1f}% "
            f"{c['rate_e_Hz']:7.2f} {c['rate_i_Hz']:7.2f} {gamma_text:>7}  {c.get('label', '')}"
        )
    return "\n".join(rows)


def grid_heatmaps(cells: list[dict], out_dir: str, stem: str = "grid") -> list[str]:
    """Heatmaps of accuracy, E rate and I rate over (W_EI, W_IE), averaged over seeds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    wei = sorted({c["w_ei"] for c in cells})
    wie = sorted({c["w_ie"] for c in cells})
    paths = []
    for key, title in (("best_accuracy", "best test accuracy"), ("rate_e_Hz", "E rate (Hz)"),
                       ("rate_i_Hz", "I rate (Hz)")):  # fmt: skip
        grid = np.full((len(wie), len(wei)), np.nan)
        for j, b in enumerate(wie):
            for i, a in enumerate(wei):
                vals = [c[key] for c in cells if c["w_ei"] == a and c["w_ie"] == b]
                if vals:
                    grid[j, i] = np.mean(vals) * (100 if key == "best_accuracy" else 1)
        fig, ax = plt.subplots(figsize=(5, 4), constrained_layout=True)
        im = ax.imshow(grid, origin="lower", cmap="viridis", aspect="auto")
        ax.set_xticks(range(len(wei)), [f"{v:g}" for v in wei])
        ax.set_yticks(range(len(wie)), [f"{v:g}" for v in wie])
        ax.set(xlabel="W_EI mean", ylabel="W_IE mean", title=title)
        for j in range(len(wie)):
            for i in range(len(wei)):
                if np.isfinite(grid[j, i]):
                    ax.text(
                        i, j, f"{grid[j, i]:.1f}", ha="center", va="center", color="w", fontsize=8
                    )
        fig.colorbar(im, ax=ax)
        path = os.path.join(out_dir, f"{stem}_{key}.png")
        paths.append(save_figure(fig, path, dpi=120))
    return paths


def plot_sweep(result: dict, path: str) -> None:
    """Accuracy and I rate against W_in scale, one curve per coupling scale (``result`` of
    :func:`ei_sim.sweeps.inference.sweep_scales`)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4), constrained_layout=True)
    target = result["coupling_target"]
    for ci, c in enumerate(result["coupling_scales"]):
        label = "trained" if target == "none" else f"{target} x {c:g}"
        axes[0].plot(result["scales"], 100 * result["accuracy"][ci], "o-", ms=3, label=label)
        axes[1].plot(result["scales"], result["rate_i_Hz"][ci], "o-", ms=3, label=label)
    axes[0].set(xlabel="W_in scale", ylabel="test accuracy (%)")
    axes[1].set(xlabel="W_in scale", ylabel="I rate (Hz)", yscale="symlog")
    for ax in axes:
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    save_figure(fig, path, dpi=120)
