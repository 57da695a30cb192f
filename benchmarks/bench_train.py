"""Training benchmark (medium tier: N_E 1024, T 200 ms, dt 0.1 ms), printed as JSON lines.

Each configuration runs in its own process (so peak memory is its own):

* ``ei-sim``: the trainer's step: event-driven input, event-driven recurrent forward (the
  native kernel when it builds, ``propagation="auto"``), event-driven weight gradients, the
  hand-written adjoint of the membrane/spike update, chunked ``jax.checkpoint`` (50 steps),
  the batch split over one CPU device per core (:mod:`ei_sim.parallel`);
* ``ei-sim-1-device``: the same on one device (XLA's threads inside the step only);
* ``ei-sim-xla-cells``: the same with the membrane/spike update and its adjoint in jax.numpy
  (``cell_kernel="xla"``) instead of the fused native passes;
* ``ei-sim-dense``: the same with dense recurrent products in the forward pass;
* ``naive``: the same model and loss written the straightforward way with the same
  libraries: dense input spikes times W_in every step, dense recurrent products, plain
  autodiff, and a plain scan that stores every step for the backward pass.

Reported: seconds per training step (compilation excluded), the forward-only time of the same
batch (so the backward's share is visible), estimated seconds per medium epoch (6 steps of 256
plus the 400-trial evaluation) and peak resident memory.

    python benchmarks/bench_train.py [--batch 256] [--naive-batch 64]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time


def measure(kind: str, batch: int) -> dict:
    import jax
    import numpy as np

    from ei_sim.parallel import batch_mesh, replicate, use_cpu_cores

    devices = use_cpu_cores(1 if kind in ("naive", "ei-sim-1-device") else None)

    from ei_sim.data import embedded_pool, sample_and_split
    from ei_sim.encoding import encode, events_to_dense
    from ei_sim.objective import make_eval_fn, make_train_step
    from ei_sim.optim import adam_with_dale
    from ei_sim.train import split_weights, tier_model
    from models import get_model

    if kind == "naive":  # plain autodiff through the membrane and spike update
        import ei_sim.engine as engine

        def autodiff_update(pop, g_exc, g_inh, cell, cfg):
            v, ref, s = engine._advance(pop.v_mV, g_exc, g_inh, pop.refractory_steps, cell, cfg)
            return engine.PopState(v, g_exc, g_inh, ref, s)

        engine.advance_population = autodiff_update
    model = tier_model(get_model("ping"), "medium")
    if kind == "ei-sim-xla-cells":
        model = model.replace(cell_kernel="xla")
    elif kind not in ("ei-sim", "ei-sim-1-device"):
        model = model.replace(propagation="dense")
    config = model.config
    split = sample_and_split(embedded_pool(), 2000, 0.2, seed=42)
    x, y = split.x_train[:batch], split.y_train[:batch]
    events = encode(x, config, 0)
    inputs = events if kind != "naive" else events_to_dense(events, batch, config.n_in)
    chunk = 50 if kind != "naive" else None
    trainable, frozen = split_weights(model.init_weights(jax.random.PRNGKey(0)), ("w_in", "w_out"))
    optimizer = adam_with_dale(4e-4)
    opt_state = optimizer.init(trainable)
    mesh = batch_mesh(batch)
    trainable, opt_state, frozen = replicate((trainable, opt_state, frozen), mesh)
    step = make_train_step(optimizer, config, 0.2, 1e-3, chunk, mesh)
    state0 = model.init_state(jax.random.PRNGKey(1), batch)
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        out = step(trainable, opt_state, frozen, state0, inputs, y)
        jax.block_until_ready(out)
        times.append(time.perf_counter() - t0)
    forward = make_eval_fn(config)
    weights = model.init_weights(jax.random.PRNGKey(0))  # evaluation: one device
    jax.block_until_ready(forward(weights, state0, inputs))
    t0 = time.perf_counter()
    jax.block_until_ready(forward(weights, state0, inputs))
    fwd = time.perf_counter() - t0
    step_s = float(np.median(times[1:]))
    per_sample = step_s / batch
    eval_s = fwd / batch * 400
    return {
        "bench": "train_step", "impl": kind, "batch": batch, "devices": devices,
        "compile_and_first_s": times[0],
        "step_s": step_s, "forward_only_s": fwd, "backward_share": 1 - fwd / step_s,
        "seconds_per_sample": per_sample,
        "est_medium_epoch_s": per_sample * 1536 + eval_s,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }  # fmt: skip


def in_subprocess(kind: str, batch: int) -> dict:
    code = f"import json, bench_train as b; print(json.dumps(b.measure({kind!r}, {batch})))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=__file__.rsplit("/", 1)[0])  # fmt: skip
    if out.returncode != 0:
        tail = (out.stderr.strip().splitlines() or ["killed (out of memory?)"])[-1]
        return {"bench": "train_step", "impl": kind, "batch": batch, "error": tail[:300]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--naive-batch", type=int, default=64)
    args = parser.parse_args()
    ours = in_subprocess("ei-sim", args.batch)
    print(json.dumps(ours), flush=True)
    for kind in ("ei-sim-1-device", "ei-sim-xla-cells", "ei-sim-dense"):
        other = in_subprocess(kind, args.batch)
        if "seconds_per_sample" in ours and "seconds_per_sample" in other:
            other["ei_sim_speedup_per_sample"] = (
                other["seconds_per_sample"] / ours["seconds_per_sample"]
            )
        print(json.dumps(other), flush=True)
    naive = in_subprocess("naive", args.naive_batch)
    if "seconds_per_sample" in ours and "seconds_per_sample" in naive:
        naive["ei_sim_speedup_per_sample"] = (
            naive["seconds_per_sample"] / ours["seconds_per_sample"]
        )
    print(json.dumps(naive), flush=True)


if __name__ == "__main__":
    main()
