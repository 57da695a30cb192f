"""Training benchmark (medium tier: N_E 1024, T 200 ms, dt 0.1 ms), printed as JSON lines.

Each configuration runs in its own process (so peak memory is its own):

* ``floor``: the two dense cotangent products of exact BPTT alone, timed with numpy on every
  core: (B x N_I) @ (N_I x N_E) and (B x N_E) @ (N_E x N_I) per time step, 2,000 steps per
  batch; ``floor_epoch_s`` is 6 batches, in the environment as it is (which may set
  ``OPENBLAS_CORETYPE=Haswell``: OpenBLAS's AVX2 kernels). Every other row reports its ratio
  to it;
* ``floor-native``: the same with ``OPENBLAS_CORETYPE`` and ``OPENBLAS_L2_SIZE`` removed from
  that measurement's environment alone, so that OpenBLAS picks this CPU's own kernels (e.g.
  AVX-512): the real matrix floor. Rows report their ratio to it too
  (``*_ratio_to_native_floor``);
* ``products``: the same two products by the training's own kernel (``dense.h``: the
  blocks packed once, the rows split over XLA's threads), what they cost inside a step;
* ``ei-sim``: the trainer's step: the fused path (:mod:`ei_sim.training.fused`: the network step as
one
  native call per chunk of ``--chunk`` steps, its adjoint one native call per step plus XLA's
  two dense products), the batch split over one CPU device per core (:mod:`ei_sim.sim.parallel`);
* ``ei-sim-engine``: the previous version's step, the engine's path (``fused=False``):
  event-driven input and recurrent forward (the native kernel), event-driven weight
  gradients, the hand-written adjoint of the membrane/spike update, chunked
  ``jax.checkpoint`` (50 steps), the batch split over the cores;
* ``ei-sim-1-device``: the fused path on one device (the batch split over XLA's threads
  inside each native call);
* ``ei-sim-xla-cells``: the engine's path with the membrane/spike update and its adjoint in
  jax.numpy (``cell_kernel="xla"``) instead of the native passes;
* ``ei-sim-dense``: the engine's path with dense recurrent products in the forward pass;
* ``naive``: the same model and loss written the straightforward way with the same
  libraries: dense input spikes times W_in every step, dense recurrent products, plain
  autodiff, and a plain scan that stores every step for the backward pass.

Reported: seconds per training step (compilation excluded), the forward-only time of the same
batch (so the backward's share is visible), estimated seconds per medium epoch (6 steps of 256
plus the 400-trial evaluation) and peak resident memory.

``--previous DIR``: also the ``ei-sim`` row of the previous version, a checkout of it in
``DIR`` (e.g. ``git worktree add DIR HEAD~1``) imported ahead of this one (``PYTHONPATH``), in
the same run, right after it (``ei-sim-previous``; then a row ``ei-sim vs previous`` with
``speedup_vs_previous``).

``--epochs``: also whole ``ei-sim train --tier medium`` processes, the fused path and the
engine's (``EI_SIM_FUSED=0``), each run for 1 and for 3 epochs: a real epoch (evaluation and
the file write included, compilation excluded) is the difference over 2, reported beside the
floor measured in the same run (``ratio_to_floor``) with the process's peak memory.

``--interleaved ROUNDS``: only the epoch's ratio to the floor, the floor (this CPU's kernels)
and 3-epoch training processes alternately, each epoch against the floors measured just
before and after it: on a shared machine the floor itself moves by 10-15 % between runs.

    python benchmarks/bench_train.py [--batch 256] [--naive-batch 64] [--chunk 50]
        [--epochs] [--only ei-sim,ei-sim-engine] [--previous DIR] [--interleaved ROUNDS]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time


def measure_floor(batch: int, n_e: int = 1024, n_i: int = 256, steps: int = 2000) -> dict:
    """The two dense cotangent products per step, numpy on every core (median of 3)."""
    import numpy as np

    rng = np.random.default_rng(0)
    lam_i, w_ei_t = (rng.standard_normal(s, dtype=np.float32) for s in ((batch, n_i), (n_i, n_e)))
    lam_e, w_ie_t = (rng.standard_normal(s, dtype=np.float32) for s in ((batch, n_e), (n_e, n_i)))
    out_e, out_i = np.empty((batch, n_e), np.float32), np.empty((batch, n_i), np.float32)
    for _ in range(50):
        np.matmul(lam_i, w_ei_t, out=out_e)
        np.matmul(lam_e, w_ie_t, out=out_i)
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        for _ in range(steps):
            np.matmul(lam_i, w_ei_t, out=out_e)
            np.matmul(lam_e, w_ie_t, out=out_i)
        times.append(time.perf_counter() - t0)
    per_batch = float(np.median(times))
    flop = 2 * 2 * batch * n_e * n_i * steps
    return {"bench": "train_step", "impl": "floor", "batch": batch, "floor_step_s": per_batch,
            "floor_epoch_s": 6 * per_batch, "gflops": flop / per_batch / 1e9}  # fmt: skip


def measure_products(batch: int, n_e: int = 1024, n_i: int = 256, steps: int = 2000) -> dict:
    """The floor's two products by the training's own kernel (``dense.h``, the blocks packed
    once), on one device with the rows split over XLA's threads (median of 3): how much of a
    step the products themselves take, beside the numpy floor."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    from ei_sim.sim.parallel import use_cpu_cores

    use_cpu_cores(1)
    from ei_sim.training import fused

    rng = np.random.default_rng(0)
    lam_i, lam_e = (jnp.asarray(rng.standard_normal(s, dtype=np.float32))
                    for s in ((batch, n_i), (batch, n_e)))  # fmt: skip
    w_ei, w_ie = (jnp.asarray(rng.standard_normal(s, dtype=np.float32))
                  for s in ((n_e, n_i), (n_i, n_e)))  # fmt: skip
    p_ei, p_ie = fused.pack_block(w_ei, jnp.float32), fused.pack_block(w_ie, jnp.float32)

    @jax.jit
    def run(lam_i, lam_e):
        def body(t, carry):  # each step's operands touched, so that no product is hoisted
            lam_i, lam_e, acc = carry
            lam_i = lam_i.at[0, 0].set(t.astype(jnp.float32))
            lam_e = lam_e.at[0, 0].set(t.astype(jnp.float32))
            out_e = fused.packed_product(lam_i, p_ei, n_e)
            out_i = fused.packed_product(lam_e, p_ie, n_i)
            return lam_i, lam_e, acc + out_e[0, 0] + out_i[0, 0]

        return jax.lax.fori_loop(0, steps, body, (lam_i, lam_e, jnp.float32(0)))[2]

    jax.block_until_ready(run(lam_i, lam_e))
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        jax.block_until_ready(run(lam_i, lam_e))
        times.append(time.perf_counter() - t0)
    per_batch = float(np.median(times))
    flop = 2 * 2 * batch * n_e * n_i * steps
    return {"bench": "train_step", "impl": "products", "batch": batch,
            "products_step_s": per_batch, "products_epoch_s": 6 * per_batch,
            "gflops": flop / per_batch / 1e9}  # fmt: skip


def measure(kind: str, batch: int, chunk_fused: int = 50, repeats: int = 3) -> dict:
    import jax
    import numpy as np

    from ei_sim.sim.parallel import batch_mesh, replicate, use_cpu_cores

    devices = use_cpu_cores(1 if kind in ("naive", "ei-sim-1-device") else None)

    from ei_sim.data.encoding import encode, events_to_dense
    from ei_sim.data.mnist import embedded_pool, sample_and_split
    from ei_sim.models import get_model
    from ei_sim.training.objective import make_eval_fn, make_train_step
    from ei_sim.training.optim import adam_with_dale
    from ei_sim.training.spiking import split_weights, tier_model

    if kind == "naive":  # plain autodiff through the membrane and spike update
        import ei_sim.sim.engine as engine

        def autodiff_update(pop, g_exc, g_inh, cell, cfg):
            v, ref, s = engine._advance(pop.v_mV, g_exc, g_inh, pop.refractory_steps, cell, cfg)
            return engine.PopState(v, g_exc, g_inh, ref, s)

        engine.advance_population = autodiff_update
    model = tier_model(get_model("ping"), "medium")
    if kind == "ei-sim-xla-cells":
        model = model.replace(cell_kernel="xla")
    elif kind not in ("ei-sim", "ei-sim-1-device", "ei-sim-engine"):
        model = model.replace(propagation="dense")
    config = model.config
    split = sample_and_split(embedded_pool(), 2000, 0.2, seed=42)
    x, y = split.x_train[:batch], split.y_train[:batch]
    events = encode(x, config, 0)
    inputs = events if kind != "naive" else events_to_dense(events, batch, config.n_in)
    on_fused = kind in ("ei-sim", "ei-sim-1-device")
    chunk = None if kind == "naive" else (chunk_fused if on_fused else 50)
    trainable, frozen = split_weights(model.init_weights(jax.random.PRNGKey(0)), ("w_in", "w_out"))
    optimizer = adam_with_dale(4e-4)
    opt_state = optimizer.init(trainable)
    mesh = batch_mesh(batch)
    trainable, opt_state, frozen = replicate((trainable, opt_state, frozen), mesh)
    step = make_train_step(optimizer, config, 0.2, 1e-3, chunk, mesh, fused=on_fused)
    state0 = model.init_state(jax.random.PRNGKey(1), batch)
    times = []
    for _ in range(repeats):
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
        "bench": "train_step", "impl": kind, "batch": batch, "devices": devices, "chunk": chunk,
        "compile_and_first_s": times[0],
        "step_s": step_s, "step_min_s": float(np.min(times[1:])), "forward_only_s": fwd,
        "backward_share": 1 - fwd / step_s,
        "seconds_per_sample": per_sample,
        "est_medium_epoch_s": per_sample * 1536 + eval_s,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }  # fmt: skip


OPENBLAS_TUNING = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def native_blas_env(env: dict) -> dict:
    """``env`` without the variables that make OpenBLAS use other kernels than this CPU's."""
    return {k: v for k, v in env.items() if k not in OPENBLAS_TUNING}


def in_subprocess(kind: str, batch: int, chunk: int, previous: str | None = None,
                  repeats: int = 3) -> dict:
    """One row, measured in its own process: ``floor``, ``floor-native`` (OpenBLAS variables
    removed), a trainer kind, or ``ei-sim-previous`` (the ``ei-sim`` row with ``previous``
    ahead on the path: a checkout with the links of a source tree, ``ei_sim/models`` ->
    ``../models`` and so on, as ``[tool.setuptools.package-dir]`` maps them)."""
    env = dict(os.environ)
    if kind == "products":
        call = f"b.measure_products({batch})"
    elif kind.startswith("floor"):
        call = f"b.measure_floor({batch})"
        if kind == "floor-native":
            env = native_blas_env(env)
    elif kind == "ei-sim-previous":  # at the previous version's own default chunk
        default = "__import__('ei_sim.training.config').training.config.TrainConfig()"
        call = f"b.measure('ei-sim', {batch}, {default}.checkpoint_every, {repeats})"
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [previous, env.get("PYTHONPATH")]))
    else:
        call = f"b.measure({kind!r}, {batch}, {chunk}, {repeats})"
    code = f"import json, bench_train as b; print(json.dumps({call}))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=__file__.rsplit("/", 1)[0], env=env)  # fmt: skip
    if out.returncode != 0:
        tail = (out.stderr.strip().splitlines() or ["killed (out of memory?)"])[-1]
        return {"bench": "train_step", "impl": kind, "batch": batch, "error": tail[:300]}
    row = json.loads(out.stdout.strip().splitlines()[-1])
    row["impl"] = kind
    if kind == "floor":
        row["openblas_env"] = {k: os.environ.get(k) for k in OPENBLAS_TUNING}
    return row


def train_process(epochs: int, fused: bool, chunk: int, out_dir: str) -> dict:
    """Wall time and peak memory of ``ei-sim train --tier medium --epochs N`` (PING, seed 42)."""
    env = {**os.environ, "EI_SIM_FUSED": "1" if fused else "0"}
    cmd = [sys.executable, "-m", "ei_sim.cli", "train", "--tier", "medium", "--epochs",
           str(epochs), "--out", out_dir]  # fmt: skip
    t0 = time.perf_counter()
    proc = subprocess.run(["/usr/bin/time", "-f", "%M", *cmd] if os.path.exists("/usr/bin/time")
                          else cmd, capture_output=True, text=True, env=env)  # fmt: skip
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr.strip().splitlines()[-1])
    last = proc.stderr.strip().splitlines()[-1]
    peak_mb = int(last) / 1024 if last.isdigit() else None
    return {"wall_s": wall, "peak_rss_mb": peak_mb, "log": proc.stdout.strip().splitlines()[-1]}


def real_epochs(
    chunk: int, floor_epoch_s: float | None, native_floor_epoch_s: float | None = None
) -> list[dict]:
    """A real medium epoch on the fused path and on the engine's, from 1- and 3-epoch runs
    (the trainer's own ``checkpoint_every``)."""
    from ei_sim.training.config import TrainConfig

    rows = []
    for fused in (True, False):
        with tempfile.TemporaryDirectory() as tmp:
            one = train_process(1, fused, chunk, os.path.join(tmp, "one"))
            three = train_process(3, fused, chunk, os.path.join(tmp, "three"))
        epoch_s = (three["wall_s"] - one["wall_s"]) / 2
        row = {"bench": "train_epoch", "impl": "ei-sim" if fused else "ei-sim-engine",
               "checkpoint_every": TrainConfig().checkpoint_every, "real_epoch_s": epoch_s,
               "first_epoch_process_s": one["wall_s"], "peak_rss_mb": three["peak_rss_mb"],
               "floor_epoch_s": floor_epoch_s, "last_line": three["log"]}  # fmt: skip
        if floor_epoch_s:
            row["ratio_to_floor"] = epoch_s / floor_epoch_s
        if native_floor_epoch_s:
            row["native_floor_epoch_s"] = native_floor_epoch_s
            row["ratio_to_native_floor"] = epoch_s / native_floor_epoch_s
        rows.append(row)
    return rows


def interleaved_ratios(rounds: int, batch: int) -> dict:
    """The epoch's ratio to the floor on a noisy machine: ``rounds`` x (the floor, a 3-epoch
    ``ei-sim train --tier medium`` process), then the floor once more. Each epoch after the
    first (``epoch_wall_s`` of the run file: training and evaluation, not the file write) is
    divided by the mean of the floors measured just before and after its process."""
    import h5py
    import numpy as np

    floors, epochs, ratios = [in_subprocess("floor-native", batch, 0)["floor_epoch_s"]], [], []
    for _ in range(rounds):
        with tempfile.TemporaryDirectory() as tmp:
            train_process(3, True, 0, os.path.join(tmp, "run"))
            with h5py.File(os.path.join(tmp, "run", "run.h5"), "r") as fh:
                walls = [float(x) for x in fh["metrics/epoch_wall_s"][1:]]
        floors.append(in_subprocess("floor-native", batch, 0)["floor_epoch_s"])
        epochs += walls
        ratios += [w / ((floors[-2] + floors[-1]) / 2) for w in walls]
    return {"bench": "train_epoch_interleaved", "rounds": rounds, "native_floor_epoch_s": floors,
            "epoch_s": epochs, "ratios": ratios, "median_ratio": float(np.median(ratios))}


KINDS = ("ei-sim", "ei-sim-engine", "ei-sim-1-device", "ei-sim-xla-cells", "ei-sim-dense")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--naive-batch", type=int, default=64)
    parser.add_argument("--chunk", type=int, default=50, help="steps per fused chunk "
                        "(default: the trainer's checkpoint_every)")
    parser.add_argument("--epochs", action="store_true", help="also real ei-sim train epochs")
    parser.add_argument("--only", default="", help="comma list of rows (default: all)")
    parser.add_argument("--previous", default=None, help="checkout of the previous version")
    parser.add_argument("--repeats", type=int, default=3, help="training steps per step row "
                        "(the first compiles; step_s is the median of the others, step_min_s "
                        "their minimum: on a shared machine the minimum is the steadier)")
    parser.add_argument("--interleaved", type=int, default=0, metavar="ROUNDS",
                        help="only the epoch's ratio to the floor, measured in ROUNDS rounds "
                        "of floor and training alternately (a noisy machine)")
    args = parser.parse_args()
    if args.repeats < 2:
        parser.error("--repeats must be at least 2 (the first step compiles)")
    if args.interleaved:
        print(json.dumps(interleaved_ratios(args.interleaved, args.batch)), flush=True)
        return
    only = set(filter(None, args.only.split(",")))
    floor = in_subprocess("floor", args.batch, args.chunk)
    print(json.dumps(floor), flush=True)
    native_floor = in_subprocess("floor-native", args.batch, args.chunk)
    print(json.dumps(native_floor), flush=True)
    floor_epoch = floor.get("floor_epoch_s")
    native_floor_epoch = native_floor.get("floor_epoch_s")
    if not only or "products" in only:
        products = in_subprocess("products", args.batch, args.chunk)
        if native_floor_epoch and "products_epoch_s" in products:
            products["ratio_to_native_floor"] = products["products_epoch_s"] / native_floor_epoch
        print(json.dumps(products), flush=True)
    ours = previous = None
    kinds = (KINDS[0], *(("ei-sim-previous",) if args.previous else ()), *KINDS[1:], "naive")
    for kind in kinds:
        if only and kind not in only and kind != "ei-sim-previous":
            continue
        batch = args.naive_batch if kind == "naive" else args.batch
        row = in_subprocess(kind, batch, args.chunk, args.previous, args.repeats)
        if "est_medium_epoch_s" in row and floor_epoch:
            row["step_ratio_to_floor"] = row["step_s"] / floor["floor_step_s"]
        if "est_medium_epoch_s" in row and native_floor_epoch:
            row["step_ratio_to_native_floor"] = row["step_s"] / native_floor["floor_step_s"]
        if kind == "ei-sim-previous":
            previous = row
        if kind == "ei-sim":
            ours = row
        elif ours and "seconds_per_sample" in ours and "seconds_per_sample" in row:
            row["ei_sim_speedup_per_sample"] = (
                row["seconds_per_sample"] / ours["seconds_per_sample"]
            )
        print(json.dumps(row), flush=True)
    if ours and previous and "step_s" in ours and "step_s" in previous:
        print(json.dumps({"bench": "train_step", "impl": "ei-sim vs previous",
                          "step_s": ours["step_s"], "previous_step_s": previous["step_s"],
                          "speedup_vs_previous": previous["step_s"] / ours["step_s"]}),
              flush=True)  # fmt: skip
    if args.epochs:
        for row in real_epochs(args.chunk, floor_epoch, native_floor_epoch):
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
