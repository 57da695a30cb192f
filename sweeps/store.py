"""The HDF5 store of a training grid, written atomically one finished cell at a time.

Layout: root attributes ``kind = "grid"``, the sweep's settings (``grid.*``) and provenance;
one group ``cells/<name>`` per finished cell (``name = wei<X>__wie<Y>__seed<S>``) with
attributes ``w_ei, w_ie, seed, best_accuracy, final_accuracy, best_epoch, rate_e_Hz,
rate_i_Hz, gamma_peak_Hz, label``, datasets ``metrics/<name>`` (per epoch) and the best
weights ``weights/<block>``.
"""

from __future__ import annotations

import os

import h5py
import numpy as np

from ei_sim.storage import atomic_h5, provenance, read_attrs, write_attrs
from sweeps.ranges import format_value

KIND = "grid"


def cell_name(w_ei: float, w_ie: float, seed: int) -> str:
    return f"wei{format_value(w_ei)}__wie{format_value(w_ie)}__seed{seed}"


def resumable_cells(path: str, settings: dict, force: bool) -> set[str] | None:
    """The finished cells of an existing store made with ``settings`` (None: no store, or
    one that ``force`` starts anew); ValueError for another kind of file, or other settings
    without ``force``. Reads only."""
    if not os.path.exists(path):
        return None
    try:
        with h5py.File(path, "r") as fh:
            attrs = read_attrs(fh)
            done = set(fh["cells"]) if "cells" in fh else set()
    except OSError as err:
        raise ValueError(f"store {path} is unreadable: {err}") from None
    if attrs.get("kind") != KIND:
        raise ValueError(f"{path} is not a grid store (kind={attrs.get('kind')!r})")
    diffs = [k for k, v in settings.items() if str(attrs.get(k)) != str(v)]
    if not diffs:
        return done
    if not force:
        raise ValueError(
            f"{path} was made with different settings ({', '.join(diffs[:4])}); "
            "use another --out or --force to start it anew"
        )
    return None


def open_or_create(path: str, settings: dict, force: bool) -> set[str]:
    """Create the store, or check that an existing one has the same settings; return the
    names of its finished cells."""
    done = resumable_cells(path, settings, force)
    if done is not None:
        return done
    with atomic_h5(path) as fh:
        write_attrs(fh, {"kind": KIND, **settings, **provenance()})
        fh.create_group("cells")
    return set()


def add_cell(path, name, summary, metrics, weights, run_dir=None) -> None:
    """Copy the store with one more cell and rename it into place; the cell's video
    snapshots (if its run recorded them) come along."""
    with atomic_h5(path, mode_copy_from=path) as fh:
        if name in fh["cells"]:
            del fh["cells"][name]
        group = fh["cells"].create_group(name)
        write_attrs(group, summary)
        for key, values in metrics.items():
            group.create_dataset(f"metrics/{key}", data=np.asarray(values, np.float64))
        for key, array in weights.items():
            group.create_dataset(f"weights/{key}", data=np.asarray(array), compression="gzip")
        run_file = None if run_dir in (None, "none") else os.path.join(run_dir, "run.h5")
        if run_file and os.path.exists(run_file):
            with h5py.File(run_file, "r") as run:
                if "snapshots" in run:
                    run.copy(run["snapshots"], group, "snapshots")


def read_cells(path: str) -> list[dict]:
    with h5py.File(path, "r") as fh:
        return [read_attrs(fh["cells"][name]) | {"name": name} for name in sorted(fh["cells"])]
