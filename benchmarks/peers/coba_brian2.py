"""Vogels-Abbott COBA network (4,000 LIF cells, p = 0.02) in Brian2, for bench_engine.py.

    python coba_brian2.py SECONDS [--target cython|numpy|cpp_standalone] [--method ...]
        [--seed N] [--directory DIR]

The parameters of ``models/va_coba.py`` (see ``coba_brainpy.py``); the membrane is integrated
by exponential Euler with the conductances held over the step, as ei-sim does
(``--method euler`` for forward Euler). A ``SpikeMonitor`` keeps the spikes. Prints one JSON
line: seconds spent importing Brian2, building the network, in ``run()`` (code generation and
compilation included; Brian2 caches compiled Cython code across processes), the mean rate
and the spike count.

``--target cpp_standalone`` writes, compiles and runs a C++ project in ``--directory`` (a
temporary folder when not given). In a folder that already holds the project of the same
script, seed, method and length, Brian2 rewrites no file and ``make`` compiles nothing, so a
second run is "warm": its ``wall_s`` is code generation, an empty make and the binary.
``loop_s`` is then the binary's own time of the simulation loop (Brian2's
``device._last_run_time``, measured with ``std::clock``: processor time), ``binary_s`` the
binary's whole run (synapse creation and writing the results included) and ``make_s`` the
compilation.
"""

import argparse
import json
import time

t_start = time.perf_counter()
import brian2 as b2  # noqa: E402

IMPORT_S = time.perf_counter() - t_start
EQUATIONS = """
dv/dt = (ge * (Ee - v) + gi * (Ei - v) + (El - v)) / taum : volt (unless refractory)
dge/dt = -ge / taue : 1
dgi/dt = -gi / taui : 1
"""


def build(method: str, seed: int):
    b2.seed(seed)
    ms, mV = b2.ms, b2.mV
    constants = dict(taum=20 * ms, taue=5 * ms, taui=10 * ms, El=-60 * mV, Ee=0 * mV,
                     Ei=-80 * mV)  # fmt: skip
    cells = b2.NeuronGroup(4000, EQUATIONS, threshold="v > -50*mV", reset="v = -60*mV",
                           refractory=5 * ms, method=method, namespace=constants)  # fmt: skip
    cells.v = "-60*mV + rand() * 10*mV"
    cells.ge = "4 + 1.5 * randn()"
    cells.gi = "20 + 12 * randn()"
    exc = b2.Synapses(cells[:3200], cells, on_pre="ge += 0.6")
    inh = b2.Synapses(cells[3200:], cells, on_pre="gi += 6.7")
    exc.connect(p=0.02)
    inh.connect(p=0.02)
    monitor = b2.SpikeMonitor(cells)
    return b2.Network(cells, exc, inh, monitor), monitor


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("seconds", type=float)
    parser.add_argument("--target", choices=("cython", "numpy", "cpp_standalone"),
                        default="cython")  # fmt: skip
    parser.add_argument("--method", default="exponential_euler")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--directory", default=None, help="cpp_standalone project folder")
    args = parser.parse_args()
    if args.target == "cpp_standalone":
        b2.set_device("cpp_standalone", directory=args.directory)
    else:
        b2.prefs.codegen.target = args.target
    b2.defaultclock.dt = 0.1 * b2.ms
    t0 = time.perf_counter()
    network, monitor = build(args.method, args.seed)
    t1 = time.perf_counter()
    network.run(args.seconds * b2.second)
    t2 = time.perf_counter()
    n = int(monitor.num_spikes)
    row = {"sim": "brian2", "target": args.target, "method": args.method, "seed": args.seed,
           "sim_s": args.seconds, "import_s": IMPORT_S, "build_s": t1 - t0,
           "wall_s": t2 - t1, "rate_hz": n / 4000 / args.seconds, "spikes": n,
           "version": b2.__version__}  # fmt: skip
    if args.target == "cpp_standalone":
        timers = b2.device.timers
        row.update(loop_s=b2.device._last_run_time, binary_s=timers.get("run_binary"),
                   make_s=(timers.get("compile") or {}).get("make"))  # fmt: skip
    print(json.dumps(row))


if __name__ == "__main__":
    main()
