"""Write the golden files in data/golden/ (see data/README.md).

    python data/make_golden.py ei_sim     # tiny_run, grid_2x2, scale/coupling sweep, simulate
    python data/make_golden.py brian2     # needs the validate extra (brian2 2.9.0)
    python data/make_golden.py all

``ei_sim``: one small file of each kind ei-sim writes, made by the ``ei-sim`` commands
themselves (:func:`ei_sim.cli.main`), so that rerunning this script after a change of a
layout writes that layout: a tiny training run, a 2x2 training grid, a W_in scale sweep and
a coupling sweep of that run, and a simulate file. Tests read them instead of training in
fixtures, and ``tests/test_golden.py`` checks that each still loads with the current code.

``brian2``: for each small reference network of ``tests/reference_networks.py``, the exact
network (weights, initial state, input spikes) and Brian2's spike trains for it, so that the
spike-for-spike comparison also runs where Brian2 is not installed
(``tests/test_brian2_golden.py``).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile

import jax
import jax.numpy as jnp
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))

from brian2_reference import run_brian2  # noqa: E402
from reference_networks import PING_SMALL, init_state, ping_small, va_small, va_state  # noqa: E402

from ei_sim.sim.config import to_attrs  # noqa: E402
from ei_sim.store.atomic import atomic_h5  # noqa: E402
from ei_sim.store.attrs import provenance, write_attrs  # noqa: E402


def _cases():
    """(name, config, weights, v0_e, v0_i, g0, inputs (T, n_in) or None, float32 start)."""
    weights, inputs = ping_small(0)
    with jax.enable_x64(True):
        s = init_state(PING_SMALL, jax.random.PRNGKey(3), 1, dtype=jnp.float64)
        yield "ping_small_f64", PING_SMALL, weights, s.e.v_mV[0], s.i.v_mV[0], None, inputs[:, 0]
    weights, inputs = ping_small(1)
    s = init_state(PING_SMALL, jax.random.PRNGKey(4), 1)  # float32 start, as the f32 test
    v_e, v_i = (np.asarray(x[0], np.float32).astype(np.float64) for x in (s.e.v_mV, s.i.v_mV))
    yield "ping_small_f32", PING_SMALL, weights, v_e, v_i, None, inputs[:, 0]
    config, weights, g0 = va_small()
    with jax.enable_x64(True):
        s = va_state(config, g0, 5, jnp.float64)
        yield "va_small", config, weights, s.e.v_mV[0], s.i.v_mV[0], g0, None


def write_brian2(path: str) -> None:
    import brian2

    with atomic_h5(path, kind="brian2_reference") as fh:
        write_attrs(fh, {"brian2_version": brian2.__version__, **provenance()})
        for name, config, weights, v_e, v_i, g0, inputs in _cases():
            v_e, v_i = np.asarray(v_e, np.float64), np.asarray(v_i, np.float64)
            spikes = run_brian2(config, weights, v_e, v_i, inputs, g0=g0)
            group = fh.create_group(name)
            write_attrs(group, to_attrs(config, "config."))
            for key, w in weights.items():
                group.create_dataset(f"weights/{key}", data=np.asarray(w, np.float64),
                                     compression="gzip")  # fmt: skip
            group["v0_e_mV"], group["v0_i_mV"] = v_e, v_i
            for pop, (ge, gi) in (g0 or {}).items():
                group[f"g0_{pop}/exc_uS"], group[f"g0_{pop}/inh_uS"] = ge, gi
            if inputs is not None:
                group.create_dataset("inputs", data=np.asarray(inputs, bool), compression="gzip")
            for pop, raster in zip(("e", "i"), spikes, strict=True):
                step, index = np.nonzero(raster)
                group[f"brian2/{pop}/step"] = step.astype(np.int32)
                group[f"brian2/{pop}/index"] = index.astype(np.int32)
            print(f"{name}: {int(spikes[0].sum())} E and {int(spikes[1].sum())} I spikes")


# The commands behind the ei-sim golden files (data/README.md). One epoch of the tiny tier on
# 120 samples (96 train / 24 test) in batches of 40; the run's network is shrunk further
# (32 E / 8 I cells, 50 ms trials) so that the files stay small and reading them is quick.
TINY_TRAIN = ["--tier", "tiny", "--epochs", "1", "--samples", "120", "--batch-size", "40"]
TINY_RUN = ["train", *TINY_TRAIN, "--n-e", "32", "--t-ms", "50"]
GRID_2X2 = ["grid", "--wei", "0,2", "--wie", "0,4", *TINY_TRAIN, "--n-e", "32", "--t-ms", "50",
            "--executor", "serial"]  # fmt: skip
SCALE_SWEEP = ["sweep", "scale"]  # the default 24 W_in scales
COUPLING_SWEEP = ["sweep", "coupling", "--wie-scale", "0.5,2", "--scales", "0,0.5,1"]
SIMULATE = ["simulate", "--model", "ping", "--t-ms", "50", "--seed", "0", "--digit", "3",
            "--record-v", "0-3,i:0", "--bin-ms", "1", "--no-progress"]  # fmt: skip
EI_SIM_FILES = ("tiny_run.h5", "grid_2x2.h5", "scale_sweep.h5", "coupling_sweep.h5",
                "simulate.h5")  # fmt: skip


def _cli(argv: list[str]) -> None:
    from ei_sim.cli import main

    print("ei-sim " + " ".join(argv), flush=True)
    code = main(argv)
    if code != 0:
        sys.exit(f"ei-sim {argv[0]} failed with exit status {code}")


def write_ei_sim(golden: str) -> None:
    """Run the commands above in a scratch folder and keep one file of each kind."""
    import h5py

    with tempfile.TemporaryDirectory() as work:
        run = os.path.join(work, "run")
        _cli([*TINY_RUN, "--out", run])
        _cli([*GRID_2X2, "--out", os.path.join(work, "grid.h5")])
        _cli([*SCALE_SWEEP, run, "--out", work])
        _cli([*COUPLING_SWEEP, run, "--out", work])
        _cli([*SIMULATE, "--out", os.path.join(work, "simulate.h5")])
        made = {"tiny_run.h5": os.path.join(run, "run.h5"),
                "grid_2x2.h5": os.path.join(work, "grid.h5"),
                "scale_sweep.h5": os.path.join(work, "scale_sweep.h5"),
                "coupling_sweep.h5": os.path.join(work, "coupling_w_ie.h5"),
                "simulate.h5": os.path.join(work, "simulate.h5")}  # fmt: skip
        for name, source in made.items():
            shutil.copyfile(source, os.path.join(golden, name))
            with h5py.File(source, "r") as fh:
                kind = fh.attrs.get("kind")
            size = os.path.getsize(source)
            print(f"{name}: kind {kind}, {size / 1024:.0f} KiB")


if __name__ == "__main__":
    what = sys.argv[1:] or ["all"]
    if what not in (["ei_sim"], ["brian2"], ["all"]):
        sys.exit("usage: python data/make_golden.py [ei_sim | brian2 | all]")
    golden = os.path.join(HERE, "golden")
    if what[0] in ("ei_sim", "all"):
        write_ei_sim(golden)
    if what[0] in ("brian2", "all"):
        write_brian2(os.path.join(golden, "brian2_reference.h5"))
