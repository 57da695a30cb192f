"""Paths to the golden files of data/golden/ (written by data/make_golden.py, described in
data/README.md) and a copy of the tiny run laid out as a run directory."""

from __future__ import annotations

import os
import shutil

GOLDEN_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "golden")
TINY_RUN = os.path.join(GOLDEN_DIR, "tiny_run.h5")  # run.h5 of a 1-epoch tiny-tier training
GRID_2X2 = os.path.join(GOLDEN_DIR, "grid_2x2.h5")  # W_EI in (0, 2) x W_IE in (0, 4), 1 epoch
SCALE_SWEEP = os.path.join(GOLDEN_DIR, "scale_sweep.h5")  # 24 W_in scales of TINY_RUN
COUPLING_SWEEP = os.path.join(GOLDEN_DIR, "coupling_sweep.h5")  # W_IE x (0.5, 2), 3 scales
SIMULATE = os.path.join(GOLDEN_DIR, "simulate.h5")  # PING, 50 ms, digit 3, seed 0


def copy_of(path: str, folder) -> str:
    """A writable copy of a golden file in ``folder`` (tests never write into data/)."""
    os.makedirs(folder, exist_ok=True)
    out = os.path.join(str(folder), os.path.basename(path))
    shutil.copyfile(path, out)
    return out


def tiny_run_dir(folder) -> str:
    """A run directory (``<folder>/run.h5``) holding a copy of the golden tiny run."""
    os.makedirs(folder, exist_ok=True)
    shutil.copyfile(TINY_RUN, os.path.join(str(folder), "run.h5"))
    return str(folder)
