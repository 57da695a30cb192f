"""What every export shares: the optional extras, output paths and atomic writes.

Each target format lives behind an optional extra (``pip install 'ei-sim[nwb]'``, ``[neo]``,
``[xarray]``); :func:`require` imports a module of the extra or raises a one-line ValueError
naming it. Outputs are written to a temporary file in the destination folder and renamed
into place (:func:`atomic_output`), so a failed export leaves nothing behind and an existing
file is replaced only with ``force``.

The HDF5-based formats (NWB, NIX, netCDF) are built **in memory** where memory allows
(:func:`fits_in_memory`) and written out with plain file writes (:func:`write_image`): the
HDF5 library, which aborts or crashes the process when a disk fills under it, never writes
to the disk, and a full disk is one line like any other write error. Exports too large for
memory are written by their library to a temporary file after a check of the free space.
"""

from __future__ import annotations

import importlib
import os

from ei_sim.store.atomic import atomic_file, check_free_space, check_output_path, write_bytes
from ei_sim.validate import available_memory_bytes

TARGETS = ("nwb", "neo", "xarray")
MEMORY_SHARE = 0.25  # an export is built in memory when it takes less of what is available
MODULES_OF_TARGET = {
    "nwb": ("pynwb",),
    "neo": ("neo", "quantities"),
    "xarray": ("xarray", "h5netcdf"),
}
SUFFIX_OF_TARGET = {"nwb": ".nwb", "neo": ".nix", "xarray": ".nc"}
NEO_SUFFIXES = {".nix": "nix", ".pkl": "pickle", ".pickle": "pickle"}


def require(module: str, extra: str):
    """Import ``module`` of the optional extra ``extra``; ValueError (one line) when missing."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise ValueError(
            f"exporting to {extra} needs the optional extra {extra!r} (missing module "
            f"{module}: {err}); install it with: pip install 'ei-sim[{extra}]'"
        ) from None


def require_target(target: str, out: str) -> None:
    """Check that the extra of ``target`` (and, for a ``.nix`` output, nixio) is installed."""
    modules = MODULES_OF_TARGET[target]
    if target == "neo" and neo_format(out) == "nix":
        modules += ("nixio",)
    for module in modules:
        require(module, target)


def default_output(path: str, target: str) -> str:
    """``path`` with the target's suffix (a run directory gives ``RUN_DIR/run.<suffix>``)."""
    if os.path.isdir(path):
        return os.path.join(path, "run" + SUFFIX_OF_TARGET[target])
    return os.path.splitext(path)[0] + SUFFIX_OF_TARGET[target]


def check_output(out: str, source: str, force: bool) -> None:
    """ValueError (one line) when ``out`` cannot be written: a missing folder, the input file
    itself, or an existing file without ``force``."""
    check_output_path(out)
    if os.path.isdir(out):
        raise ValueError(f"--out {out} is a directory; give a file name")
    if os.path.exists(out) and os.path.samefile(out, source):
        raise ValueError(f"--out {out} is the input file; give another output path")
    if os.path.exists(out) and not force:
        raise ValueError(f"{out} already exists; use --force to replace it or --out another path")


def atomic_output(out: str):
    """A context manager yielding a temporary path beside ``out`` (same suffix) that replaces
    ``out`` on success; on any error the temporary is removed and ``out`` is left as it was
    (:func:`ei_sim.store.atomic.atomic_file`: the output's lock is held meanwhile)."""
    return atomic_file(out)


def fits_in_memory(estimated_bytes: float) -> bool:
    """Whether an export of about ``estimated_bytes`` may be built in memory."""
    return estimated_bytes < MEMORY_SHARE * available_memory_bytes()


def write_image(out: str, image) -> None:
    """Write the bytes of an export built in memory to ``out`` atomically (one-line errors,
    a full disk included; the free space is checked first)."""
    write_bytes(out, image)


def check_room(out: str, estimated_bytes: float) -> None:
    """ValueError (one line) when the folder of ``out`` lacks the room an export written by
    its library needs (about ``estimated_bytes``)."""
    check_free_space(out, estimated_bytes)


def neo_format(out: str) -> str:
    """Neo writer for an output path by its suffix: "nix" (``.nix``) or "pickle" (``.pkl``)."""
    suffix = os.path.splitext(out)[1].lower()
    if suffix not in NEO_SUFFIXES:
        raise ValueError(
            f"--out {out}: a Neo export is written as NIX (.nix) or pickle (.pkl); "
            "give one of these suffixes"
        )
    return NEO_SUFFIXES[suffix]
