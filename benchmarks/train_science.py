"""The seed lab's central result on the medium (canonical) training tier, printed as JSON lines.

Three runs with seed 42: PING with budget off, PING with budget 0.2, COBA with budget 0.2.
For each: best test accuracy (and epoch), E and I rates on the test set, the reference
trial's rates and the gamma peak at the best epoch, and seconds per epoch. Expected from the
seed lab: PING/off >= 85 %; PING/0.2 keeps E in single-digit Hz with I active; COBA/0.2 loses
clearly more accuracy than PING/0.2.

    python benchmarks/train_science.py [--epochs 10] [--out runs/science]
"""

from __future__ import annotations

import argparse
import json
import os

import numpy as np

from ei_sim.models import get_model
from ei_sim.sim.parallel import use_cpu_cores
from ei_sim.training.config import TrainConfig
from ei_sim.training.spiking import tier_model, train

RUNS = (("ping", None), ("ping", 0.2), ("coba", 0.2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--tier", default="medium")
    parser.add_argument("--out", default="runs/science")
    args = parser.parse_args()
    use_cpu_cores()  # one device per core: each batch is split across them, as `ei-sim train`
    for name, budget in RUNS:
        run_dir = os.path.join(args.out, f"{name}_budget_{budget or 'off'}")
        cfg = TrainConfig.for_tier(args.tier, budget=budget, epochs=args.epochs)
        resume = os.path.exists(os.path.join(run_dir, "run.h5"))
        result = train(tier_model(get_model(name), args.tier), cfg, run_dir, resume=resume,
                       progress=False)  # fmt: skip
        m, b = result.metrics, result.best_epoch - 1
        gamma, walls = m["gamma_peak_Hz"][b], m["epoch_wall_s"]
        print(json.dumps({
            "model": name, "budget": "off" if budget is None else budget,
            "epochs": len(m["test_accuracy"]), "best_epoch": result.best_epoch,
            "best_accuracy": result.best_accuracy, "test_rate_e_Hz": float(m["test_rate_e_Hz"][b]),
            "test_rate_i_Hz": float(m["test_rate_i_Hz"][b]),
            "ref_rate_e_Hz": float(m["ref_rate_e_Hz"][b]),
            "ref_rate_i_Hz": float(m["ref_rate_i_Hz"][b]),
            "gamma_peak_Hz": float(gamma) if np.isfinite(gamma) else None,
            "seconds_per_epoch": float(np.mean(walls[1:] if len(walls) > 1 else walls)),
            "accuracy_per_epoch": [round(float(a), 4) for a in m["test_accuracy"]],
        }), flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
