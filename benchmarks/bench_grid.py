"""Wall time of a tiny-tier (W_EI, W_IE) grid: serial vs Dask LocalCluster vs vmapped.

Each executor trains the same grid (default 5 x 5, tiny tier) into a fresh store, in its own
process, in the same run; prints one JSON line per executor with the wall time and the ratio
to the serial run.

    python benchmarks/bench_grid.py [--wei 0..2] [--wie 0..4] [--epochs 2] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wei", default="0..2")
    parser.add_argument("--wie", default="0..4")
    parser.add_argument("--epochs", default="2")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    out = args.out or tempfile.mkdtemp(prefix="ei-sim-grid-bench-")
    serial = None
    for executor in ("serial", "dask", "vmap"):
        store = os.path.join(out, f"{executor}.h5")
        cmd = [sys.executable, "-m", "ei_sim.cli", "grid", "--wei", args.wei, "--wie", args.wie,
               "--tier", "tiny", "--epochs", args.epochs, "--executor", executor, "--out", store]  # fmt: skip
        t0 = time.perf_counter()
        done = subprocess.run(cmd, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        row = {"bench": "grid_tiny", "executor": executor, "grid": f"{args.wei} x {args.wie}",
               "epochs": int(args.epochs), "wall_s": wall, "ok": done.returncode == 0}  # fmt: skip
        if executor == "serial":
            serial = wall
        row["vs_serial"] = wall / serial
        if done.returncode != 0:
            row["error"] = (done.stderr.strip().splitlines() or [""])[-1][:300]
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
