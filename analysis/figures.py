"""What every figure of ei-sim shares: the one place figures become files or bytes, text
colours that stay readable on any background, and annotated heatmaps with honest scales.

* :func:`save_figure` is the only function here that writes a figure file and
  :func:`png_bytes` the only one that renders one in memory (for the self-contained HTML
  reports); every figure of :mod:`ei_sim.analysis` goes through one of them.
* :func:`text_colour`: black or white for text drawn on a colour, whichever contrasts more
  (WCAG relative luminance ``L = 0.2126 R + 0.7152 G + 0.0722 B`` of the linearised sRGB
  channels; white below ``L = 0.179``, where both contrasts are equal).
* :func:`annotated_heatmap`: a categorical (x, y) grid of values, each cell written in it,
  with the colour range given by the caller (fixed or stated, never fitted to the data's
  spread without saying so) and units on both axes and on the colour bar.
"""

from __future__ import annotations

import io
import os

import numpy as np

LUMINANCE_SPLIT = 0.179
COUPLING_AXES = {"w_ei": "W_EI mean (uS)", "w_ie": "W_IE mean (uS)"}


def pyplot():
    """matplotlib.pyplot on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: str, dpi: int = 120, close: bool = True) -> str:
    """Write ``fig`` at ``path`` (format from its suffix, PNG by default) atomically and
    close it; return ``path``. The figure goes to a temporary file beside ``path``, is
    checked to be a whole image and is renamed into place
    (:func:`ei_sim.store.atomic.atomic_file`): a full disk or a kill never leaves a truncated
    or empty figure over a good one. ValueError (one line naming ``path``) when it cannot be
    written; the previous file then stays."""
    from ei_sim.store.atomic import atomic_file
    from ei_sim.store.media import file_problem

    fmt = os.path.splitext(path)[1].lstrip(".").lower() or "png"
    try:
        with atomic_file(path, check=file_problem) as tmp:
            fig.savefig(tmp, format=fmt, dpi=dpi)
    finally:
        if close:
            pyplot().close(fig)
    return path


def png_bytes(fig, dpi: int = 110) -> bytes:
    """``fig`` rendered as PNG bytes (closed afterwards)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    pyplot().close(fig)
    return buffer.getvalue()


def relative_luminance(rgb) -> float:
    """WCAG relative luminance of an sRGB colour with channels in [0, 1]."""
    c = np.asarray(rgb, float)[:3]
    linear = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    return float(linear @ np.array([0.2126, 0.7152, 0.0722]))


def text_colour(rgb) -> str:
    """ "black" or "white", whichever reads better on the colour ``rgb``."""
    return "white" if relative_luminance(rgb) < LUMINANCE_SPLIT else "black"


def annotated_heatmap(
    ax, values, x_values, y_values, *, vmin: float, vmax: float, cmap="viridis",
    texts=None, xlabel="", ylabel="", colorbar_label="", title="", bad_colour="#d9d9d9",
):  # fmt: skip
    """Draw ``values`` (len(y), len(x)) as coloured cells on categorical axes, each cell's
    text (``texts``, same shape; default the value to 3 digits) in black or white by its
    background (:func:`text_colour`). NaN cells are ``bad_colour``. Returns the image."""
    import matplotlib as mpl

    grid = np.asarray(values, float)
    colormap = (mpl.colormaps[cmap] if isinstance(cmap, str) else cmap).with_extremes(
        bad=bad_colour
    )
    norm = mpl.colors.Normalize(vmin=vmin, vmax=vmax)
    image = ax.imshow(np.ma.masked_invalid(grid), origin="lower", cmap=colormap, norm=norm,
                      aspect="auto")  # fmt: skip
    ax.set_xticks(range(len(x_values)), [f"{v:g}" for v in x_values])
    ax.set_yticks(range(len(y_values)), [f"{v:g}" for v in y_values])
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    for j in range(grid.shape[0]):
        for i in range(grid.shape[1]):
            text = texts[j][i] if texts is not None else (
                "" if not np.isfinite(grid[j, i]) else f"{grid[j, i]:.3g}")  # fmt: skip
            if not text:
                continue
            background = (mpl.colors.to_rgb(bad_colour) if not np.isfinite(grid[j, i])
                          else colormap(norm(grid[j, i])))  # fmt: skip
            ax.text(i, j, text, ha="center", va="center", fontsize=8,
                    color=text_colour(background))  # fmt: skip
    bar = ax.figure.colorbar(image, ax=ax)
    bar.set_label(colorbar_label)
    return image


def grid_axes(cells: list[dict]) -> tuple[list[float], list[float]]:
    """Sorted distinct W_EI and W_IE values of grid cells (dicts with ``w_ei``, ``w_ie``)."""
    return sorted({float(c["w_ei"]) for c in cells}), sorted({float(c["w_ie"]) for c in cells})


def cell_means(cells: list[dict], key: str, wei: list, wie: list, scale: float = 1.0):
    """(len(wie), len(wei)) mean of ``key`` over each (W_EI, W_IE) cell's seeds (NaN: none
    stored), times ``scale``."""
    grid = np.full((len(wie), len(wei)), np.nan)
    for j, b in enumerate(wie):
        for i, a in enumerate(wei):
            vals = [float(c.get(key, np.nan)) for c in cells
                    if float(c["w_ei"]) == a and float(c["w_ie"]) == b]  # fmt: skip
            vals = [v for v in vals if np.isfinite(v)]
            if vals:
                grid[j, i] = np.mean(vals) * scale
    return grid


def nice_ceiling(x: float) -> float:
    """The smallest of 1, 2, 2.5, 5 x 10^k at or above ``x`` (> 0); 1 for ``x <= 0``."""
    if not np.isfinite(x) or x <= 0:
        return 1.0
    exponent = np.floor(np.log10(x))
    for step in (1.0, 2.0, 2.5, 5.0, 10.0):
        if step * 10**exponent >= x * (1 - 1e-12):
            return float(step * 10**exponent)
    return float(10 ** (exponent + 1))
