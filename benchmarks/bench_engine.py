"""Engine benchmarks, printed as JSON lines (run: python benchmarks/bench_engine.py).

1. Vogels-Abbott COBA, 4,000 cells, ``--va-seconds`` of simulated time: ei-sim (the native
   loop of ``ei-sim simulate``, :mod:`ei_sim.sim.hostrun`; the engine's scan with the native
   event kernel on sparse blocks; and the pure-JAX event path on dense blocks) against Brian2
   (cython) and BrainPy (its fastest settings here), each in its own process, in the same run;
   wall times of the simulation loop (compilation excluded and reported apart), the ratio to
   Brian2, and each mean rate.
2. PING inference: ``--trials`` test trials of 200 ms at dt 0.1 ms in one batch; trials per
   second and the process's peak resident memory; native, pure-JAX event and dense recurrent
   propagation.

``--whole-process 20``: instead, whole commands (:mod:`whole_process`):
``ei-sim simulate --model va_coba --t-ms T --out FILE`` against Brian2's C++ standalone mode
(warm: each project built once before timing; exponential Euler as ei-sim, and forward Euler,
its cheapest scheme), Brian2's Cython target and, with ``--baseline REV``, the same ei-sim
command at an earlier commit (a temporary git worktree), all in one run, warm caches,
``--repeats`` alternating runs each, medians of wall and processor time, the in-loop figures
(ei-sim's ``--timings``, Brian2's own loop time) and the ratios;
``--memory 10,60,600``: peak memory of the ei-sim command against simulated time.

The peer scripts live in ``benchmarks/peers/``; a peer that is not installed is reported as
skipped. Timings are noisy on a shared machine: compare ratios within one run.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def va_ei_sim(seconds: float, propagation: str, sparse: bool) -> dict:
    import jax

    from ei_sim.models.va_coba import va_coba
    from ei_sim.sim.engine import simulate_jit

    model = va_coba(t_ms=seconds * 1000.0, propagation=propagation, sparse=sparse)
    c = model.config
    w = model.init_weights(jax.random.PRNGKey(0))
    s0 = model.init_state(jax.random.PRNGKey(1), 1)
    walls = []
    for _ in range(2):
        t0 = time.perf_counter()
        final, _ = simulate_jit(w, s0, None, c, n_steps=c.n_steps)
        jax.block_until_ready(final)
        walls.append(time.perf_counter() - t0)
    spikes = float(final.acc.count_e.sum() + final.acc.count_i.sum())
    return {
        "sim": f"ei-sim ({propagation}, {'sparse' if sparse else 'dense'} blocks)",
        "sim_s": seconds, "first_wall_s": walls[0],
        "wall_s": walls[1], "rate_hz": spikes / 4000 / seconds,
    }  # fmt: skip


def va_native_loop(seconds: float) -> dict:
    """The native loop of ``ei-sim simulate`` (spike events decoded, nothing written)."""
    import time as _time

    from ei_sim.models.va_coba import va_coba
    from ei_sim.sim import hostrun
    from ei_sim.sim.monitors import Monitors
    from ei_sim.sim.run import initial_conditions

    model = va_coba(t_ms=seconds * 1000.0)
    if not hostrun.applicable(model.config):
        return {"sim": "ei-sim (native loop)", "skipped": "native loop unavailable"}
    weights, state, _ = initial_conditions(model, 0)
    walls, cpus, spikes = [], [], 0
    for _ in range(2):
        stats: dict = {}
        t0 = _time.perf_counter()
        spikes = 0
        for _, chunk in hostrun.iter_chunks(weights, state, model.config, Monitors(),
                                            stats=stats):  # fmt: skip
            spikes += sum(len(ev.step) for ev in chunk.spikes.values())
        walls.append(_time.perf_counter() - t0)
        cpus.append(stats["loop_cpu_s"])
    return {"sim": "ei-sim (native loop)", "sim_s": seconds, "first_wall_s": walls[0],
            "wall_s": walls[1], "loop_cpu_s": cpus[1], "rate_hz": spikes / 4000 / seconds}


def run_peer(script: str, args: list[str]) -> dict:
    try:
        out = subprocess.run(
            [sys.executable, script, *args], capture_output=True, text=True, timeout=1800
        )
    except subprocess.TimeoutExpired:
        return {"sim": os.path.basename(script), "skipped": "timeout"}
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
    if out.returncode != 0 or not lines:
        tail = (out.stderr.strip().splitlines() or ["no output"])[-1]
        return {"sim": os.path.basename(script), "skipped": tail[:200]}
    return json.loads(lines[-1])


def ping_inference(trials: int, propagation: str) -> dict:
    import jax
    import numpy as np

    from ei_sim.data.encoding import poisson_events
    from ei_sim.data.mnist import embedded_pool, sample_and_split
    from ei_sim.models.ping import ping
    from ei_sim.sim.engine import simulate_jit

    model = ping(propagation=propagation)
    c = model.config
    split = sample_and_split(embedded_pool(), 2000, 0.2, seed=42)
    images = split.x_test[:trials]
    w = model.init_weights(jax.random.PRNGKey(0))
    s0 = model.init_state(jax.random.PRNGKey(1), len(images))
    t0 = time.perf_counter()
    events = poisson_events(images, c.n_steps, c.p_spike_per_unit_intensity, 0)
    encode_s = time.perf_counter() - t0
    walls = []
    for _ in range(2):
        t0 = time.perf_counter()
        final, rec = simulate_jit(w, s0, events, c, record=("rate_e",), n_steps=c.n_steps)
        jax.block_until_ready(final)
        walls.append(time.perf_counter() - t0)
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    spikes_per_step = float(np.asarray(rec["rate_e"]).mean() * c.n_e)
    return {
        "bench": "ping_inference", "propagation": propagation, "trials": len(images),
        "steps": c.n_steps, "encode_s": encode_s, "first_wall_s": walls[0],
        "wall_s": walls[1], "trials_per_s": len(images) / walls[1],
        "peak_rss_mb": rss_mb, "e_spikes_per_step_per_trial": spikes_per_step,
        "input_events_per_step_max": int(events.sample.shape[1]),
    }  # fmt: skip


def in_subprocess(func: str, *args) -> dict:
    code = (
        f"import json, sys; sys.path.insert(0, {HERE!r}); import bench_engine as b; "
        f"print(json.dumps(b.{func}(*{args!r})))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if out.returncode != 0:
        return {"bench": func, "error": out.stderr.strip().splitlines()[-1][:300]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def _seconds(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x.strip()]


def whole_process_modes(args) -> None:
    import whole_process as wp

    if args.whole_process:
        peers = () if args.skip_peers else tuple(p for p in args.brian2.split(",") if p)
        rows = wp.compare(_seconds(args.whole_process), args.repeats, peers, args.baseline)
        for row in rows:
            print(json.dumps({"bench": "va_coba_whole_process", **row}), flush=True)
    if args.memory:
        for row in wp.memory(_seconds(args.memory)):
            print(json.dumps({"bench": "va_coba_peak_memory", **row}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--va-seconds", type=float, default=5.0)
    parser.add_argument("--trials", type=int, default=400)
    parser.add_argument("--peers", default=os.path.join(HERE, "peers"))
    parser.add_argument("--skip-peers", action="store_true")
    parser.add_argument("--whole-process", metavar="SECONDS", default=None,
                        help="comma list of simulated seconds, e.g. 5,20,100")  # fmt: skip
    parser.add_argument("--memory", metavar="SECONDS", default=None, help="e.g. 10,60,600")
    parser.add_argument("--baseline", metavar="REV", default=None,
                        help="with --whole-process: ei-sim at this commit too")  # fmt: skip
    parser.add_argument("--brian2", default="brian2-cpp,brian2-cpp-euler,brian2-cython",
                        help="with --whole-process: the Brian2 settings to run")  # fmt: skip
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    if args.whole_process or args.memory:
        sys.path.insert(0, HERE)
        whole_process_modes(args)
        return
    results = [
        in_subprocess("va_native_loop", args.va_seconds),  # ei-sim simulate's loop
        in_subprocess("va_ei_sim", args.va_seconds, "native", True),  # the engine's scan
        in_subprocess("va_ei_sim", args.va_seconds, "events", False),  # pure JAX
    ]
    if not args.skip_peers:
        secs = str(args.va_seconds)
        brian2_script = os.path.join(args.peers, "coba_brian2.py")
        run_peer(brian2_script, ["0.01"])  # warm-up: Brian2 compiles its code once
        results.append(run_peer(brian2_script, [secs]))
        results.append(run_peer(os.path.join(args.peers, "coba_brainpy.py"), [secs]))
    brian = next((r for r in results if r.get("sim") == "brian2" and "wall_s" in r), None)
    for r in results:
        if brian and "wall_s" in r:
            r["wall_vs_brian2"] = r["wall_s"] / brian["wall_s"]
        print(json.dumps({"bench": "va_coba", **r}))
    for propagation in ("native", "events", "dense"):
        print(json.dumps(in_subprocess("ping_inference", args.trials, propagation)))


if __name__ == "__main__":
    main()
