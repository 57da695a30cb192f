"""Export grid stores and sweep files as xarray Datasets, written as netCDF (extra ``xarray``).

A **grid store** becomes a Dataset over the dimensions ``w_ei``, ``w_ie`` (the mean E->I and
I->E weights, uS per spike), ``seed`` and ``epoch`` (1-based), so that
``ds.sel(w_ei=1, w_ie=2)`` picks one cell: per cell ``best_accuracy``, ``final_accuracy``,
``best_epoch``, ``rate_e_Hz``, ``rate_i_Hz``, ``gamma_peak_Hz`` and ``label`` over
(w_ei, w_ie, seed), and every per-epoch metric (``test_accuracy``, ``train_loss``, ...) over
(w_ei, w_ie, seed, epoch). A (w_ei, w_ie, seed) cell the store lacks (not run yet, or off the
diagonal of a ``--diagonal`` grid) is NaN (label ""); epochs past a cell's last are NaN.
The weights are not exported.

A **sweep file** becomes a Dataset over ``coupling_scale`` (the multiplier of the trained
W_EI or W_IE, attribute ``coupling_target``; 1 for a scale sweep) and ``input_scale`` (the
multiplier of the trained W_in): ``accuracy``, ``rate_e_Hz``, ``rate_i_Hz``.

Every variable and coordinate has ``units`` and ``long_name`` attributes; the Dataset's
attributes are the file's root attributes (settings, provenance) plus ``source``. The file
is written through h5netcdf, so ``xarray.open_dataset(path)`` reads it without ei-sim.
"""

from __future__ import annotations

import numpy as np

from analysis.export.common import atomic_output, require
from analysis.export.reader import read_grid, read_sweep

CELL_VARIABLES = {
    "best_accuracy": ("1", "best test accuracy over the epochs (fraction)"),
    "final_accuracy": ("1", "test accuracy after the last epoch (fraction)"),
    "best_epoch": ("1", "epoch of the best test accuracy (1-based)"),
    "rate_e_Hz": ("Hz", "mean E rate on the test set at the best epoch"),
    "rate_i_Hz": ("Hz", "mean I rate on the test set at the best epoch"),
    "gamma_peak_Hz": ("Hz", "gamma peak of the reference trial at the best epoch (NaN: none)"),
}
SWEEP_VARIABLES = {
    "accuracy": ("1", "test accuracy (fraction)"),
    "rate_e_Hz": ("Hz", "mean E rate on the test set"),
    "rate_i_Hz": ("Hz", "mean I rate on the test set"),
}


def metric_units(name: str) -> str:
    """Units of a per-epoch metric from its name: Hz, s, count or 1 (dimensionless)."""
    if name.endswith("_Hz"):
        return "Hz"
    if name.endswith("_s"):
        return "s"
    if name == "skipped_steps":
        return "count"
    return "1"


def _attrs(attrs: dict, source: str) -> dict:
    """netCDF-safe attributes: numbers and strings (booleans as 0/1, None as "none")."""
    out = {}
    for key, value in attrs.items():
        if isinstance(value, bool | np.bool_):
            value = int(value)
        elif value is None:
            value = "none"
        out[key] = value
    return {**out, "source": source}


def grid_dataset(path: str):
    """The xarray Dataset of a grid store (module docstring)."""
    xr = require("xarray", "xarray")
    grid = read_grid(path)
    cells = grid["cells"]
    if not cells:
        raise ValueError(f"{path} holds no cells yet; run the grid first")
    axes = {k: np.unique([float(c["attrs"][k]) for c in cells]) for k in ("w_ei", "w_ie")}
    seeds = np.unique([int(c["attrs"]["seed"]) for c in cells])
    n_epochs = max((len(m) for c in cells for m in c["metrics"].values()), default=0)
    shape = (len(axes["w_ei"]), len(axes["w_ie"]), len(seeds))
    cell_values = {k: np.full(shape, np.nan) for k in CELL_VARIABLES}
    labels = np.full(shape, "", dtype=object)
    metric_names = sorted({k for c in cells for k in c["metrics"]})
    metrics = {k: np.full((*shape, n_epochs), np.nan) for k in metric_names}
    for cell in cells:
        a = cell["attrs"]
        at = (
            np.searchsorted(axes["w_ei"], float(a["w_ei"])),
            np.searchsorted(axes["w_ie"], float(a["w_ie"])),
            np.searchsorted(seeds, int(a["seed"])),
        )
        for key in CELL_VARIABLES:
            cell_values[key][at] = _number(a.get(key))
        labels[at] = str(a.get("label", ""))
        for key, values in cell["metrics"].items():
            metrics[key][at][: len(values)] = values
    dims = ("w_ei", "w_ie", "seed")
    data = {k: (dims, cell_values[k], {"units": u, "long_name": n})
            for k, (u, n) in CELL_VARIABLES.items()}  # fmt: skip
    data["label"] = (dims, labels.astype(str), {"units": "1", "long_name": "basin label"})
    for key, values in metrics.items():
        data[key] = ((*dims, "epoch"), values, {"units": metric_units(key),
                                                "long_name": f"{key} per epoch"})  # fmt: skip
    coords = {
        "w_ei": ("w_ei", axes["w_ei"], {"units": "uS", "long_name": "mean E->I weight W_EI"}),
        "w_ie": ("w_ie", axes["w_ie"], {"units": "uS", "long_name": "mean I->E weight W_IE"}),
        "seed": ("seed", seeds, {"units": "1", "long_name": "training seed"}),
        "epoch": ("epoch", np.arange(1, n_epochs + 1), {"units": "1",
                                                        "long_name": "training epoch (1-based)"}),
    }  # fmt: skip
    return xr.Dataset(data, coords=coords, attrs=_attrs(grid["attrs"], str(path)))


def _number(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def sweep_dataset(path: str):
    """The xarray Dataset of a scale or coupling sweep file (module docstring)."""
    xr = require("xarray", "xarray")
    sweep = read_sweep(path)
    scales = np.asarray(sweep["scales"], float)
    coupling = np.asarray(sweep.get("coupling_scales", [1.0]), float)
    target = str(sweep["attrs"].get("coupling_target", "none"))
    dims = ("coupling_scale", "input_scale")
    data = {k: (dims, np.asarray(sweep[k], float), {"units": u, "long_name": n})
            for k, (u, n) in SWEEP_VARIABLES.items() if k in sweep}  # fmt: skip
    what = "none: the trained weights" if target == "none" else f"the trained {target}"
    coords = {
        "coupling_scale": ("coupling_scale", coupling, {"units": "1",
                           "long_name": f"multiplier of {what}"}),
        "input_scale": ("input_scale", scales, {"units": "1",
                        "long_name": "multiplier of the trained W_in"}),
    }  # fmt: skip
    return xr.Dataset(data, coords=coords, attrs=_attrs(sweep["attrs"], str(path)))


def write_netcdf(dataset, out: str) -> None:
    """Write ``dataset`` as netCDF-4 through h5netcdf at ``out`` (atomically)."""
    require("h5netcdf", "xarray")
    with atomic_output(out) as tmp:
        dataset.to_netcdf(tmp, engine="h5netcdf")
