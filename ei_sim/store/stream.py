"""HDF5 result files filled chunk by chunk while a run goes on.

A :class:`StreamWriter` writes ``PATH.partial`` and renames it to ``PATH`` when the run
completes (``complete = True``, ``status = "complete"``). After every chunk it extends the
datasets, updates the root attributes ``chunks_done``, ``steps_done`` and ``t_done_ms``,
seals the root with the checksum of everything written so far (:mod:`ei_sim.store.checksum`,
computed as the chunks stream, never read back) and flushes the file, so a run stopped
between chunks (Ctrl-C, SIGTERM, a kill) leaves ``PATH.partial`` readable, holding exactly
the finished chunks, with ``complete = False`` and ``status`` "interrupted" (or "running"
when the process was killed outright).

The writer holds the lock on ``PATH`` (:func:`ei_sim.store.lock.exclusive`) from before the
partial file is opened until it is renamed or closed: a second writer of ``PATH`` is refused
at once and never touches the first one's partial file. Before every chunk the free space
of the folder is checked against what the chunk can take (twice its raw size, plus room for
HDF5's bookkeeping): when it would not fit, the run stops there with one line
(:class:`OutOfSpace`), keeping the finished chunks in ``PATH.partial`` (``status =
"stopped"``). A write that fails anyway (the disk filled meanwhile) removes the partial
file, first cut to nothing so that HDF5 can close it (an HDF5 file closed on a full disk
aborts the process), and ends in one line too.

Layout (``T`` steps, ``B`` trials; root attributes ``kind = "simulate"``, ``schema_version``,
the model's ``model.*``, provenance and the progress above)::

    /spikes/<pop>/step      int64   spike step (exact for any run length; ei_sim.store.spikes)
    /spikes/<pop>/time_ms   float64 step * dt_ms
    /spikes/<pop>/trial     int32
    /spikes/<pop>/index     int32   cell index within the population
    /population/<pop>       (ceil(T / bin), B) float32 fraction of the population spiking per
                            step, averaged over each bin of ``bin_steps`` steps
    /traces/<pop>/<var>/values  (ceil(T / every), B, cells): sample j is the state after
                            step j * every_steps (attributes every_steps, every_ms)
    /traces/<pop>/<var>/cells   int32 indices of the recorded cells
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from collections.abc import Callable

import h5py
import numpy as np

from ei_sim.sim.config import NetworkConfig, to_attrs
from ei_sim.sim.monitors import Monitors, activity
from ei_sim.sim.recorder import ChunkRecord, chunk_length
from ei_sim.sim.run import SimulationResult, result_attrs, simulate_model
from ei_sim.sim.state import default_float
from ei_sim.store.atomic import (
    check_output_path,
    is_disk_full,
    no_space,
    remove_stale_temporaries,
    write_error,
)
from ei_sim.store.attrs import provenance, write_attrs
from ei_sim.store.checksum import StreamDigest
from ei_sim.store.kinds import stamp
from ei_sim.store.lock import exclusive
from ei_sim.store.paths import partial_path
from ei_sim.store.spikes import EVENT_FIELDS

KIND = "simulate"
MIN_FREE_BYTES = 1 << 20
HDF5_MARGIN_BYTES = 1 << 20  # free space kept for HDF5's metadata and rewritten chunks
COMPRESSION = dict(compression="gzip", compression_opts=1, shuffle=True)


class OutOfSpace(ValueError):
    """The next chunk would not fit on the disk; the finished ones stay in the partial file."""


def check_destination(path: str) -> None:
    """ValueError (one line) when ``path`` cannot take a result: missing or read-only folder,
    no free space, or a folder in the way."""
    check_output_path(path)
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise ValueError(f"output {path} is a directory; give a file name ending in .h5")
    if shutil.disk_usage(folder).free < MIN_FREE_BYTES:
        raise ValueError(f"output directory {folder} is full; free some space or choose another")


CHUNK_BYTES = 1 << 16


def _extendable(group, name: str, dtype, tail: tuple = ()):
    """An empty dataset that grows along its first axis (compressed, chunks of about 64 kB).

    Small chunks because every flush compresses the partly filled last chunk of every dataset
    anew: with 1 MB chunks that doubled the writing time of a run (measured: 0.87 s against
    0.46 s of CPU for the 20 s Vogels-Abbott run's 20 chunks)."""
    row_bytes = np.dtype(dtype).itemsize * max(1, int(np.prod(tail, dtype=np.int64)))
    rows = max(1, min(8192, CHUNK_BYTES // row_bytes))
    return group.create_dataset(name, shape=(0, *tail), maxshape=(None, *tail), dtype=dtype,
                                chunks=(rows, *tail), **COMPRESSION)  # fmt: skip


def chunk_bytes(chunk: ChunkRecord, batch: int) -> int:
    """The raw (uncompressed) bytes one chunk adds to a simulate file."""
    per_event = sum(np.dtype(dtype).itemsize for _, dtype in EVENT_FIELDS)
    events = sum(len(ev.step) for ev in chunk.spikes.values()) * per_event
    bins = sum(np.asarray(c).shape[0] for c in chunk.counts.values()) * batch * 4
    traces = sum(np.asarray(v).nbytes for v in chunk.traces.values())
    return int(events + bins + traces)


class StreamWriter:
    """Writes one run's chunks into ``PATH.partial``; :meth:`finish` renames it to ``PATH``.
    Holds the lock on ``PATH`` until it is finished, interrupted or discarded."""

    def __init__(self, path: str, config: NetworkConfig, monitors: Monitors, batch: int,
                 attrs: dict, n_steps: int, chunk_steps: int):  # fmt: skip
        self.path, self.tmp = path, partial_path(path)
        self.config, self.monitors, self.batch = config, monitors, batch
        self.digest = StreamDigest()
        self._lock = contextlib.ExitStack()
        self._lock.enter_context(exclusive(path))  # before anything is opened for writing
        self.fh = None
        try:
            check_destination(path)
            remove_stale_temporaries(os.path.dirname(os.path.abspath(path)))
            try:
                self.fh = h5py.File(self.tmp, "w")
            except OSError as err:
                raise ValueError(f"cannot create {self.tmp}: {err}") from None
            self._layout(batch, attrs, n_steps, chunk_steps)
        except BaseException as err:
            self.discard()
            if isinstance(err, OSError | RuntimeError):
                raise write_error(path, err) from None
            raise

    def _append(self, dataset, values) -> None:
        """Extend ``dataset`` by ``values`` (cast to its dtype) and count them in the digest."""
        values = np.ascontiguousarray(values, dtype=dataset.dtype)
        start = dataset.shape[0]
        dataset.resize(start + values.shape[0], axis=0)
        dataset[start:] = values
        self.digest.update(dataset.name.lstrip("/"), values, dataset.dtype, dataset.shape)

    def _count_empty(self, dataset) -> None:
        self.digest.update(dataset.name.lstrip("/"), np.zeros((0,), dataset.dtype),
                           dataset.dtype, dataset.shape)  # fmt: skip

    def _layout(self, batch, attrs, n_steps, chunk_steps) -> None:
        fh, config, m = self.fh, self.config, self.monitors
        write_attrs(fh, attrs)
        stamp(fh, KIND)
        write_attrs(fh, {"complete": False, "status": "running",
                         "chunks_done": 0, "steps_done": 0, "t_done_ms": 0.0,
                         "n_steps": n_steps, "chunk_steps": chunk_steps})  # fmt: skip
        n_cells = {"e": config.n_e, "i": config.n_i}
        for pop in m.spikes:
            group = fh.create_group(f"spikes/{pop}")
            for name, dtype in EVENT_FIELDS:
                self._count_empty(_extendable(group, name, dtype))
            write_attrs(group, {"n_cells": n_cells[pop], "n_trials": batch,
                                "dt_ms": config.dt_ms})  # fmt: skip
            pop_set = _extendable(fh.require_group("population"), pop, np.float32, (batch,))
            self._count_empty(pop_set)
            write_attrs(pop_set, {"bin_steps": m.bin_steps, "bin_ms": m.bin_steps * config.dt_ms})
        for s in m.states:
            for var in s.variables:
                group = fh.create_group(f"traces/{s.population}/{var}")
                cells = np.asarray(s.cells, np.int32)
                group.create_dataset("cells", data=cells)
                self.digest.update(f"{group.name.lstrip('/')}/cells", cells, cells.dtype,
                                   cells.shape)  # fmt: skip
                dtype = default_float()
                values = _extendable(group, "values", dtype, (batch, len(s.cells)))
                self._count_empty(values)
                write_attrs(values, {"every_steps": s.every_steps,
                                     "every_ms": s.every_steps * config.dt_ms})  # fmt: skip
        self.digest.seal(fh)
        fh.flush()
        self.grown = {}  # the growing datasets by path, opened once
        fh.visititems(lambda name, obj: self.grown.__setitem__(name, obj)
                      if isinstance(obj, h5py.Dataset) and obj.maxshape[0] is None else None)
        self.n_cells = {"e": config.n_e, "i": config.n_i}  # fmt: skip

    def _check_room(self, chunk: ChunkRecord) -> None:
        """:class:`OutOfSpace` (keeping the finished chunks) when the chunk may not fit."""
        needed = 2 * chunk_bytes(chunk, self.batch) + HDF5_MARGIN_BYTES
        try:
            free = shutil.disk_usage(os.path.dirname(os.path.abspath(self.tmp))).free
        except OSError:
            return
        if free >= needed:
            return
        done = int(self.fh.attrs.get("chunks_done", 0))
        self._close_keeping("stopped", "no space left on device")
        kept = (f"{done} finished chunk{'s are' if done != 1 else ' is'} kept in {self.tmp} "
                "(complete=False)" if done else f"no chunk finished ({self.tmp} holds none)")
        raise OutOfSpace(f"{no_space(self.path, needed)}; {kept}")

    def append(self, chunk: ChunkRecord, n_steps_total: int) -> None:
        """Add one chunk, seal and flush. Ctrl-C during the write cuts the datasets back to
        the finished chunks; a chunk that may not fit stops the run first
        (:class:`OutOfSpace`); any other error (a disk that filled meanwhile) removes the
        partial file and is raised as one line."""
        fh, config, grown = self.fh, self.config, self.grown
        self._check_room(chunk)
        lengths = [(d, d.shape[0]) for d in grown.values()]
        digest = self.digest.copy()
        progress = {k: fh.attrs[k] for k in ("chunks_done", "steps_done", "t_done_ms")}
        try:
            for pop, ev in chunk.spikes.items():
                values = {"step": ev.step, "time_ms": ev.time_ms(config.dt_ms),
                          "trial": ev.trial, "index": ev.index}  # fmt: skip
                for name, _ in EVENT_FIELDS:
                    self._append(grown[f"spikes/{pop}/{name}"], values[name])
                fraction = activity(chunk.counts[pop], chunk.start_step, n_steps_total,
                                    self.monitors.bin_steps, self.n_cells[pop])  # fmt: skip
                self._append(grown[f"population/{pop}"], fraction)
            for key, values in chunk.traces.items():
                pop, var = key.split(".")
                self._append(grown[f"traces/{pop}/{var}/values"], values)
            steps_done = chunk.start_step + chunk.n_steps
            write_attrs(fh, {"chunks_done": chunk.index + 1, "steps_done": steps_done,
                             "t_done_ms": steps_done * config.dt_ms})  # fmt: skip
            self.digest.seal(fh)
            fh.flush()
        except KeyboardInterrupt:
            for dataset, length in lengths:
                dataset.resize(length, axis=0)
            write_attrs(fh, progress)
            self.digest = digest
            self.digest.seal(fh)
            fh.flush()
            raise
        except BaseException as err:
            self.discard()
            if isinstance(err, OSError | RuntimeError) or is_disk_full(err):
                raise write_error(self.path, err) from None
            raise

    def finish(self, attrs: dict) -> None:
        """Final attributes, ``complete = True``, the checksum, then the rename to ``PATH``."""
        try:
            write_attrs(self.fh, {**attrs, "complete": True, "status": "complete"})
            self.digest.seal(self.fh)
            self.fh.close()
            os.replace(self.tmp, self.path)
        except BaseException as err:
            self.discard()
            if isinstance(err, OSError | RuntimeError):
                raise write_error(self.path, err) from None
            raise
        self._lock.close()

    def _close_keeping(self, status: str, reason: str | None = None) -> None:
        """Mark the partial file ``status`` (and why), seal, close it and release the lock."""
        try:
            if self.fh is not None and self.fh.id.valid:
                self.fh.attrs["status"] = status
                if reason:
                    self.fh.attrs["stopped_by"] = reason
                self.digest.seal(self.fh)
                self.fh.close()
        finally:
            self._lock.close()

    def interrupt(self) -> str:
        """Close, keeping the finished chunks in ``PATH.partial``; return that path."""
        self._close_keeping("interrupted")
        return self.tmp

    def discard(self) -> None:
        """Close and remove the partial file (cut to nothing first, so that HDF5 can close
        it even on a full disk); release the lock."""
        try:
            if self.fh is not None and self.fh.id.valid:
                with contextlib.suppress(OSError):
                    os.truncate(self.tmp, 0)
                with contextlib.suppress(Exception):
                    self.fh.close()
        finally:
            with contextlib.suppress(OSError):
                os.unlink(self.tmp)
            self._lock.close()


def file_attrs(model, extra_attrs: dict) -> dict:
    return {**to_attrs(model, "model."), **provenance(extra_attrs.get("seed")), **extra_attrs}


def run_to_file(
    path: str, model, seed: int = 0, images=None, *, extra_attrs: dict | None = None,
    monitors: Monitors | None = None, chunk_steps: int | None = None, drop_ms: float = 0.0,
    on_chunk: Callable[[ChunkRecord], None] | None = None,
) -> SimulationResult:  # fmt: skip
    """Simulate and stream every chunk into ``path`` (``path.partial`` until complete).

    Ctrl-C (KeyboardInterrupt) leaves ``path.partial`` with the finished chunks and
    ``status = "interrupted"`` and re-raises; any other error removes it."""
    monitors = Monitors() if monitors is None else monitors
    config, extra_attrs = model.config, dict(extra_attrs or {})
    monitors.check(config)
    batch = 1 if images is None else len(images)
    length = chunk_length(monitors, config.n_steps, chunk_steps)
    writer = StreamWriter(path, config, monitors, batch, file_attrs(model, extra_attrs),
                          config.n_steps, length)  # fmt: skip

    def sink(chunk: ChunkRecord) -> None:
        writer.append(chunk, config.n_steps)
        if on_chunk is not None:
            on_chunk(chunk)

    try:
        result = simulate_model(model, seed, images, monitors=monitors, chunk_steps=length,
                                keep=False, on_chunk=sink, drop_ms=drop_ms)  # fmt: skip
        t0 = time.perf_counter()
        writer.finish(result_attrs(result))
    except KeyboardInterrupt:
        writer.interrupt()
        raise
    except OutOfSpace:  # the writer closed the partial file, keeping the finished chunks
        raise
    except BaseException:
        writer.discard()
        raise
    result.timings["write_s"] = time.perf_counter() - t0
    return result


def write_run(path: str, model, result: SimulationResult, extra_attrs: dict) -> None:
    """Store an in-memory result (:func:`run_preset`) in the layout of :func:`run_to_file`."""
    rec = result.recording
    if rec is None:
        raise ValueError("write_run needs a result with its recording (run_preset)")
    batch = next(iter(rec.counts.values())).shape[1]
    writer = StreamWriter(path, model.config, rec.monitors, batch,
                          file_attrs(model, extra_attrs), rec.n_steps, rec.n_steps)  # fmt: skip
    try:
        writer.append(ChunkRecord(0, 0, rec.n_steps, rec.spikes, rec.counts, rec.traces),
                      rec.n_steps)  # fmt: skip
        writer.finish(result_attrs(result))
    except OutOfSpace:
        raise
    except BaseException:
        writer.discard()
        raise
