"""The native loop of ``ei-sim simulate`` (ei_sim.sim.hostrun) against the engine.

The loop runs a network without input or readout in one native call per chunk; its arithmetic
is the engine's step with the native cell kernel, so spikes, traces and final states must be
equal bit for bit (float32 and float64), whatever the chunking, the number of trials and the
trial groups run in parallel. The command itself must start without JAX.
"""

import ctypes
import json
import os
import subprocess
import sys

import h5py
import jax
import numpy as np
import pytest

from ei_sim.models.va_coba import va_coba
from ei_sim.sim import hostrun, native
from ei_sim.sim.engine import simulate_jit
from ei_sim.sim.keys import split_seed
from ei_sim.sim.monitors import Monitors, StateMonitor
from ei_sim.sim.run import initial_conditions
from ei_sim.sim.sparse import dense
from ei_sim.sim.state import NetState, PopState

pytestmark = pytest.mark.skipif(not hostrun.available(), reason="native loop unavailable")

SMALL = dict(n_e=320, n_i=80, p_connect=0.1, w_e_uS=1.2, w_i_uS=8.0)
RECORD = ("spikes_e", "spikes_i", "v_e", "g_exc_e", "g_inh_i")
MONITORS = Monitors(states=(StateMonitor("e", (0, 5, 7, 300), ("v_mV", "g_exc_uS"), 3),
                            StateMonitor("i", (1, 79), ("g_inh_uS",), 3)))  # fmt: skip


def _batched(state: NetState, batch: int, seed: int) -> NetState:
    """``batch`` trials: the state's trial plus trials with shuffled voltages."""
    rng = np.random.default_rng(seed)

    def pop(p: PopState) -> PopState:
        v = np.asarray(p.v_mV)
        vs = [v[0]] + [rng.permutation(v[0]) for _ in range(batch - 1)]
        tile = lambda x: np.repeat(np.asarray(x), batch, axis=0)  # noqa: E731
        return PopState(np.stack(vs), *(tile(x) for x in p[1:]))

    acc = type(state.acc)(*(np.repeat(np.asarray(x), batch, axis=0) for x in state.acc))
    return NetState(pop(state.e), pop(state.i), np.repeat(np.asarray(state.out_v), batch, 0), acc)


def _engine(weights, state, config):
    final, rec = simulate_jit(weights, state, None, config, n_steps=config.n_steps, record=RECORD)
    return final, {k: np.asarray(v) for k, v in rec.items()}


def _host(weights, state, config, chunk, threads=None):
    chunks = list(hostrun.iter_chunks(weights, state, config, MONITORS, chunk_steps=chunk,
                                      threads=threads))  # fmt: skip
    return chunks[-1][0], [c for _, c in chunks]


def _check_equal(final, rec, host_final, chunks):
    for pop, key in (("e", "spikes_e"), ("i", "spikes_i")):
        t, b, n = np.nonzero(rec[key])
        step = np.concatenate([c.spikes[pop].step for c in chunks])
        trial = np.concatenate([c.spikes[pop].trial for c in chunks])
        index = np.concatenate([c.spikes[pop].index for c in chunks])
        assert len(t) > 20
        np.testing.assert_array_equal(np.stack([step, trial, index]), np.stack([t, b, n]))
    traces = {k: np.concatenate([c.traces[k] for c in chunks]) for k in chunks[0].traces}
    np.testing.assert_array_equal(traces["e.v_mV"], rec["v_e"][::3][:, :, [0, 5, 7, 300]])
    np.testing.assert_array_equal(traces["e.g_exc_uS"], rec["g_exc_e"][::3][:, :, [0, 5, 7, 300]])
    np.testing.assert_array_equal(traces["i.g_inh_uS"], rec["g_inh_i"][::3][:, :, [1, 79]])
    for ours, theirs in zip(jax.tree.leaves(host_final), jax.tree.leaves(final), strict=True):
        np.testing.assert_array_equal(ours, np.asarray(theirs))


@pytest.mark.parametrize("x64", [False, True], ids=["float32", "float64"])
def test_native_loop_equals_the_engine_bit_for_bit(x64):
    model = va_coba(t_ms=60.0, **SMALL)
    config = model.config
    assert config.cell_kernel == "native"  # the preset's cells where the kernels build
    with jax.enable_x64(x64):
        weights, state, _ = initial_conditions(model, 3)
        dtype = np.float64 if x64 else np.float32
        state = jax.tree.map(lambda a: np.asarray(a, dtype) if np.asarray(a).dtype.kind == "f"
                             else np.asarray(a), state)  # fmt: skip
        state = _batched(state, 3, 0)
        final, rec = _engine(weights, state, config)
        for chunk, threads in ((90, 1), (600, 2), (21, 3)):
            _check_equal(final, rec, *_host(weights, state, config, chunk, threads))


def test_dense_blocks_and_absent_blocks_run_as_the_engine():
    model = va_coba(t_ms=40.0, **SMALL)
    weights, state, _ = initial_conditions(model, 1)
    as_dense = weights._replace(**{k: np.asarray(dense(getattr(weights, k)))
                                   for k in ("w_ee", "w_ei", "w_ie")}, w_ii=None)  # fmt: skip
    final, rec = _engine(as_dense, state, model.config)
    _check_equal(final, rec, *_host(as_dense, state, model.config, 150))


def test_full_size_network_float32_and_overflowing_event_buffers(monkeypatch):
    model = va_coba(t_ms=100.0)
    weights, state, _ = initial_conditions(model, 0)
    final, rec = _engine(weights, state, model.config)
    monkeypatch.setattr(hostrun, "EVENT_CAPACITY", 5000)  # calls stop early, resume
    _check_equal(final, rec, *_host(weights, state, model.config, 400))


def test_cells_of_8_lanes_equal_the_scalar_code_on_extreme_inputs():
    """The vector cell updates (cells.h: AVX-512 and AVX2) against the compiler's scalar code,
    through the loop: one step of cells whose conductances and voltages span the fast and the
    full exponential path (|x| below and above 0.34, beyond the clamp at 88, NaN), in 16-lane
    blocks (where the CPU has AVX-512), an 8-lane block and the scalar tail (1,003 = 62 x 16 +
    8 + 3)."""
    model = va_coba(t_ms=0.1, n_e=1003, n_i=13, p_connect=0.01)
    config = model.config
    weights, state, _ = initial_conditions(model, 0)
    rng = np.random.default_rng(5)
    n = config.n_e
    g = np.concatenate([rng.uniform(0, 60, n // 3), rng.uniform(60, 2e4, n // 3),
                        rng.uniform(-1.5, 1e5, n - 2 * (n // 3))]).astype(np.float32)  # fmt: skip
    g[[5, 17, 999]] = [np.nan, np.inf, -0.5]
    e = state.e._replace(g_exc_uS=g[None], g_inh_uS=rng.permutation(g)[None],
                         v_mV=rng.uniform(-90, -40, (1, n)).astype(np.float32),
                         refractory_steps=rng.integers(0, 4, (1, n)).astype(np.int32))  # fmt: skip
    state = state._replace(e=e)
    final, _ = simulate_jit(weights, state, None, config, n_steps=1)
    host_final = list(hostrun.iter_chunks(weights, state, config, Monitors()))[-1][0]
    for ours, theirs in zip(host_final.e, final.e, strict=True):
        np.testing.assert_array_equal(ours, np.asarray(theirs))


def test_keys_equal_jax():
    for seed in (0, 1, 42, 123456789, 2**32 - 1):
        np.testing.assert_array_equal(
            split_seed(seed), np.asarray(jax.random.split(jax.random.PRNGKey(seed)))
        )


def test_no_jax_in_the_native_keys_path():
    code = ("import sys; from ei_sim.sim.keys import split_seed; k = split_seed(7); "
            "print('jax' in sys.modules, k.tolist())")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    imported, words = out.stdout.split(" ", 1)
    assert imported == "False"
    assert json.loads(words) == np.asarray(jax.random.split(jax.random.PRNGKey(7))).tolist()


def test_simulate_command_starts_without_jax_and_compiles_nothing(tmp_path):
    code = (
        "import sys; from ei_sim.cli import main; code = main(sys.argv[1:]); "
        "print('JAX' if 'jax' in sys.modules else 'no JAX', file=sys.stderr); sys.exit(code)"
    )
    out = str(tmp_path / "va.h5")
    proc = subprocess.run([sys.executable, "-c", code, "simulate", "--model", "va_coba",
                           "--t-ms", "50", "--chunk-ms", "20", "--out", out, "--timings",
                           "--no-progress"], capture_output=True, text=True,
                          env={**os.environ, "JAX_ENABLE_X64": "0"})  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert lines[-1] == "no JAX"
    timings = json.loads(lines[-2])
    assert timings["native_loop"] and timings["programs"] == 0 and timings["loop_cpu_s"] > 0
    # the same spikes as the engine's run of the same network
    model = va_coba(t_ms=50.0)
    weights, state, _ = initial_conditions(model, 0)
    _, rec = _engine(weights, state, model.config)
    with h5py.File(out) as fh:
        t, _, n = np.nonzero(rec["spikes_e"])
        np.testing.assert_array_equal(fh["spikes/e/step"][()], t)
        np.testing.assert_array_equal(fh["spikes/e/index"][()], n)


def test_abi_and_layout_of_the_run_structure():
    lib = native.library()
    assert lib.ei_sim_host_abi() == hostrun.ABI
    # 13 doubles, 2 int32, 5 int64, then pointers and counters: no padding surprises
    assert ctypes.sizeof(hostrun._Run) % 8 == 0
    assert hostrun._Run.batch.offset == 13 * 8 + 2 * 4


def test_not_applicable_with_input_or_readout_or_xla_cells():
    model = va_coba(t_ms=10.0)
    assert hostrun.applicable(model.config)
    assert not hostrun.applicable(model.config, inputs=(np.zeros((1, 1)), np.zeros((1, 1))))
    assert not hostrun.applicable(model.replace(cell_kernel="xla").config)
    assert not hostrun.applicable(model.replace(n_out=10).config)
