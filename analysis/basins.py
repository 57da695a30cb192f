"""Basins of the trained (W_EI, W_IE) grid: no-loop, stretched-COBA and PING cells.

Labels (:data:`LABEL_RULE`; structure first, then the I rate as the discriminator; the
threshold is a parameter)::

    no-loop         if W_EI = 0 or W_IE = 0            (the loop is cut: structural)
    PING            else if rate_I >  i_active_Hz      (default 0.5 Hz: "clearly above 0")
    stretched-COBA  else                               (a loop whose I cells stay silent)

The structural rule is the reference lab's (``pinglab`` nb036: the no-loop band is the W_EI = 0
row or the W_IE = 0 column, whatever the rates). When the couplings of a cell are not known
(rates only), a silent-I cell is no-loop if ``rate_E <= e_elevated_Hz`` (default 4 Hz, above
the top of the lab's PING cluster, E 2-3.6 Hz) and stretched-COBA above it.

Unsupervised check: a Gaussian mixture (:class:`sklearn.mixture.GaussianMixture`, as many
components as there are distinct labels, fixed seed) on the standardised (E rate, I rate,
accuracy) triples; its agreement with the labels is the adjusted Rand index (1: identical
partitions, about 0: chance).
"""

from __future__ import annotations

import warnings

import numpy as np

from ei_sim.sweeps import store as sweeps_store

LABELS = ("no-loop", "stretched-COBA", "PING")
CELL_FIELDS = (
    "w_ei",
    "w_ie",
    "seed",
    "best_accuracy",
    "final_accuracy",
    "rate_e_Hz",
    "rate_i_Hz",
    "gamma_peak_Hz",
    "gamma_rhythmic",
)  # fmt: skip  (gamma_rhythmic: NaN in a store written before verdicts existed)
COLOURS = {"no-loop": "#7f7f7f", "stretched-COBA": "#ff7f0e", "PING": "#1f77b4"}


LABEL_RULE = (
    "no-loop if W_EI = 0 or W_IE = 0; else PING if I > {i_active_Hz:g} Hz; else stretched-COBA"
)


def label_rule(i_active_Hz=0.5) -> str:
    """The label rule in words, as printed with every table."""
    return LABEL_RULE.format(i_active_Hz=i_active_Hz)


def label_cells(
    rate_e_Hz, rate_i_Hz, w_ei=None, w_ie=None, i_active_Hz=0.5, e_elevated_Hz=4.0
) -> np.ndarray:  # fmt: skip
    """One label of :data:`LABELS` per cell (module docstring). ``w_ei`` / ``w_ie`` are the
    cells' coupling means; without them the rate-only fallback is used."""
    e = np.asarray(rate_e_Hz, float)
    i = np.asarray(rate_i_Hz, float)
    if e.shape != i.shape:
        raise ValueError(f"E and I rates must have the same shape, got {e.shape}, {i.shape}")
    for name, value in (("i_active_Hz", i_active_Hz), ("e_elevated_Hz", e_elevated_Hz)):
        if not (np.isfinite(value) and value >= 0):
            raise ValueError(f"{name} must be a finite number >= 0, got {value}")
    if w_ei is None or w_ie is None:
        labels = np.where(e > e_elevated_Hz, "stretched-COBA", "no-loop").astype(object)
        labels[i > i_active_Hz] = "PING"
        return labels
    loop = (np.asarray(w_ei, float) > 0) & (np.asarray(w_ie, float) > 0)
    labels = np.where(i > i_active_Hz, "PING", "stretched-COBA").astype(object)
    labels[~loop] = "no-loop"
    return labels


def unsupervised_check(rate_e_Hz, rate_i_Hz, accuracy, labels, seed=0) -> dict:
    """Gaussian-mixture clusters of standardised (E, I, accuracy) and their adjusted Rand
    index against ``labels``; ``ari = None`` when there are too few cells or one label."""
    from sklearn.metrics import adjusted_rand_score
    from sklearn.mixture import GaussianMixture

    x = np.column_stack([rate_e_Hz, rate_i_Hz, accuracy]).astype(float)
    k = len(set(labels))
    if k < 2 or len(x) < 2 * k:
        return {"ari": None, "clusters": None, "n_components": k}
    sd = x.std(axis=0)
    z = (x - x.mean(axis=0)) / np.where(sd > 0, sd, 1.0)
    gmm = GaussianMixture(n_components=k, random_state=seed, n_init=5, reg_covar=1e-4)
    with warnings.catch_warnings():  # identical cells: fewer clusters than labels, said below
        warnings.simplefilter("ignore", category=UserWarning)
        clusters = gmm.fit_predict(z)
    return {"ari": float(adjusted_rand_score(labels, clusters)), "clusters": clusters,
            "n_components": k}  # fmt: skip


def read_grid(path: str) -> dict:
    """Cell table of a grid store: ``name`` plus one array per :data:`CELL_FIELDS`."""
    cells = sweeps_store.read_grid(path, metrics=False)["cells"]
    names = [cell["name"] for cell in cells]
    rows = [cell["attrs"] for cell in cells]
    if not rows:
        raise ValueError(f"{path} holds no cells yet; run the grid first")
    table = {"name": np.array(names, dtype=object)}
    for f in CELL_FIELDS:
        table[f] = np.array([_number(r.get(f)) for r in rows], float)
    return table


def _number(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def analyze_grid(table: dict, i_active_Hz=0.5, e_elevated_Hz=4.0, check: bool = True) -> dict:
    """Labels, per-label summary and the unsupervised check of a cell table (``check=False``:
    no check, ``result["check"]["ari"]`` None; for figures that do not show it, without
    loading scikit-learn)."""
    labels = label_cells(table["rate_e_Hz"], table["rate_i_Hz"], table["w_ei"], table["w_ie"],
                         i_active_Hz, e_elevated_Hz)  # fmt: skip
    acc = table["best_accuracy"]
    ok = np.isfinite(acc) & np.isfinite(table["rate_e_Hz"]) & np.isfinite(table["rate_i_Hz"])
    if check:
        check = unsupervised_check(
            table["rate_e_Hz"][ok], table["rate_i_Hz"][ok], acc[ok], labels[ok].tolist()
        )
    else:
        check = {"ari": None, "clusters": None, "n_components": None}
    summary = []
    for lab in LABELS:
        m = labels == lab
        if m.any():
            summary.append({
                "label": lab, "n": int(m.sum()),
                "accuracy": _range(acc[m]), "rate_e_Hz": _range(table["rate_e_Hz"][m]),
                "rate_i_Hz": _range(table["rate_i_Hz"][m]),
            })  # fmt: skip
    return {"labels": labels, "summary": summary, "check": check, "table": table,
            "thresholds": {"i_active_Hz": i_active_Hz, "e_elevated_Hz": e_elevated_Hz}}  # fmt: skip


def _range(x) -> tuple[float, float]:
    x = x[np.isfinite(x)]
    return (float(x.min()), float(x.max())) if x.size else (float("nan"), float("nan"))


def format_basins(result: dict) -> str:
    t = result["thresholds"]
    lines = ["labels: " + label_rule(t["i_active_Hz"])]
    for name, lab in zip(result["table"]["name"], result["labels"], strict=True):
        lines.append(f"  {name}: {lab}")
    for s in result["summary"]:
        lines.append(
            f"  {s['label']}: n={s['n']}, accuracy {100 * s['accuracy'][0]:.1f}-"
            f"{100 * s['accuracy'][1]:.1f} %, "
            f"E {s['rate_e_Hz'][0]:.2f}-{s['rate_e_Hz'][1]:.2f} Hz, "
            f"I {s['rate_i_Hz'][0]:.2f}-{s['rate_i_Hz'][1]:.2f} Hz"
        )
    ari = result["check"]["ari"]
    lines.append("  GMM agreement (adjusted Rand): " + ("none" if ari is None else f"{ari:.3f}"))
    return "\n".join(lines)


def grid_map_figure(result: dict):
    """The basin label of every cell on the (W_EI, W_IE) grid, one square per coupling pair
    split into one stripe per seed, each stripe coloured by its label; the mean best accuracy
    (%) written inside in black or white by the background. Categorical axes (uneven
    spacings do not make squares overlap); the legend sits below the grid, never on it."""
    from matplotlib.colors import to_rgb
    from matplotlib.patches import Patch, Rectangle

    from ei_sim.analysis import figures as F

    t = result["table"]
    labels = np.asarray(result["labels"], dtype=object)
    wei, wie = sorted(set(t["w_ei"].tolist())), sorted(set(t["w_ie"].tolist()))
    fig, ax = F.pyplot().subplots(figsize=(1.2 * len(wei) + 3.0, 1.0 * len(wie) + 2.4),
                                  constrained_layout=True)  # fmt: skip
    for i, a in enumerate(wei):
        for j, b in enumerate(wie):
            at = np.nonzero((t["w_ei"] == a) & (t["w_ie"] == b))[0]
            at = at[np.argsort(t["seed"][at])]
            for k, idx in enumerate(at):
                width = 0.94 / len(at)
                ax.add_patch(Rectangle((i - 0.47 + k * width, j - 0.47), width, 0.94,
                                       facecolor=COLOURS[labels[idx]], edgecolor="white",
                                       lw=1))  # fmt: skip
            acc = t["best_accuracy"][at]
            acc = acc[np.isfinite(acc)]
            if acc.size:
                colour = F.text_colour(to_rgb(COLOURS[labels[at[0]]]))
                ax.text(i, j, f"{100 * acc.mean():.1f} %", ha="center", va="center",
                        fontsize=9, color=colour, fontweight="bold")  # fmt: skip
    ax.set(xlim=(-0.5, len(wei) - 0.5), ylim=(-0.5, len(wie) - 0.5),
           xlabel=F.COUPLING_AXES["w_ei"], ylabel=F.COUPLING_AXES["w_ie"],
           title="basins (mean best accuracy over seeds; one stripe per seed)")  # fmt: skip
    ax.set_xticks(range(len(wei)), [f"{v:g}" for v in wei])
    ax.set_yticks(range(len(wie)), [f"{v:g}" for v in wie])
    ax.set_aspect("equal")
    present = [lab for lab in LABELS if (labels == lab).any()]
    fig.legend(
        handles=[Patch(facecolor=COLOURS[lab], label=lab) for lab in present],
        loc="outside lower center",
        ncol=len(present),
        fontsize=8,
        frameon=False,
    )
    return fig


def plot_grid_map(result: dict, path: str) -> str:
    """Write :func:`grid_map_figure` at ``path``."""
    from ei_sim.analysis.figures import save_figure

    return save_figure(grid_map_figure(result), path, dpi=110)


def rate_accuracy_figure(result: dict):
    """E rate against best accuracy (%), coloured by the I rate, one marker shape per label.
    Markers are half transparent with a dark edge, and cells that fall on the same point (to
    the precision shown) are counted beside it ("x3"), so none hides another."""
    from ei_sim.analysis import figures as F

    t = result["table"]
    labels = np.asarray(result["labels"], dtype=object)
    fig, ax = F.pyplot().subplots(figsize=(6, 4.4), constrained_layout=True)
    acc = 100 * t["best_accuracy"]
    top = F.nice_ceiling(float(np.nanmax(t["rate_i_Hz"], initial=0.0)))
    sc = None
    for lab, marker in zip(LABELS, ("s", "^", "o"), strict=True):
        m = labels == lab
        if m.any():
            sc = ax.scatter(t["rate_e_Hz"][m], acc[m], c=t["rate_i_Hz"][m], cmap="viridis",
                            vmin=0, vmax=top, s=70, marker=marker, alpha=0.7,
                            edgecolors="black", linewidths=0.8, label=lab)  # fmt: skip
    points: dict = {}
    for x, y in zip(t["rate_e_Hz"], acc, strict=True):
        if np.isfinite(x) and np.isfinite(y):
            key = (round(float(x), 2), round(float(y), 1))
            points[key] = points.get(key, 0) + 1
    for (x, y), n in points.items():
        if n > 1:
            ax.annotate(f"x{n}", (x, y), xytext=(7, 5), textcoords="offset points", fontsize=8)
    if sc is not None:
        fig.colorbar(sc, ax=ax, label=f"I rate (Hz), scale 0-{top:g}")
    ax.set(xlabel="E rate (Hz, test set)", ylabel="best test accuracy (%)",
           title="E rate vs accuracy")  # fmt: skip
    ax.legend(fontsize=8, loc="best", title="label", title_fontsize=8)
    ax.grid(alpha=0.3)
    return fig


def trajectory_figure(finished: list[dict], pending: list[dict]):
    """Each cell's path in (E rate, I rate) over its epochs (test-set means), the dot at its
    last epoch: finished cells in their label's colour, cells still training dashed and grey
    (hollow dot). Each item: ``name``, ``e_history``, ``i_history`` (Hz per epoch) and, for
    finished cells, ``label``. Both axes are linear up to 0.1 Hz and logarithmic above, so a
    silent I population (0 Hz) and one at 20 Hz are both seen."""
    from ei_sim.analysis import figures as F

    fig, ax = F.pyplot().subplots(figsize=(6.4, 4.6), constrained_layout=True)
    for cell in finished:
        e, i = np.asarray(cell["e_history"], float), np.asarray(cell["i_history"], float)
        if e.size:
            colour = COLOURS.get(cell.get("label"), "black")
            ax.plot(e, i, "-", color=colour, lw=0.9, alpha=0.8)
            ax.plot(e[-1:], i[-1:], "o", color=colour, ms=4)
    for cell in pending:
        e, i = np.asarray(cell["e_history"], float), np.asarray(cell["i_history"], float)
        if e.size:
            ax.plot(e, i, "--", color="0.45", lw=0.9)
            ax.plot(e[-1:], i[-1:], "o", mfc="white", mec="0.3", ms=5)
    from matplotlib.lines import Line2D
    from matplotlib.ticker import FixedLocator, StrMethodFormatter

    ticks = [0, 0.05, 0.1, 0.2, 0.5, 1, 1.5, 2, 3, 4, 5, 7, 10, 15, 20, 30, 50, 100, 200]
    ax.set_xscale("symlog", linthresh=0.1)
    ax.set_yscale("symlog", linthresh=0.1)
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_locator(FixedLocator(ticks))
        axis.set_major_formatter(StrMethodFormatter("{x:g}"))
        axis.set_minor_locator(FixedLocator([]))
    ax.set(xlabel="E rate (Hz, test set)", ylabel="I rate (Hz, test set)",
           title="each cell over its epochs (dot: last epoch)")  # fmt: skip

    handles = [Line2D([], [], color=COLOURS[lab], marker="o", label=lab) for lab in LABELS
               if any(c.get("label") == lab for c in finished)]  # fmt: skip
    if any(len(c["e_history"]) for c in pending):
        handles.append(Line2D([], [], color="0.45", ls="--", marker="o", mfc="white",
                              label="still training"))  # fmt: skip
    if handles:
        ax.legend(handles=handles, fontsize=8, loc="best")
    ax.grid(alpha=0.3)
    return fig


def plot_rate_accuracy(result: dict, path: str) -> str:
    """Write :func:`rate_accuracy_figure` at ``path``."""
    from ei_sim.analysis.figures import save_figure

    return save_figure(rate_accuracy_figure(result), path, dpi=110)
