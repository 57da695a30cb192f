"""The spike-list layout: one group per population, one entry per spike.

A group ``spikes/<pop>`` of a simulate file holds the datasets of :data:`EVENT_FIELDS`:
``step`` (int64, exact for any run length), ``time_ms`` (float64, ``step * dt_ms``),
``trial`` (int32) and ``index`` (int32, the cell within the population), with attributes
``n_cells`` and ``n_trials`` (and ``dt_ms`` where streamed). :mod:`ei_sim.store.stream` fills
them chunk by chunk; :func:`write_spike_lists` writes a whole raster at once.
"""

from __future__ import annotations

import numpy as np

EVENT_FIELDS = (("step", np.int64), ("time_ms", np.float64), ("trial", np.int32),
                ("index", np.int32))  # fmt: skip


def write_spike_lists(group, spikes: np.ndarray, dt_ms: float) -> None:
    """Store a (T, B, N) boolean raster as event lists (the layout above)."""
    t, b, n = np.nonzero(spikes)
    group.create_dataset("step", data=t.astype(np.int64), compression="gzip")
    group.create_dataset("time_ms", data=t * np.float64(dt_ms), compression="gzip")
    group.create_dataset("trial", data=b.astype(np.int32), compression="gzip")
    group.create_dataset("index", data=n.astype(np.int32), compression="gzip")
    group.attrs["n_cells"] = spikes.shape[2]
    group.attrs["n_trials"] = spikes.shape[1]
