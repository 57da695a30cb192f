"""Vogels-Abbott COBA network (4,000 LIF cells, p = 0.02) in BrainPy, for bench_engine.py.

    python coba_brainpy.py SECONDS [--conn csr|jit]

The parameters of ``models/va_coba.py``: tau_m 20 ms, E_L = V_reset = -60 mV, V_th -50 mV,
refractory 5 ms, E_exc 0 / E_inh -80 mV, tau_e 5 / tau_i 10 ms, jumps 0.6 / 6.7 (units of the
leak), dt 0.1 ms, initial V ~ U(-60, -50), g_e ~ N(4, 1.5), g_i ~ N(20, 12).

BrainPy's fastest CPU settings found for this network (BrainPy 2.8, 2-core machine): the
connectivity drawn once and stored in compressed rows (``--conn csr``, event-driven
``EventCSRLinear``; ``--conn jit`` regenerates it on the fly every step, BrainPy's
"just-in-time connectivity", as in its published benchmark), brainevent's Numba CPU kernels
(``--backend numba``; ``kernix`` and ``warp`` were slower here), the whole run one compiled
``for_loop`` returning only the spike count per step. The run is done twice in the same
process and the second (compiled) one is reported, with the first beside it. Prints one
JSON line.
"""

import argparse
import json
import time

import brainpy as bp
import brainpy.math as bm

N_E, N_I, P = 3200, 800, 0.02


def projection(n_pre, weight, conn, tau_ms, e_rev_mV, post):
    if conn == "csr":
        comm = bp.dnn.EventCSRLinear(bp.conn.FixedProb(P, pre=n_pre, post=N_E + N_I), weight)
    else:
        comm = bp.dnn.EventJitFPHomoLinear(n_pre, N_E + N_I, prob=P, weight=weight)
    return bp.dyn.ProjAlignPostMg1(
        comm=comm, syn=bp.dyn.Expon.desc(size=N_E + N_I, tau=tau_ms),
        out=bp.dyn.COBA.desc(E=e_rev_mV), post=post,
    )  # fmt: skip


class Network(bp.DynSysGroup):
    def __init__(self, conn: str):
        super().__init__()
        self.cells = bp.dyn.LifRefLTC(
            N_E + N_I, V_rest=-60.0, V_th=-50.0, V_reset=-60.0, tau=20.0, tau_ref=5.0,
            V_initializer=bp.init.Uniform(-60.0, -50.0),
        )  # fmt: skip
        self.spikes = bp.VarDelay(self.cells.spike, entries={"now": None})
        self.exc = projection(N_E, 0.6, conn, 5.0, 0.0, self.cells)
        self.inh = projection(N_I, 6.7, conn, 10.0, -80.0, self.cells)

    def update(self):
        s = self.spikes.at("now")
        self.exc(s[:N_E])
        self.inh(s[N_E:])
        self.spikes(self.cells(0.0))
        return self.cells.spike.value.sum()


def run_once(seconds: float, conn: str):
    net = Network(conn)
    net.exc.syn.g.value = bm.asarray(bm.random.normal(4.0, 1.5, N_E + N_I))
    net.inh.syn.g.value = bm.asarray(bm.random.normal(20.0, 12.0, N_E + N_I))
    steps = bm.arange(int(round(seconds / 1e-4)))
    t0 = time.perf_counter()
    counts = bm.for_loop(lambda i: net.step_run(i), steps, progress_bar=False)
    total = float(bm.as_numpy(counts).sum())
    return time.perf_counter() - t0, total / (N_E + N_I) / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("seconds", type=float)
    parser.add_argument("--conn", choices=("csr", "jit"), default="csr")
    parser.add_argument("--backend", default="numba", help="brainevent CPU kernels: numba "
                        "(the fastest here), kernix, warp")  # fmt: skip
    args = parser.parse_args()
    if args.backend:
        import brainevent

        brainevent.config.set_backend("cpu", args.backend)
    bm.set_platform("cpu")
    bm.set_dt(0.1)
    first, _ = run_once(args.seconds, args.conn)
    wall, rate = run_once(args.seconds, args.conn)
    print(json.dumps({"sim": "brainpy", "conn": args.conn, "sim_s": args.seconds,
                      "first_wall_s": first, "wall_s": wall, "rate_hz": rate,
                      "backend": args.backend, "version": bp.__version__}))  # fmt: skip


if __name__ == "__main__":
    main()
