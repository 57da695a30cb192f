"""Helpers of the tests that compare stores number for number."""

import h5py
import numpy as np


def store_numbers(store) -> dict:
    """Every number a grid store keeps of its cells (wall times excepted): cell attributes,
    per-epoch metrics and weights, by ``<cell>/<group>/<name>``."""
    out = {}
    with h5py.File(store) as fh:
        for name, cell in fh["cells"].items():
            for key, value in cell.attrs.items():
                if isinstance(value, int | float | np.number) and "wall" not in key:
                    out[f"{name}/{key}"] = float(value)
            for group in ("metrics", "weights"):
                for key, value in cell[group].items():
                    if "wall" not in key:
                        out[f"{name}/{group}/{key}"] = np.asarray(value)
    return out
