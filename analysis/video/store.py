"""Snapshots in HDF5: written inside a run's (or a grid cell's) file, read back read-only.

The layout of one snapshot group is given in :mod:`analysis.video.schema`.
"""

from __future__ import annotations

import os

import h5py
import numpy as np

from analysis.video.schema import (
    ARRAY_FIELDS,
    ATTR_FIELDS,
    NO_SNAPSHOTS,
    SNAPSHOT_GROUP,
    Snapshot,
)
from ei_sim.storage import read_attrs, write_attrs


def _write_events(group, spikes: np.ndarray) -> None:
    steps, cells = np.nonzero(spikes)
    for key, data in (("step", steps), ("cell", cells)):
        group.create_dataset(
            key, data=data.astype(np.int32), compression="gzip" if data.size else None
        )
    group.attrs["n_steps"], group.attrs["n_cells"] = spikes.shape


def _read_events(group) -> np.ndarray:
    spikes = np.zeros((int(group.attrs["n_steps"]), int(group.attrs["n_cells"])), dtype=bool)
    spikes[group["step"][()], group["cell"][()]] = True
    return spikes


def write_snapshot(h5_group, snapshot: Snapshot) -> None:
    """Store ``snapshot`` as ``snapshots/epoch_NNNN`` under ``h5_group`` (a file or a group);
    an existing snapshot of the same epoch is replaced."""
    snapshots = h5_group.require_group(SNAPSHOT_GROUP)
    name = f"epoch_{int(snapshot.epoch):04d}"
    if name in snapshots:
        del snapshots[name]
    group = snapshots.create_group(name)
    write_attrs(group, {key: getattr(snapshot, key) for key in ATTR_FIELDS})
    for key in ARRAY_FIELDS:
        group.create_dataset(key, data=np.asarray(getattr(snapshot, key)))
    _write_events(group.create_group("spikes_e"), snapshot.spikes_e)
    _write_events(group.create_group("spikes_i"), snapshot.spikes_i)
    weights = group.create_group("weights")
    for wname, (counts, edges) in snapshot.weight_hists.items():
        weights.create_dataset(f"{wname}/counts", data=np.asarray(counts))
        weights.create_dataset(f"{wname}/bin_edges", data=np.asarray(edges))


def _read_snapshot(group) -> Snapshot:
    fields = read_attrs(group)
    fields = {key: fields[key] for key in ATTR_FIELDS if key in fields}
    fields.update({key: group[key][()] for key in ARRAY_FIELDS})
    fields["spikes_e"] = _read_events(group["spikes_e"])
    fields["spikes_i"] = _read_events(group["spikes_i"])
    hists = group["weights"]
    fields["weight_hists"] = {
        name: (hists[name]["counts"][()], hists[name]["bin_edges"][()]) for name in hists
    }
    return Snapshot(**fields)


def read_snapshots(h5_file_or_group) -> list[Snapshot]:
    """All snapshots under a file, a group or a path (opened read-only), sorted by epoch."""
    if isinstance(h5_file_or_group, str | os.PathLike):
        with h5py.File(h5_file_or_group, "r") as fh:
            return read_snapshots(fh)
    group = h5_file_or_group.get(SNAPSHOT_GROUP)
    if group is None or len(group) == 0:
        raise ValueError(NO_SNAPSHOTS)
    return sorted((_read_snapshot(group[name]) for name in group), key=lambda s: s.epoch)
