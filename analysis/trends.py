"""Is a quantity still moving? The trend of the last epochs of a metric's history.

A basin label is only as settled as the I rate behind it: a cell whose I rate is still
falling at the end of its training may yet cross the label rule's threshold. Over the last
``window`` epochs (default 5) of a history ``x``::

    slope  = least-squares slope of x over those epochs        (units per epoch)
    change = slope * (window - 1)                              (across the window)
    trending  iff  |change| > max(rel * mean(|x|), floor)      (defaults rel 0.2, floor 0.1)

i.e. the rate moved by more than a fifth of its level (and more than 0.1 Hz) over the
window. ``"falling"``/``"rising"`` give the direction; ``None``: settled (or fewer than three
epochs, when nothing can be said).
"""

from __future__ import annotations

import numpy as np

WINDOW = 5
RELATIVE = 0.2
FLOOR = 0.1


def trend(history, window: int = WINDOW, rel: float = RELATIVE, floor: float = FLOOR) -> str | None:
    """``"rising"``, ``"falling"`` or None (settled) for the last ``window`` values."""
    x = np.asarray(history, float)
    x = x[np.isfinite(x)][-window:]
    if x.size < 3:
        return None
    slope = float(np.polyfit(np.arange(x.size), x, 1)[0])
    change = slope * (x.size - 1)
    if abs(change) <= max(rel * float(np.mean(np.abs(x))), floor):
        return None
    return "rising" if change > 0 else "falling"


def settled_label(label: str, i_rates_Hz, **kwargs) -> str:
    """``label`` with ``" (I falling)"`` or ``" (I rising)"`` when the I rate still trends."""
    direction = trend(i_rates_Hz, **kwargs)
    return label if direction is None else f"{label} (I {direction})"
