"""``ei-sim simulate``: one preset network, run in chunks with monitors, streamed to HDF5.

Spikes are recorded as events, traces of chosen cells (``--record-v``, ``--record-g``) every
``--record-every-ms``, population activity in bins of ``--bin-ms``. With ``--out`` every
chunk of ``--chunk-ms`` is appended to ``OUT.partial`` as soon as it is done (layout in
:mod:`ei_sim.store.stream`); the file is renamed to ``OUT`` at the end. Ctrl-C or SIGTERM stops
the run and leaves ``OUT.partial`` with the chunks finished until then (a chunk being written
is cut back).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time

from ei_sim.cli.locks import holds, simulate_outputs

CELLS_HELP = ("comma list of cells, E by default, 'i:' for I cells, ranges inclusive, "
              "'all' for a whole population: e.g. 0-9,100,i:0-4 or i:all")  # fmt: skip


def register(sub) -> dict:
    """Add the ``simulate`` command to ``sub``; returns {"simulate": handler}."""
    from ei_sim.cli import _positive_float, options

    p = sub.add_parser(
        "simulate",
        help="simulate a preset network and write an HDF5 file",
        description="Simulate a preset network (untrained weights from --seed) driven by "
        "MNIST digits of the embedded pool, print E/I rates and the gamma rhythm, and "
        "optionally stream spikes, population activity and chosen traces to HDF5. Any "
        "network parameter can be set with --set (ei-sim params --model NAME lists them).",
    )
    options.add_model(p, families=("classifier", "network"))
    options.add_couplings(p)
    p.add_argument("--t-ms", type=_positive_float, default=None, help="trial length in ms "
                   "(default: the preset's, 200 ms; va_coba 1000 ms)")  # fmt: skip
    p.add_argument("--dt-ms", type=_positive_float, default=None, help="time step in ms "
                   "(default 0.1); must not exceed the refractory periods")  # fmt: skip
    p.add_argument("--input-rate-hz", type=_positive_float, default=None, help="input "
                   "rate of a white pixel, the drive (default 25 Hz)")  # fmt: skip
    options.add_parameters(p)
    p.add_argument("--seed", type=int, default=0, help="seed of weights, initial state and "
                   "input spikes (default 0)")  # fmt: skip
    p.add_argument(
        "--digit",
        type=int,
        default=0,
        help="MNIST class 0-9 whose examples in "
        "the embedded pool drive the network (default 0; ignored by va_coba)",
    )
    p.add_argument("--trials", type=int, default=1, help="trials: the first N examples of "
                   "--digit, each with its own input spikes (default 1)")  # fmt: skip
    p.add_argument("--out", default=None, help="write the result to this .h5 file "
                   "(its directory must exist)")  # fmt: skip
    p.add_argument("--record-v", metavar="CELLS", default=None, help="record the membrane "
                   f"potential of these cells: {CELLS_HELP}")  # fmt: skip
    p.add_argument("--record-g", metavar="CELLS", default=None, help="record g_exc and g_inh "
                   "of these cells (same syntax)")  # fmt: skip
    p.add_argument("--record-every-ms", type=float, default=None, help="interval of the "
                   "traces, a multiple of dt (default: every step)")  # fmt: skip
    p.add_argument("--bin-ms", type=float, default=None, help="bin width of the stored "
                   "population activity, a multiple of dt (default: one step)")  # fmt: skip
    p.add_argument("--chunk-ms", type=float, default=1000.0, help="simulated time per "
                   "compiled chunk, streamed to the file when done (default 1000)")  # fmt: skip
    options.add_quiet(p)
    p.add_argument("--timings", action="store_true", help="print the start-up parts (imports, "
                   "compilation, initial conditions, run, writing) as JSON on stderr")  # fmt: skip
    p.set_defaults(model_default="ping")
    return {"simulate": cmd_simulate}


def build_model(args):
    """The network the options describe (built once; its rules checked as it is built)."""
    from ei_sim.cli import options

    flags = {**options.MODEL_FLAGS, "--dt-ms": "dt_ms", "--input-rate-hz": "r_max_Hz"}
    targets = options.build_targets(args, recipe=False, tiered=False,
                                    family=("classifier", "network"),
                                    model_flags=flags)  # fmt: skip
    return targets["model"]


def steps_of(option: str, ms: float | None, dt_ms: float, default: int = 1) -> int:
    """``ms`` as a whole number of steps of ``dt_ms``; ValueError naming ``option`` if not."""
    if ms is None:
        return default
    steps = round(ms / dt_ms)
    if not ms > 0 or steps < 1 or abs(steps * dt_ms - ms) > 1e-9 * max(1.0, ms):
        raise ValueError(f"{option} {ms:g} is not a positive multiple of dt_ms {dt_ms:g}; "
                         f"use e.g. {max(1, steps) * dt_ms:g}")  # fmt: skip
    return steps


def parse_cells(option: str, text: str, n_e: int, n_i: int) -> dict[str, tuple[int, ...]]:
    """``"0-9,i:3"`` -> {"e": (0..9), "i": (3,)}; ValueError naming ``option`` when a cell is
    out of range or an item is malformed."""
    cells: dict[str, list[int]] = {"e": [], "i": []}
    sizes = {"e": n_e, "i": n_i}
    for item in filter(None, (part.strip() for part in text.split(","))):
        pop, _, spec = item.rpartition(":")
        pop = pop.lower() or "e"
        if pop not in sizes:
            raise ValueError(f"{option}: unknown population {pop!r} in {item!r}; use e: or i:")
        n = sizes[pop]
        if spec == "all":
            cells[pop].extend(range(n))
            continue
        try:
            lo, _, hi = spec.partition("-")
            first, last = int(lo), int(hi) if hi else int(lo)
        except ValueError:
            raise ValueError(f"{option}: cannot read {item!r}; {CELLS_HELP}") from None
        if not 0 <= first <= last < n:
            raise ValueError(f"{option}: {pop.upper()} cell(s) {spec} out of range; the "
                             f"population has cells 0-{n - 1}")  # fmt: skip
        cells[pop].extend(range(first, last + 1))
    if not any(cells.values()):
        raise ValueError(f"{option}: no cells given; {CELLS_HELP}")
    return {pop: tuple(dict.fromkeys(c)) for pop, c in cells.items() if c}


def build_monitors(args, config):
    from ei_sim.sim.monitors import Monitors, StateMonitor

    every = steps_of("--record-every-ms", args.record_every_ms, config.dt_ms)
    states = []
    wanted = (("--record-v", args.record_v, ("v_mV",)),
              ("--record-g", args.record_g, ("g_exc_uS", "g_inh_uS")))  # fmt: skip
    for option, text, variables in wanted:
        if text is None:
            continue
        for pop, cells in parse_cells(option, text, config.n_e, config.n_i).items():
            states.append(StateMonitor(pop, cells, variables, every))
    return Monitors(states=tuple(states), bin_steps=steps_of("--bin-ms", args.bin_ms,
                                                             config.dt_ms))  # fmt: skip


def _since_process_start() -> float:
    """Seconds since this process started (Linux /proc; NaN elsewhere)."""
    try:
        with open("/proc/self/stat") as fh:
            start_ticks = float(fh.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime") as fh:
            uptime = float(fh.read().split()[0])
        return uptime - start_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return float("nan")


BAR = "{desc} {n:.1f}/{total:.1f} s |{bar}| {elapsed}<{remaining}"


class _Progress:
    """A tqdm bar of simulated seconds on stderr (off when stderr is not a terminal)."""

    def __init__(self, total_ms: float, dt_ms: float, enabled: bool):
        from tqdm import tqdm

        self.dt_ms = dt_ms
        self.bar = tqdm(total=round(total_ms / 1000.0, 4), unit="s", file=sys.stderr,
                        disable=None if enabled else True, desc="simulated",
                        bar_format=BAR)  # fmt: skip

    def __call__(self, chunk) -> None:
        from ei_sim.cli.interrupts import raise_if_interrupted

        done = (chunk.start_step + chunk.n_steps) * self.dt_ms / 1000.0
        self.bar.update(round(done - self.bar.n, 4))
        raise_if_interrupted()  # a Ctrl-C that a library swallowed: stop after this chunk

    def close(self) -> None:
        self.bar.close()


def _terminate_as_interrupt(signum, frame):
    raise KeyboardInterrupt


@holds(simulate_outputs)
def cmd_simulate(args) -> int:
    t_start = time.perf_counter()
    from ei_sim.cli.checks import check_simulate
    from ei_sim.data.mnist import embedded_pool, examples_of_class
    from ei_sim.sim import hostrun
    from ei_sim.sim.run import simulate_model, summary_line
    from ei_sim.store.paths import partial_path
    from ei_sim.store.stream import check_destination, run_to_file

    model = build_model(args)
    check_simulate(args, model)
    config = model.config
    monitors = build_monitors(args, config)
    if not args.chunk_ms > 0:
        raise ValueError(f"--chunk-ms must be > 0, got {args.chunk_ms:g}; e.g. --chunk-ms 1000")
    chunk_steps = max(1, round(args.chunk_ms / config.dt_ms))
    if args.out:
        check_destination(args.out)
    images = None
    if config.n_in > 0:
        pool = embedded_pool()
        images = pool.images[examples_of_class(pool, args.digit, args.trials)]
    counter = None
    if not hostrun.applicable(config, inputs=images):  # the engine's compiled loop
        from ei_sim.sim.compile_cache import CompileCounter, enable

        enable()  # JAX's persistent compilation cache (EI_SIM_COMPILE_CACHE=0: off)
        counter = CompileCounter()
    imports_s = time.perf_counter() - t_start
    progress = _Progress(config.t_ms, config.dt_ms, not args.quiet)
    previous = signal.signal(signal.SIGTERM, _terminate_as_interrupt)
    try:
        if args.out:
            result = run_to_file(args.out, model, args.seed, images, monitors=monitors,
                                 chunk_steps=chunk_steps, on_chunk=progress,
                                 extra_attrs={"seed": args.seed, "digit": args.digit,
                                              "trials": args.trials})  # fmt: skip
        else:
            result = simulate_model(model, args.seed, images, monitors=monitors, keep=False,
                                    chunk_steps=chunk_steps, on_chunk=progress)  # fmt: skip
    except KeyboardInterrupt:
        progress.close()
        if args.out and os.path.exists(partial_path(args.out)):
            print(f"ei-sim simulate: stopped; the finished chunks are in "
                  f"{partial_path(args.out)} (complete=False)", file=sys.stderr)  # fmt: skip
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)
    progress.close()
    line = summary_line(model.name, result)
    print(line + (f" (wrote {args.out})" if args.out else ""))
    for hint in drive_hints(model, result):
        print(f"note: {hint}", file=sys.stderr)
    if args.timings:
        t = result.timings
        in_main = time.perf_counter() - t_start
        parts = {"process_to_main_s": _since_process_start() - in_main,
                 "imports_s": imports_s, "native_loop": counter is None,
                 **(counter.as_dict() if counter else {"programs": 0, "compiled": 0,
                                                       "cache_hits": 0, "compile_s": 0.0}),
                 "init_s": t["init_s"],
                 "run_s": t["run_s"], "loop_cpu_s": t.get("loop_cpu_s"),
                 "summary_s": t["summary_s"],
                 "write_s": t.get("write_s", 0.0), "total_in_main_s": in_main}  # fmt: skip
        print(json.dumps(parts), file=sys.stderr)
    return 0


def drive_hints(model, result) -> list[str]:
    """How to drive a network whose populations stayed (nearly) silent."""
    hints = []
    if model.config.n_in == 0:
        return hints
    if result.rate_e_Hz < 0.5:
        hints.append(f"E fired {result.rate_e_Hz:.2f} Hz: drive it harder, e.g. --w-in 1.2 "
                     "(PING's W_in) or --input-rate-hz 50")  # fmt: skip
    w_ei = getattr(model, "w_ei", 0.0)
    if w_ei > 0 and result.rate_i_Hz < 0.5 and result.rate_e_Hz >= 0.5:
        hints.append(f"I fired {result.rate_i_Hz:.2f} Hz with W_EI {w_ei:g}: recruit it with a "
                     "stronger E->I coupling (--w-ei 2) or more drive (--w-in)")  # fmt: skip
    return hints
