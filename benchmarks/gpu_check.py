"""GPU check: a medium training epoch on the pure-JAX path and one epoch of a vmapped 5 x 5
medium grid, printed as one JSON object with the JAX device. Run it through
``benchmarks/gpu_check.sh``, which sets ``EI_SIM_NATIVE=0`` (the native kernels are CPU-only
XLA FFI targets) before JAX starts.

Each part trains ``--epochs`` epochs (default 2) through the trainer itself
(:func:`ei_sim.training.spiking.train` and :func:`~ei_sim.training.spiking.train_stacked`, the
grid's vmapped executor); the time of epoch ``k`` is the interval between the ends of epochs
``k - 1`` and ``k`` (evaluation, reference trial and file write included). The first epoch
holds the compilation, so ``epoch_s`` is the median of the later ones (with ``--epochs 1``,
only ``first_epoch_s`` is reported).

``--small`` (or ``GPU_CHECK_SMALL=1``) shrinks everything (tiny tier, 96 samples, a 2 x 2
grid) so that the check itself is tested on a CPU in seconds.

    python benchmarks/gpu_check.py [--small] [--epochs 2] [--grid 5] [--tier medium]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time


def epoch_times_s(marks_s: list[float], start_s: float) -> dict:
    """``first_epoch_s`` (compilation included) and ``epoch_s`` (median of the later epochs,
    None with one epoch) from the wall-clock marks taken at each epoch's end."""
    ends = [start_s, *marks_s]
    spans = [b - a for a, b in zip(ends, ends[1:], strict=False)]
    return {
        "first_epoch_s": spans[0] if spans else None,
        "epoch_s": statistics.median(spans[1:]) if len(spans) > 1 else None,
        "epochs": len(spans),
    }


def grid_axes(n: int) -> tuple[list[float], list[float]]:
    """(W_EI, W_IE) values of an n x n grid over the recipe's ranges 0..2 and 0..4."""
    step = 1.0 / (n - 1) if n > 1 else 0.0
    return [2.0 * k * step for k in range(n)], [4.0 * k * step for k in range(n)]


def setup(tier: str, epochs: int, n_samples: int | None):
    from ei_sim.models import get_model
    from ei_sim.training.config import TrainConfig
    from ei_sim.training.spiking import tier_model

    model = tier_model(get_model("ping"), tier)
    cfg = TrainConfig.for_tier(tier, epochs=epochs, n_samples=n_samples)
    if n_samples is not None:  # at least two batches
        batch = min(cfg.resolved().batch_size, n_samples // 2)
        cfg = TrainConfig.for_tier(tier, epochs=epochs, n_samples=n_samples, batch_size=batch)
    return model, cfg.resolved()


def one_training(tier: str, epochs: int, n_samples: int | None) -> dict:
    """A single training on the pure-JAX path; epoch times from :func:`epoch_times_s`."""
    from ei_sim.training.spiking import train

    model, cfg = setup(tier, epochs, n_samples)
    marks: list[float] = []
    with tempfile.TemporaryDirectory(prefix="ei-sim-gpu-check-") as tmp:
        start = time.perf_counter()
        train(model, cfg, os.path.join(tmp, "run"), progress=False,
              on_epoch=lambda *_: marks.append(time.perf_counter()))  # fmt: skip
    return {"tier": tier, "n_e": model.config.n_e, "batch_size": cfg.batch_size,
            "n_samples": cfg.n_samples, **epoch_times_s(marks, start)}  # fmt: skip


def vmapped_grid(tier: str, epochs: int, n_samples: int | None, n: int) -> dict:
    """An n x n (W_EI, W_IE) grid trained as one vmapped group (the grid's ``vmap``
    executor); epoch times from :func:`epoch_times_s`, per cell-epoch as well."""
    from ei_sim.training.spiking import train_stacked

    model, cfg = setup(tier, epochs, n_samples)
    w_ei, w_ie = grid_axes(n)
    models = [model.replace(w_ei_mean=a, w_ie_mean=b) for a in w_ei for b in w_ie]
    marks: list[float] = []
    with tempfile.TemporaryDirectory(prefix="ei-sim-gpu-check-") as tmp:
        dirs = [os.path.join(tmp, f"cell_{k}") for k in range(len(models))]
        start = time.perf_counter()
        train_stacked(models, cfg, dirs, resume=False,
                      after_epoch=lambda _: marks.append(time.perf_counter()))  # fmt: skip
    out = {"tier": tier, "grid": f"{n} x {n}", "cells": len(models),
           "batch_size": cfg.batch_size, "n_samples": cfg.n_samples,
           **epoch_times_s(marks, start)}  # fmt: skip
    if out["epoch_s"] is not None:
        out["s_per_cell_epoch"] = out["epoch_s"] / len(models)
    return out


def device_info() -> dict:
    import jax

    dev = jax.devices()[0]
    kind = getattr(dev, "device_kind", str(dev))
    return {"platform": dev.platform, "device": kind, "device_count": jax.device_count(),
            "jax": jax.__version__, "on_cpu": dev.platform == "cpu"}  # fmt: skip


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true",
                        default=os.environ.get("GPU_CHECK_SMALL", "") not in ("", "0"))  # fmt: skip
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--grid", type=int, default=None, help="n for the n x n grid (5)")
    parser.add_argument("--tier", default=None, help="tier (medium; tiny with --small)")
    args = parser.parse_args(argv)
    tier = args.tier or ("tiny" if args.small else "medium")
    n = args.grid or (2 if args.small else 5)
    n_samples = 96 if args.small else None
    native = os.environ.get("EI_SIM_NATIVE", "(unset)")
    result = {"bench": "gpu_check", "small": args.small, "ei_sim_native": native,
              **device_info()}  # fmt: skip
    if result["on_cpu"]:
        print("gpu_check: JAX runs on the CPU here (no CUDA jaxlib or no GPU): the figures "
              "below are CPU figures", file=sys.stderr, flush=True)  # fmt: skip
    t0 = time.perf_counter()
    parts = (
        ("train", lambda: one_training(tier, args.epochs, n_samples)),
        ("grid_vmap", lambda: vmapped_grid(tier, args.epochs, n_samples, n)),
    )
    for name, run in parts:
        try:
            result[name] = run()
        except Exception as err:  # noqa: BLE001 - reported in the JSON, the other part still runs
            result[name] = {"error": f"{type(err).__name__}: {err}"[:500]}
        print(f"gpu_check: {name} done after {time.perf_counter() - t0:.1f} s",
              file=sys.stderr, flush=True)  # fmt: skip
    result["total_s"] = time.perf_counter() - t0
    print(json.dumps(result), flush=True)
    return result


if __name__ == "__main__":
    main()
