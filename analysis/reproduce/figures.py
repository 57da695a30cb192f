"""Figures of the reproductions, saved as PNG beside the store (names relative to it)."""

from __future__ import annotations

import os

import numpy as np

from ei_sim.analysis.savefig import save_figure


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
