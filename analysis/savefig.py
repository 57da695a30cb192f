"""Figures written atomically: a figure is saved to a temporary file beside its destination,
checked to be a whole image, and renamed into place (:func:`ei_sim.store.atomic.atomic_file`),
so a full disk or a kill never leaves a truncated or empty figure over a good one."""

from __future__ import annotations

import os

from ei_sim.store.atomic import atomic_file
from ei_sim.store.media import file_problem


def save_figure(fig, path: str, dpi: int = 110, close: bool = True) -> str:
    """Save the matplotlib figure ``fig`` at ``path`` (format from its suffix, PNG by
    default) atomically, then close it; return ``path``. ValueError (one line naming
    ``path``) when it cannot be written; the previous file at ``path`` then stays."""
    fmt = os.path.splitext(path)[1].lstrip(".").lower() or "png"
    try:
        with atomic_file(path, check=file_problem) as tmp:
            fig.savefig(tmp, format=fmt, dpi=dpi)
    finally:
        if close:
            import matplotlib.pyplot as plt

            plt.close(fig)
    return path
