"""Read any ei-sim result file into plain arrays, by its kind.

Kinds (:func:`file_kind`): ``simulate`` (``ei-sim simulate --out``: groups ``/spikes/e``,
``/spikes/i``), ``run`` (a training run's ``run.h5``, or its directory: weights and
``model.*`` attributes; its reference-trial snapshots under ``/snapshots``), ``grid`` (a grid
store) and ``scale_sweep`` / ``coupling_sweep`` (sweep files).

Spikes come back as a :class:`Recording`: per population the event lists of spike times
(ms, float64, within the trial), trial and cell indices, plus the trials' observed windows
and optional state traces. Spike times are read from either layout of a spike group:
``step`` (integer steps) times ``dt_ms`` (the group's attribute, else the file's
``model.config.dt_ms``) where present, else ``time_ms`` (float32 or float64 milliseconds).
A simulate file's trials last ``t_done_ms`` (a run stopped early), else ``model.config.t_ms``;
its traces are ``/traces/<pop>/<variable>/values`` (samples, trials, cells) sampled every
``every_steps`` steps, with the recorded cells in ``/traces/<pop>/<variable>/cells`` (or one
``/traces/<pop>/cells`` beside ``<variable>`` datasets).
"""

from __future__ import annotations

import os
from typing import NamedTuple

import h5py
import numpy as np

from ei_sim.store.attrs import read_attrs
from ei_sim.store.checksum import Damaged, ensure_sound
from ei_sim.store.kinds import kind_of, open_kind
from ei_sim.store.paths import run_path
from ei_sim.sweeps import store as sweeps_store

SPIKE_KINDS = ("simulate", "run")
TABLE_KINDS = ("grid", "scale_sweep", "coupling_sweep")
KINDS = SPIKE_KINDS + TABLE_KINDS
POPULATIONS = ("e", "i")
EXPECTED = "a simulate file, a training run (run.h5 or its directory), a grid store or a sweep file"


class SpikeEvents(NamedTuple):
    """The spikes of one population: one entry per spike."""

    name: str  # "e" or "i"
    n_cells: int
    times_ms: np.ndarray  # float64, from the start of the trial
    trial: np.ndarray  # int64
    cell: np.ndarray  # int64


class Trace(NamedTuple):
    """A state variable of some cells in one trial, sampled every ``dt_ms`` from ``start_ms``."""

    population: str
    variable: str  # with its unit: "v_mV", "g_exc_uS", "g_inh_uS"
    cells: np.ndarray  # (C,) indices of the recorded cells
    trial: int
    start_ms: float
    dt_ms: float
    values: np.ndarray  # (samples, C)


class Recording(NamedTuple):
    """Spikes (and traces) of a simulate file or of a run's reference-trial snapshots."""

    kind: str
    source: str
    dt_ms: float
    trial_ms: float  # length of each trial; trial k starts at k * trial_ms on a shared clock
    window_ms: tuple[float, float]  # observed part of every trial (snapshots drop the start)
    trial_info: list[dict]  # per trial: labels such as {"trial": 0} or {"epoch": 3, "digit": 7}
    populations: tuple[SpikeEvents, ...]
    traces: tuple[Trace, ...]
    attrs: dict  # the file's root attributes (model.*, train.*, provenance.*, ...)


def resolve(path: str) -> str:
    """The HDF5 file behind ``path`` (a run directory gives its ``run.h5``)."""
    return run_path(path) if os.path.isdir(path) else path


def _kind_of(fh) -> str | None:
    """The file's kind (:func:`ei_sim.store.kinds.kind_of`) when it is one of :data:`KINDS`."""
    kind = kind_of(fh)
    return kind if kind in KINDS else None


def _open(path: str, kinds=KINDS):
    """Open ``path`` (a run directory: its ``run.h5``) as one of ``kinds`` (one-line errors
    of :func:`ei_sim.store.kinds.open_kind`)."""
    return open_kind(resolve(path), kinds, missing=f"give {EXPECTED}")


def file_kind(path: str) -> str:
    """One of :data:`KINDS`; ValueError (one line) for a missing, unreadable or unknown file."""
    with _open(path) as fh:
        return _kind_of(fh)


def spike_times_ms(group, dt_ms: float) -> np.ndarray:
    """Spike times (ms, float64) of a spike-list group in either layout (module docstring)."""
    if "step" in group:
        step_dt_ms = float(group.attrs.get("dt_ms", dt_ms))
        return group["step"][()].astype(np.int64) * step_dt_ms
    if "time_ms" in group:
        return np.asarray(group["time_ms"][()], np.float64)
    raise ValueError(f"{group.file.filename}:{group.name} holds neither time_ms nor step")


def _events(group, name: str, dt_ms: float) -> SpikeEvents:
    times = spike_times_ms(group, dt_ms)
    cell_key = "index" if "index" in group else "cell"
    trial = group["trial"][()] if "trial" in group else np.zeros(times.size)
    return SpikeEvents(name, int(group.attrs["n_cells"]), times, np.asarray(trial, np.int64),
                       np.asarray(group[cell_key][()], np.int64))  # fmt: skip


def _dt_ms(attrs: dict, path: str) -> float:
    if "model.config.dt_ms" not in attrs:
        raise ValueError(f"{path} lacks the root attribute model.config.dt_ms")
    return float(attrs["model.config.dt_ms"])


def _trial_ms(fh, attrs: dict, dt_ms: float, path: str) -> float:
    """How much of each trial the file holds (module docstring)."""
    for key in ("t_done_ms", "model.config.t_ms"):
        if key in attrs:
            return float(attrs[key])
    if "population/e" in fh:
        return fh["population/e"].shape[0] * dt_ms
    raise ValueError(f"{path} lacks the root attribute model.config.t_ms")


def _trace_sets(group):
    """``(variable, values dataset, cells dataset)`` of one population's traces: either
    ``<var>/values`` beside ``<var>/cells``, or ``<var>`` datasets beside one ``cells``."""
    for var in sorted(group):
        item = group[var]
        if isinstance(item, h5py.Group) and "values" in item and "cells" in item:
            yield var, item["values"], item["cells"]
        elif isinstance(item, h5py.Dataset) and var != "cells" and "cells" in group:
            yield var, item, group["cells"]


def _traces(fh, dt_ms: float) -> list[Trace]:
    out = []
    for pop in POPULATIONS:
        group = fh.get(f"traces/{pop}")
        for var, values, cells in _trace_sets(group) if group is not None else ():
            every = values.attrs.get("every_steps", values.parent.attrs.get("every_steps", 1))
            data = values[()]  # (samples, trials, cells)
            out += [Trace(pop, var, np.asarray(cells[()], np.int64), b, 0.0, int(every) * dt_ms,
                          data[:, b]) for b in range(data.shape[1])]  # fmt: skip
    return out


def _read_simulate(fh, path: str) -> Recording:
    attrs = read_attrs(fh)
    dt_ms = _dt_ms(attrs, path)
    pops = tuple(_events(fh[f"spikes/{p}"], p, dt_ms) for p in POPULATIONS if f"spikes/{p}" in fh)
    trial_ms = _trial_ms(fh, attrs, dt_ms, path)
    n_trials = max(int(fh[f"spikes/{p.name}"].attrs.get("n_trials", 1)) for p in pops)
    info = [{"trial": k} for k in range(n_trials)]
    traces = tuple(_traces(fh, dt_ms))
    return Recording("simulate", path, dt_ms, trial_ms, (0.0, trial_ms), info, pops, traces,
                     attrs)  # fmt: skip


def _read_run(fh, path: str) -> Recording:
    """The run's snapshots as consecutive trials, one per epoch."""
    from ei_sim.analysis.video import NO_SNAPSHOTS, read_snapshots

    try:
        snapshots = read_snapshots(fh)
    except Damaged:
        raise
    except ValueError:
        raise ValueError(f"{path}: {NO_SNAPSHOTS}") from None
    first = snapshots[0]
    dt_ms, drop_ms, n_steps = first.dt_ms, first.drop_ms, first.v_trace_mV.shape[0]
    if any(s.dt_ms != dt_ms or s.drop_ms != drop_ms or len(s.v_trace_mV) != n_steps
           for s in snapshots):  # fmt: skip
        raise ValueError(f"{path}: snapshots differ in dt, dropped start or length")
    pops, traces = [], []
    for name in POPULATIONS:
        parts = [np.nonzero(getattr(s, f"spikes_{name}")) for s in snapshots]
        pops.append(SpikeEvents(
            name, getattr(first, f"spikes_{name}").shape[1],
            np.concatenate([drop_ms + steps * dt_ms for steps, _ in parts]),
            np.concatenate([np.full(steps.size, k) for k, (steps, _) in enumerate(parts)]),
            np.concatenate([cells for _, cells in parts]).astype(np.int64),
        ))  # fmt: skip
    for k, s in enumerate(snapshots):
        values = np.asarray(s.v_trace_mV)[:, None]
        traces.append(Trace("e", "v_mV", np.zeros(1, np.int64), k, drop_ms, dt_ms, values))
    info = [{"epoch": int(s.epoch), "digit": int(s.label)} for s in snapshots]
    trial_ms = drop_ms + n_steps * dt_ms
    return Recording("run", path, dt_ms, trial_ms, (drop_ms, trial_ms), info, tuple(pops),
                     tuple(traces), read_attrs(fh))  # fmt: skip


def read_recording(path: str) -> Recording:
    """The spikes of a simulate file or of a run's snapshots; ValueError for other kinds."""
    file = resolve(path)
    with _open(path) as fh:
        kind = _kind_of(fh)
        try:
            if kind == "simulate":
                ensure_sound(fh, file)
                return _read_simulate(fh, file)
            if kind == "run":
                ensure_sound(fh, file)  # its last epoch (each snapshot is checked as read)
                return _read_run(fh, file)
        except (KeyError, OSError, RuntimeError) as err:  # damaged beyond its checksum
            reason = str(err).splitlines()[0] if str(err) else type(err).__name__
            raise Damaged(file, "", f"unreadable: {reason}") from None
    raise ValueError(f"{path}: kind {kind!r} holds no spike trains; give a simulate file or a run")


def read_grid(path: str) -> dict:
    """A grid store's root attributes and, per cell, its attributes and per-epoch metrics
    (:func:`ei_sim.sweeps.store.read_grid`)."""
    return sweeps_store.read_grid(path)


def read_sweep(path: str) -> dict:
    """A sweep file's root attributes and its arrays (scales, coupling_scales, (C, S) values;
    :func:`ei_sim.sweeps.store.read_sweep`)."""
    return sweeps_store.read_sweep(path)
