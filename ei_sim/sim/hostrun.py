"""Chunked runs of a network without input or readout in the native loop, without JAX.

For a network that has no input and no readout (the Vogels-Abbott preset), a whole chunk of
steps runs as one call of the native loop (``native/host.cc``): the conductance update, the
cell update, the spike count and the next step's synaptic input are one pass over the cells
per step, and the spikes are written out as events (step, trial, cell) and the traces of the
monitored cells as they happen. The arithmetic is the engine's step with the native cell kernel
(``config.cell_kernel = "native"``), operation for operation, so a run gives the spikes and
states of :func:`ei_sim.sim.monitors.run_chunk` on such a config (tested).

:func:`applicable` says whether a run can go this way; :func:`iter_chunks` has the interface of
:func:`ei_sim.sim.recorder.iter_chunks`. The next chunk runs in a thread (the native call holds
no Python lock) while the caller handles the current one, and trials are split into groups
run in parallel on the cores. Nothing here imports JAX.
"""

from __future__ import annotations

import ctypes
import math
import os
import threading
import time
from collections.abc import Iterator

import numpy as np

from ei_sim.sim import native
from ei_sim.sim.blocks import SparseBlock
from ei_sim.sim.config import NetworkConfig
from ei_sim.sim.monitors import Monitors, SpikeEvents, bin_counts
from ei_sim.sim.recorder import ChunkRecord, chunk_length
from ei_sim.sim.state import Accumulators, NetState, PopState, Weights

ABI = 1
SOURCES = {("e", "v_mV"): 0, ("e", "g_exc_uS"): 1, ("e", "g_inh_uS"): 2,
           ("i", "v_mV"): 3, ("i", "g_exc_uS"): 4, ("i", "g_inh_uS"): 5}  # fmt: skip
EVENT_CAPACITY = 1 << 20  # events per population and call (the call stops early when full)


class _Probe(ctypes.Structure):
    _fields_ = [("source", ctypes.c_int32), ("n_cells", ctypes.c_int32),
                ("every", ctypes.c_int64), ("cells", ctypes.c_void_p),
                ("out", ctypes.c_void_p)]  # fmt: skip


_P = ctypes.c_void_p
_DOUBLES = ("g_leak_e", "c_e", "g_leak_i", "c_i", "e_leak", "e_exc", "e_inh", "dt", "v_th",
            "v_reset", "v_floor", "d_ampa", "d_gaba")  # fmt: skip


class _Run(ctypes.Structure):
    _fields_ = [
        *((name, ctypes.c_double) for name in _DOUBLES),
        ("n_ref_e", ctypes.c_int32), ("n_ref_i", ctypes.c_int32),
        *((name, ctypes.c_int64) for name in ("batch", "b0", "b1", "n_e", "n_i")),
        ("e_indptr", _P), ("e_cols", _P), ("e_data", _P),
        ("i_indptr", _P), ("i_cols", _P), ("i_data", _P),
        ("v_e", _P), ("ge_e", _P), ("gi_e", _P), ("s_e", _P), ("count_e", _P), ("ref_e", _P),
        ("v_i", _P), ("ge_i", _P), ("gi_i", _P), ("s_i", _P), ("count_i", _P), ("ref_i", _P),
        ("scratch", _P), ("lists", _P),
        ("t0", ctypes.c_int64), ("n_steps", ctypes.c_int64), ("capacity", ctypes.c_int64),
        ("ev_step_e", _P), ("ev_trial_e", _P), ("ev_index_e", _P), ("n_events_e", ctypes.c_int64),
        ("ev_step_i", _P), ("ev_trial_i", _P), ("ev_index_i", _P), ("n_events_i", ctypes.c_int64),
        ("n_probes", ctypes.c_int64), ("probes", _P),
    ]  # fmt: skip


def _functions():
    """The library's run functions by float type, or None when it is not there."""
    lib = native.library()
    if lib is None:
        return None
    try:
        if lib.ei_sim_host_abi() != ABI:
            return None
        funcs = {np.dtype(np.float32): lib.ei_sim_host_run_f32,
                 np.dtype(np.float64): lib.ei_sim_host_run_f64}  # fmt: skip
    except AttributeError:
        return None
    for f in funcs.values():
        f.restype = ctypes.c_int64
        f.argtypes = [ctypes.POINTER(_Run)]
    return funcs


def available() -> bool:
    """Whether the native loop can be built and loaded here."""
    return _functions() is not None


def _host_block(w):
    """A recurrent block as host CSR arrays ``(indptr, cols, data)``, n_post; None if absent;
    ValueError for a form the loop does not take (batched weights, a traced array)."""
    if w is None:
        return None
    if isinstance(w, SparseBlock):
        data = np.asarray(w.data)
        if data.ndim != 1:
            raise ValueError("batched sparse weights")
        return np.asarray(w.indptr, np.int64), np.asarray(w.cols, np.int64), data, w.shape
    dense = np.asarray(w)
    if dense.ndim != 2:
        raise ValueError("batched dense weights")
    rows, cols = np.nonzero(dense)  # zeros add nothing: the same sums as the dense kernel
    indptr = np.zeros(dense.shape[0] + 1, np.int64)
    np.cumsum(np.bincount(rows, minlength=dense.shape[0]), out=indptr[1:])
    return indptr, cols.astype(np.int64), dense[rows, cols], dense.shape


def _join(blocks, n_pre: int, dtype):
    """Blocks with the same presynaptic rows joined column-wise (targets E cells first, then I
    cells), as contiguous int32 / ``dtype`` CSR arrays; None when both are absent."""
    present = [(b, offset) for b, offset in blocks if b is not None]
    if not present:
        return None
    lengths = [np.diff(b[0]) for b, _ in present]
    indptr = np.zeros(n_pre + 1, np.int64)
    np.cumsum(sum(lengths), out=indptr[1:])
    cols = np.empty(indptr[-1], np.int32)
    data = np.empty(indptr[-1], dtype)
    base = indptr[:-1].copy()
    for ((ptr, c, d, _), offset), length in zip(present, lengths, strict=True):
        rows = np.repeat(np.arange(n_pre), length)
        dest = base[rows] + (np.arange(len(c)) - ptr[rows])
        cols[dest] = c + offset
        data[dest] = d
        base += length
    return indptr.astype(np.int32), cols, data


def applicable(config: NetworkConfig, weights: Weights | None = None, state=None,
               inputs=None) -> bool:  # fmt: skip
    """Whether a run of this network can go through the native loop: no input, no readout,
    the native paths not switched off in ``config``, float32/float64 state, recurrent blocks
    dense or sparse (unbatched), and the library there. ``weights``/``state`` are checked when
    given (the config alone decides before they are drawn)."""
    if inputs is not None or config.n_out > 0:
        return False
    if config.propagation not in ("auto", "native") or config.cell_kernel not in ("auto", "native"):
        return False
    if weights is not None:
        if weights.w_in is not None or weights.w_out is not None:
            return False
        try:
            for w in (weights.w_ee, weights.w_ei, weights.w_ie, weights.w_ii):
                _host_block(w)
        except (ValueError, TypeError):
            return False
    if state is not None:
        dtype = np.asarray(state.e.v_mV).dtype
        if dtype not in (np.float32, np.float64) or np.ndim(state.e.v_mV) != 2:
            return False
    return available()


class _Group:
    """The trials ``[b0, b1)``: their scratch, event buffers and the call's structure."""

    def __init__(self, base: _Run, b0: int, b1: int, n: int, dtype, keep: list):
        self.run = _Run()
        ctypes.memmove(ctypes.addressof(self.run), ctypes.addressof(base), ctypes.sizeof(_Run))
        self.run.b0, self.run.b1 = b0, b1
        self.scratch = np.zeros((b1 - b0) * 2 * n, dtype)
        self.lists = np.zeros((b1 - b0) * n, np.int32)
        self.run.scratch = self.scratch.ctypes.data
        self.run.lists = self.lists.ctypes.data
        self.run.capacity = EVENT_CAPACITY
        self.events = {pop: np.empty((3, EVENT_CAPACITY), np.int32) for pop in ("e", "i")}
        for pop, ev in self.events.items():
            for k, field in enumerate(("ev_step_", "ev_trial_", "ev_index_")):
                setattr(self.run, field + pop, ev[k].ctypes.data)
        self.keep = keep

    def advance(self, func, t0: int, n_steps: int) -> dict[str, list[np.ndarray]]:
        """Run steps ``t0 .. t0 + n_steps - 1`` of the chunk; the events, in parts."""
        parts = {"e": [], "i": []}
        done = 0
        while True:
            self.run.t0, self.run.n_steps = t0 + done, n_steps - done
            self.run.n_events_e = self.run.n_events_i = 0
            done += func(ctypes.byref(self.run))
            for pop in ("e", "i"):
                n = getattr(self.run, f"n_events_{pop}")
                if n:
                    parts[pop].append(self.events[pop][:, :n].copy())
            if done >= n_steps:
                return parts


def _state_arrays(state: NetState, dtype) -> NetState:
    """Contiguous host copies of the state (the loop advances them in place)."""

    def pop(p: PopState) -> PopState:
        return PopState(*(np.array(x, np.int32 if k == 3 else dtype, order="C", copy=True)
                          for k, x in enumerate(p)))  # fmt: skip

    acc = state.acc
    return NetState(pop(state.e), pop(state.i), np.array(state.out_v, dtype, copy=True),
                    Accumulators(np.array(acc.count_e, dtype, order="C", copy=True),
                                 np.array(acc.count_i, dtype, order="C", copy=True),
                                 np.array(acc.out_v_sum, dtype, copy=True)))  # fmt: skip


def _copy(state: NetState) -> NetState:
    return NetState(PopState(*(x.copy() for x in state.e)), PopState(*(x.copy() for x in state.i)),
                    state.out_v.copy(), Accumulators(*(x.copy() for x in state.acc)))  # fmt: skip


def iter_chunks(
    weights: Weights, state: NetState, config: NetworkConfig, monitors: Monitors,
    chunk_steps: int | None = None, n_steps: int | None = None, threads: int | None = None,
    stats: dict | None = None,
) -> Iterator[tuple[NetState, ChunkRecord]]:  # fmt: skip
    """Yield ``(state_after_chunk, ChunkRecord)`` for consecutive chunks of a run without input
    (as :func:`ei_sim.sim.recorder.iter_chunks`; ``n_steps`` defaults to ``config.n_steps``).

    Chunk ``k + 1`` is computed in a thread while chunk ``k`` is handed out. ``threads``: trial
    groups run in parallel (default: the cores, at most one per trial). ``stats``, when given,
    receives ``loop_cpu_s``: the processor time of the native loop (its threads' own time,
    events and traces included; not the caller's handling of the chunks).
    """
    stats = {} if stats is None else stats
    stats["loop_cpu_s"] = 0.0
    cpu_lock = threading.Lock()
    funcs = _functions()
    if funcs is None:
        raise RuntimeError(f"the native loop is unavailable: {native.unavailable_reason()}")
    monitors.check(config)
    n_steps = config.n_steps if n_steps is None else int(n_steps)
    length = chunk_length(monitors, n_steps, chunk_steps)
    dtype = np.asarray(state.e.v_mV).dtype
    func = funcs[np.dtype(dtype)]
    st = _state_arrays(state, dtype)
    batch, n_e = st.e.v_mV.shape
    n_i = st.i.v_mV.shape[1]
    blocks = [_host_block(w) for w in (weights.w_ee, weights.w_ei, weights.w_ie, weights.w_ii)]
    from_e = _join([(blocks[0], 0), (blocks[1], n_e)], n_e, dtype)
    from_i = _join([(blocks[2], 0), (blocks[3], n_e)], n_i, dtype)
    keep = [from_e, from_i, st]  # alive as long as the calls

    base = _Run()
    e, i = config.cell_e, config.cell_i
    values = dict(g_leak_e=e.g_leak_uS, c_e=e.c_nF, g_leak_i=i.g_leak_uS, c_i=i.c_nF,
                  e_leak=config.e_leak_mV, e_exc=config.e_exc_mV, e_inh=config.e_inh_mV,
                  dt=config.dt_ms, v_th=config.v_th_mV, v_reset=config.v_reset_mV,
                  v_floor=config.v_floor_mV, d_ampa=math.exp(-config.dt_ms / config.tau_ampa_ms),
                  d_gaba=math.exp(-config.dt_ms / config.tau_gaba_ms))  # fmt: skip
    for name, value in values.items():
        setattr(base, name, float(value))
    base.n_ref_e, base.n_ref_i = config.refractory_steps(e), config.refractory_steps(i)
    base.batch, base.n_e, base.n_i = batch, n_e, n_i
    for prefix, joined in (("e", from_e), ("i", from_i)):
        if joined is not None:
            for field, array in zip(("indptr", "cols", "data"), joined, strict=True):
                setattr(base, f"{prefix}_{field}", array.ctypes.data)
    for name, pop in (("e", st.e), ("i", st.i)):
        for field, array in (("v", pop.v_mV), ("ge", pop.g_exc_uS), ("gi", pop.g_inh_uS),
                             ("s", pop.spikes), ("ref", pop.refractory_steps)):  # fmt: skip
            setattr(base, f"{field}_{name}", array.ctypes.data)
    base.count_e, base.count_i = st.acc.count_e.ctypes.data, st.acc.count_i.ctypes.data

    # traces: one buffer per monitored variable and chunk
    probe_specs = []
    for m in monitors.states:
        cells = np.asarray(m.cells, np.int32)
        for var, key in zip(m.variables, m.names(), strict=True):
            probe_specs.append((key, SOURCES[(m.population, var)], cells, m.every_steps))
    probes = (_Probe * max(1, len(probe_specs)))()
    base.n_probes = len(probe_specs)
    base.probes = ctypes.cast(probes, ctypes.c_void_p)
    keep.append(probes)

    n_groups = max(1, min(batch, threads or os.cpu_count() or 1))
    edges = np.linspace(0, batch, n_groups + 1).round().astype(int)
    groups = [_Group(base, int(a), int(b), n_e + n_i, dtype, keep)
              for a, b in zip(edges[:-1], edges[1:], strict=True) if b > a]  # fmt: skip

    def advance(group: _Group, n: int) -> dict:
        t0 = time.thread_time()
        parts = group.advance(func, 0, n)
        with cpu_lock:
            stats["loop_cpu_s"] += time.thread_time() - t0
        return parts

    def compute(k: int) -> ChunkRecord:
        start = k * length
        n = min(length, n_steps - start)
        traces = {}
        for j, (key, _, cells, every) in enumerate(probe_specs):
            traces[key] = np.zeros((-(-n // every), batch, len(cells)), dtype)
            probes[j].source, probes[j].n_cells = probe_specs[j][1], len(cells)
            probes[j].every, probes[j].cells = every, cells.ctypes.data
            probes[j].out = traces[key].ctypes.data
        for g in groups:
            g.run.n_probes, g.run.probes = base.n_probes, base.probes
        if len(groups) == 1:
            parts = [advance(groups[0], n)]
        else:
            parts = [None] * len(groups)

            def work(j):
                parts[j] = advance(groups[j], n)

            workers = [threading.Thread(target=work, args=(j,)) for j in range(len(groups))]
            for w in workers:
                w.start()
            for w in workers:
                w.join()
        spikes, counts = {}, {}
        n_bins = -(-n // monitors.bin_steps)
        for pop in ("e", "i"):
            found = [p for group_parts in parts for p in group_parts[pop]]
            ev = np.concatenate(found, axis=1) if found else np.zeros((3, 0), np.int32)
            if len(groups) > 1:  # (step, trial) order, as the decoded bit raster gives
                ev = ev[:, np.lexsort((ev[2], ev[1], ev[0]))]
            events = SpikeEvents(ev[0].astype(np.int64) + start, ev[1].copy(), ev[2].copy())
            if pop in monitors.spikes:
                spikes[pop] = events
                counts[pop] = bin_counts(events, n_bins, batch, monitors.bin_steps, start)
        return ChunkRecord(k, start, n, spikes, counts, traces)

    n_chunks = -(-n_steps // length)
    result: list = []

    def launch(k: int) -> threading.Thread:
        def target():
            try:
                result.append(compute(k))
            except BaseException as err:  # noqa: BLE001 - handed to the caller
                result.append(err)

        thread = threading.Thread(target=target, daemon=True)
        thread.start()
        return thread

    pending = launch(0)
    for k in range(n_chunks):
        pending.join()
        record = result.pop()
        if isinstance(record, BaseException):
            raise record
        snapshot = _copy(st)
        if k + 1 < n_chunks:
            pending = launch(k + 1)
        yield snapshot, record
