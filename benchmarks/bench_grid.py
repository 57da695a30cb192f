"""Wall time of a (W_EI, W_IE) grid: serial vs Dask LocalCluster vs vmapped.

Each executor trains the same grid into a fresh store, in its own process, in the same run;
prints one JSON line per executor with the wall time, the time per cell-epoch and the ratio to
the serial run. Default: the 5 x 5 tiny-tier grid for 2 epochs, then a 2 x 1 medium-tier grid
(the recipe's size) for 1 epoch, which is what says how the executors compare at full size.

    python benchmarks/bench_grid.py [--wei 0..2] [--wie 0..4] [--epochs 2] [--out DIR]
        [--medium-wei 0,1] [--medium-wie 2] [--medium-epochs 1] [--no-medium] [--no-tiny]
        [--executors serial,dask,vmap]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time


def cells(spec: str) -> int:
    """Values in a --wei/--wie spec: a comma list or lo..hi (5 points)."""
    return 5 if ".." in spec else len(spec.split(","))


def run_grid(label, tier, wei, wie, epochs, out, executors=("serial", "dask", "vmap")):
    serial = None
    n_cells = cells(wei) * cells(wie)
    for executor in executors:
        store = os.path.join(out, f"{label}_{executor}.h5")
        cmd = [sys.executable, "-m", "ei_sim.cli", "grid", "--wei", wei, "--wie", wie,
               "--tier", tier, "--epochs", str(epochs), "--executor", executor,
               "--out", store]  # fmt: skip
        t0 = time.perf_counter()
        done = subprocess.run(cmd, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        row = {"bench": f"grid_{label}", "executor": executor, "grid": f"{wei} x {wie}",
               "tier": tier, "cells": n_cells, "epochs": int(epochs), "wall_s": wall,
               "s_per_cell_epoch": wall / (n_cells * int(epochs)),
               "ok": done.returncode == 0}  # fmt: skip
        if executor == "serial":
            serial = wall
        if serial:
            row["vs_serial"] = wall / serial
        packing = [ln for ln in done.stdout.splitlines() + done.stderr.splitlines()
                   if ln.startswith("vmap:")]  # fmt: skip
        if packing:
            row["packing"] = packing[0]
        if done.returncode != 0:
            row["error"] = (done.stderr.strip().splitlines() or [""])[-1][:300]
        print(json.dumps(row), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wei", default="0..2")
    parser.add_argument("--wie", default="0..4")
    parser.add_argument("--epochs", default="2")
    parser.add_argument("--medium-wei", default="0,1")
    parser.add_argument("--medium-wie", default="2")
    parser.add_argument("--medium-epochs", default="1")
    parser.add_argument("--no-tiny", action="store_true")
    parser.add_argument("--no-medium", action="store_true")
    parser.add_argument("--executors", default="serial,dask,vmap")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    executors = tuple(args.executors.split(","))
    out = args.out or tempfile.mkdtemp(prefix="ei-sim-grid-bench-")
    os.makedirs(out, exist_ok=True)
    if not args.no_tiny:
        run_grid("tiny", "tiny", args.wei, args.wie, args.epochs, out, executors)
    if not args.no_medium:
        run_grid(
            "medium", "medium", args.medium_wei, args.medium_wie, args.medium_epochs, out, executors
        )


if __name__ == "__main__":
    main()
