"""Export grid stores and sweep files as xarray Datasets, written as netCDF (extra ``xarray``).

A **grid store** becomes a Dataset over the dimensions ``w_ei``, ``w_ie`` (the mean E->I and
I->E weights, uS per spike), ``seed`` and ``epoch`` (1-based), so that
``ds.sel(w_ei=1, w_ie=2)`` picks one cell: per cell ``best_accuracy``, ``final_accuracy``,
``best_epoch``, ``rate_e_Hz``, ``rate_i_Hz``, ``gamma_peak_Hz``, ``gamma_rhythmic`` (the gamma
verdict, NaN in stores written before it existed) and ``label`` over
(w_ei, w_ie, seed), and every per-epoch metric (``test_accuracy``, ``train_loss``, ...;
``gamma_peak_Hz_per_epoch`` beside the best epoch's ``gamma_peak_Hz``) over
(w_ei, w_ie, seed, epoch). A (w_ei, w_ie, seed) cell the store lacks (not run yet, or off the
diagonal of a ``--diagonal`` grid) is NaN (label ""); epochs past a cell's last are NaN.
The weights are not exported.

A **sweep file** becomes a Dataset over ``coupling_scale`` (the multiplier of the trained
W_EI or W_IE, attribute ``coupling_target``; 1 for a scale sweep) and ``input_scale`` (the
multiplier of the trained W_in): ``accuracy``, ``rate_e_Hz``, ``rate_i_Hz``.

Every variable and coordinate has ``units`` and ``long_name`` attributes; the Dataset's
attributes are the file's root attributes (settings, provenance) plus ``source``, except that
the source's ``kind`` and ``schema_version`` are stored as ``source_kind`` and
``source_schema_version``: an export carries no ``kind``, so no reader takes it for the store
it came from. The file is written through h5netcdf, so ``xarray.open_dataset(path)`` reads it
without ei-sim.
"""

from __future__ import annotations

import numpy as np

from ei_sim.analysis.export.common import atomic_output, require, write_image
from ei_sim.analysis.export.reader import read_grid, read_sweep

CELL_VARIABLES = {
    "best_accuracy": ("1", "best test accuracy over the epochs (fraction)"),
    "final_accuracy": ("1", "test accuracy after the last epoch (fraction)"),
    "best_epoch": ("1", "epoch of the best test accuracy (1-based)"),
    "rate_e_Hz": ("Hz", "mean E rate on the test set at the best epoch"),
    "rate_i_Hz": ("Hz", "mean I rate on the test set at the best epoch"),
    "gamma_peak_Hz": ("Hz", "gamma peak of the test set at the best epoch (NaN: none)"),
    "gamma_rhythmic": (
        "1",
        "gamma verdict of the reference trial at the best epoch: 1 rhythm, "
        "0 none, NaN not stored (surrogate test, docs/gamma.md)",
    ),
    "label": ("1", "basin label (no-loop, stretched-COBA or PING)"),
}
GRID_DIMS = ("w_ei", "w_ie", "seed")
GRID_COORDINATES = {
    "w_ei": ("uS", "mean E->I weight W_EI"),
    "w_ie": ("uS", "mean I->E weight W_IE"),
    "seed": ("1", "training seed"),
    "epoch": ("1", "training epoch (1-based)"),
}
SWEEP_VARIABLES = {
    "accuracy": ("1", "test accuracy (fraction)"),
    "rate_e_Hz": ("Hz", "mean E rate on the test set"),
    "rate_i_Hz": ("Hz", "mean I rate on the test set"),
}


def metric_name(name: str) -> str:
    """Variable name of a per-epoch metric: its own, or ``<name>_per_epoch`` where a cell
    summary has that name (``gamma_peak_Hz``)."""
    return f"{name}_per_epoch" if name in CELL_VARIABLES else name


def metric_units(name: str) -> str:
    """Units of a per-epoch metric from its name: Hz, s, count or 1 (dimensionless)."""
    name = name.removesuffix("_per_epoch")
    if name.endswith("_Hz"):
        return "Hz"
    if name.endswith("_s"):
        return "s"
    if name == "skipped_steps":
        return "count"
    return "1"


RENAMED_ATTRS = {"kind": "source_kind", "schema_version": "source_schema_version"}


def _attrs(attrs: dict, source: str) -> dict:
    """netCDF-safe attributes: numbers and strings (booleans as 0/1, None as "none"); the
    source's ``kind`` and ``schema_version`` renamed (:data:`RENAMED_ATTRS`)."""
    out = {}
    for key, value in attrs.items():
        key = RENAMED_ATTRS.get(key, key)
        if isinstance(value, bool | np.bool_):
            value = int(value)
        elif value is None:
            value = "none"
        out[key] = value
    return {**out, "source": source}


def _grid_coordinates(cells: list[dict]) -> dict:
    """Sorted unique w_ei, w_ie and seed values of the cells, and epochs 1..longest run."""
    n_epochs = max((len(m) for c in cells for m in c["metrics"].values()), default=0)
    return {
        "w_ei": np.unique([float(c["attrs"]["w_ei"]) for c in cells]),
        "w_ie": np.unique([float(c["attrs"]["w_ie"]) for c in cells]),
        "seed": np.unique([int(c["attrs"]["seed"]) for c in cells]),
        "epoch": np.arange(1, n_epochs + 1),
    }


def _grid_arrays(cells: list[dict], coords: dict) -> dict:
    """{name: array} over (w_ei, w_ie, seed[, epoch]); NaN (label "") where a cell is absent."""
    shape = tuple(len(coords[k]) for k in GRID_DIMS)
    arrays = {k: np.full(shape, np.nan) for k in CELL_VARIABLES if k != "label"}
    arrays["label"] = np.full(shape, "", dtype=object)
    for name in sorted({k for c in cells for k in c["metrics"]}):
        arrays[metric_name(name)] = np.full((*shape, len(coords["epoch"])), np.nan)
    for cell in cells:
        a = cell["attrs"]
        at = tuple(int(np.searchsorted(coords[k], float(a[k]))) for k in GRID_DIMS)
        for key in CELL_VARIABLES:
            arrays[key][at] = str(a.get(key, "")) if key == "label" else _number(a.get(key))
        for key, values in cell["metrics"].items():
            arrays[metric_name(key)][at][: len(values)] = values
    arrays["label"] = arrays["label"].astype(str)
    return arrays


def grid_dataset(path: str):
    """The xarray Dataset of a grid store (module docstring)."""
    xr = require("xarray", "xarray")
    grid = read_grid(path)
    if not grid["cells"]:
        raise ValueError(f"{path} holds no cells yet; run the grid first")
    coords = _grid_coordinates(grid["cells"])
    data = {}
    for key, values in _grid_arrays(grid["cells"], coords).items():
        units, long_name = CELL_VARIABLES.get(key, (metric_units(key), f"{key} per epoch"))
        dims = GRID_DIMS if values.ndim == 3 else (*GRID_DIMS, "epoch")
        data[key] = (dims, values, {"units": units, "long_name": long_name})
    coords = {k: (k, v, dict(zip(("units", "long_name"), GRID_COORDINATES[k], strict=True)))
              for k, v in coords.items()}  # fmt: skip
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
    """Write ``dataset`` as netCDF-4 through h5netcdf at ``out`` (atomically; built in memory,
    :mod:`ei_sim.analysis.export.common`, where this xarray can)."""
    require("h5netcdf", "xarray")
    try:
        image = dataset.to_netcdf(engine="h5netcdf")  # the file's bytes, built in memory
    except (TypeError, ValueError, NotImplementedError):
        image = None  # an xarray that writes netCDF-4 to files only
    if image is not None:
        write_image(out, image)
        return
    with atomic_output(out) as tmp:
        dataset.to_netcdf(tmp, engine="h5netcdf")
