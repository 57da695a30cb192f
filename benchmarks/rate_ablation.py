"""Ablation of the rate model: Dale projection and spectral regulariser on/off; prints JSON.

    python benchmarks/rate_ablation.py [--tier tiny|medium|long] [--seed 42]

Each variant trains from the same initialisation (seed) on the same split; reported per
variant: best/final test accuracy, final Perron roots of W_EE and W_II, the last LDS
verdict and margin, the fraction of LDS checks certified, the most negative recurrent
weight (negative only without the projection), and seconds.
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from ei_sim.rate.network import WCConfig
from ei_sim.rate.train import TIERS, RateTrainConfig, train_rate

VARIANTS = {
    "dale+spectral": {"dale": True, "spectral_weight": 1.0},
    "dale": {"dale": True, "spectral_weight": 0.0},
    "spectral": {"dale": False, "spectral_weight": 1.0},
    "neither": {"dale": False, "spectral_weight": 0.0},
}


def run_variant(name: str, tier: str, seed: int, config: WCConfig) -> dict:
    cfg = RateTrainConfig.for_tier(tier, seed=seed, **VARIANTS[name])
    result = train_rate(config, cfg, progress=False)
    h = result.history
    return {
        "best_accuracy": round(result.best_accuracy, 4),
        "final_accuracy": round(float(h["accuracy"][-1]), 4),
        "rho_ee": round(float(h["rho_ee"][-1]), 4),
        "rho_ii": round(float(h["rho_ii"][-1]), 4),
        "lds_stable_last": bool(h["lds_stable"][-1]),
        "lds_margin_last_per_ms": float(h["lds_margin"][-1]),
        "lds_certified_fraction": float(np.mean(h["lds_check_stable"])),
        "min_recurrent_weight": float(np.min(h["min_recurrent_weight"])),
        "seconds": round(result.seconds, 1),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tier", choices=tuple(TIERS), default="medium")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--gain-ee", type=float, default=0.5, help="initial rho(W_EE) (0.5)")
    args = parser.parse_args(argv)
    config = WCConfig(gain_ee=args.gain_ee)
    report = {name: run_variant(name, args.tier, args.seed, config) for name in VARIANTS}
    print(json.dumps({"tier": args.tier, "seed": args.seed, "variants": report}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
