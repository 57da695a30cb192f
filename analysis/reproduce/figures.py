"""Figures of the reproductions, saved as PNG beside the store (names relative to it)."""

from __future__ import annotations

import os

import numpy as np

from ei_sim.analysis.figures import save_figure


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(camp, fig, stem) -> str:
    base = os.path.splitext(os.path.basename(camp.store_path))[0]
    name = f"{base}_{stem}.png"
    save_figure(fig, os.path.join(camp.out_dir, name), dpi=110)
    return name


def plot_sweeps(camp, stem, sweeps) -> str:
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), constrained_layout=True)
    for label, sw in sweeps:
        axes[0].plot(sw["scales"], sw["accuracy"][0], "o-", ms=3, label=label)
        axes[1].plot(sw["scales"], sw["rate_i_Hz"][0], "o-", ms=3, label=label)
    axes[0].set(xlabel="W_in scale s", ylabel="test accuracy (%)")
    axes[1].set(xlabel="W_in scale s", ylabel="I rate (Hz)", yscale="symlog")
    axes[1].axhline(0.05, color="k", lw=0.5, ls=":")
    for ax in axes:
        ax.legend(fontsize=7)
    return _save(camp, fig, stem)


def plot_budgets(camp, plan, curves) -> str:
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    x = np.arange(len(plan.budgets))
    for model in plan.models:
        acc = [curves[(model, b)][0] for b in plan.budgets]
        rate = [curves[(model, b)][1] for b in plan.budgets]
        axes[0].plot(x, acc, "o-", label=f"{model.upper()} ei-sim")
        axes[1].plot(x, rate, "o-", label=f"{model.upper()} ei-sim")
    for ax, ylab in zip(axes, ("best accuracy (%)", "final E rate (Hz)"), strict=True):
        ax.set_xticks(x, plan.budgets)
        ax.set(xlabel="spike budget (spikes / trial)", ylabel=ylab)
        ax.legend(fontsize=7)
    axes[1].set_yscale("symlog")
    return _save(camp, fig, "budgets")


def plot_meanfield(camp, st, spiking) -> str:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.5, 4), constrained_layout=True)
    ax.plot(st["taus"], st["tau_frequency_Hz"], "o-", label="mean field (ei-sim)")
    ax.plot(
        [s[0] for s in spiking], [s[1] for s in spiking], "s-", label="spiking, trained (ei-sim)"
    )
    ax.set(xlabel="tau_GABA (ms)", ylabel="frequency (Hz)")
    ax.legend(fontsize=8)
    return _save(camp, fig, "frequency_vs_tau_gaba")


LABEL_COLOURS = {"no-loop": "#8c8c8c", "stretched-COBA": "#e8871e", "PING": "#2b6cb0"}


def _basin_map(ax, values, labels, title, trending=None):
    """A grid of cells coloured by label (W_EI down the rows, W_IE across), a dot marking a
    cell whose I rate still trends."""
    import matplotlib.patches as mpatches

    n = len(values)
    for r, a in enumerate(values):
        for c, b in enumerate(values):
            lab = labels.get((a, b))
            colour = LABEL_COLOURS.get(lab, "white")
            ax.add_patch(mpatches.Rectangle((c, n - 1 - r), 1, 1, facecolor=colour,
                                            edgecolor="white", lw=2))  # fmt: skip
            if trending and trending.get((a, b)):
                ax.plot(c + 0.5, n - 1 - r + 0.5, "o", color="black", ms=5)
            if lab is None:
                ax.text(c + 0.5, n - 0.5 - r, "?", ha="center", va="center")
    ax.set_xlim(0, n)
    ax.set_ylim(0, n)
    ax.set_xticks(np.arange(n) + 0.5, [f"{v:g}" for v in values])
    ax.set_yticks(np.arange(n) + 0.5, [f"{v:g}" for v in reversed(values)])
    ax.set(xlabel="W_IE mean (uS, summed)", ylabel="W_EI mean (uS, summed)", title=title)
    ax.set_aspect("equal")


def plot_grid_comparison(camp, cells, values) -> str:
    """The lab's basin map beside ei-sim's, and every cell's path in (E, I) over the epochs."""
    from ei_sim.analysis.reproduce.grids import lab_label

    plt = _plt()
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.8), constrained_layout=True)
    ours = {(c["w_ei"], c["w_ie"]): c["label"] for c in cells}
    moving = {(c["w_ei"], c["w_ie"]): bool(c["trend"]) for c in cells}
    epochs = cells[0]["epochs"] if cells else 0
    if camp.reference is not None and not camp.quick:
        theirs = {(a, b): lab_label(camp.reference, a, b) for a in values for b in values}
        agree = sum(theirs[k] == v for k, v in ours.items() if theirs.get(k))
        _basin_map(axes[0], values, theirs, "lab (100 epochs, stored rates)")
        title = f"ei-sim ({epochs} epochs): {agree}/{len(ours)} labels as the lab's"
    else:
        axes[0].axis("off")
        axes[0].text(0.5, 0.5, "no lab map: a miniature is not compared", ha="center")
        title = f"ei-sim ({epochs} epochs)"
    _basin_map(axes[1], values, ours, title, moving)
    for c in cells:
        colour = LABEL_COLOURS.get(c["label"], "k")
        axes[2].plot(c["e_history"], c["i_history"], "-", color=colour, lw=0.8, alpha=0.8)
        axes[2].plot(c["e_history"][-1:], c["i_history"][-1:], "o", color=colour, ms=4)
    from matplotlib.ticker import FuncFormatter, SymmetricalLogLocator

    axes[2].set_xscale("symlog", linthresh=0.1)
    axes[2].set_yscale("symlog", linthresh=0.1)
    for axis in (axes[2].xaxis, axes[2].yaxis):  # ticks at 1, 2, 5 x 10^k, labelled: a range
        axis.set_major_locator(SymmetricalLogLocator(linthresh=0.1, base=10,  # within one
                                                     subs=(1.0, 2.0, 5.0)))  # decade too
        axis.set_major_formatter(FuncFormatter(lambda x, _pos: f"{x:g}"))
    axes[2].set(xlabel="E rate (Hz)", ylabel="I rate (Hz)",
                title="each cell over the epochs (dot: last epoch)")  # fmt: skip
    handles = [plt.Line2D([], [], color=v, marker="s", ls="", label=k)
               for k, v in LABEL_COLOURS.items()]  # fmt: skip
    handles.append(plt.Line2D([], [], color="black", marker="o", ls="", label="I still trending"))
    axes[2].legend(handles=handles, fontsize=7, loc="lower right")
    return _save(camp, fig, "basins")


def plot_diagonal(camp, points, reference) -> str:
    """Accuracy, E and I rate against W_EI along the diagonal: ei-sim's mean +- seed sd, the
    lab's means +- their sd where stored."""
    plt = _plt()
    fig, axes = plt.subplots(1, 3, figsize=(14, 4), constrained_layout=True)
    a = np.array([p[0] for p in points])
    for ax, k, key, unit in ((axes[0], 1, "accuracy", "best accuracy (%)"),
                             (axes[1], 2, "rate_e", "E rate, last epoch (Hz)"),
                             (axes[2], 3, "rate_i", "I rate, last epoch (Hz)")):  # fmt: skip
        mean = np.array([p[k].mean() for p in points])
        sd = np.array([p[k].std(ddof=1) if len(p[k]) > 1 else 0.0 for p in points])
        ax.errorbar(a, mean, yerr=sd, fmt="o-", capsize=3, label="ei-sim (mean +- seed sd)")
        if reference is not None and not camp.quick:
            lab = [reference.get(f"diagonal.{x:g}.{key}_mean") for x in a]
            lab_sd = [reference.get(f"diagonal.{x:g}.{key}_sd") for x in a]
            ok = [i for i, e in enumerate(lab) if e is not None]
            if ok:
                ax.errorbar(a[ok], [lab[i].value for i in ok],
                            yerr=[lab_sd[i].value if lab_sd[i] else 0.0 for i in ok],
                            fmt="s--", capsize=3, label="lab (100 epochs)")  # fmt: skip
        ax.set(xlabel="W_EI mean (W_IE = 2 W_EI)", ylabel=unit)
        ax.legend(fontsize=7)
    axes[2].axhline(0.5, color="k", lw=0.5, ls=":")
    axes[2].set_yscale("symlog", linthresh=0.1)
    return _save(camp, fig, "diagonal")
