"""Export spikes to Neo (extra ``neo``), written with neo's own NIX or pickle writer.

One ``neo.Block``: one Segment per trial (a run's snapshots: one per epoch), holding one
SpikeTrain per cell of each population (times in ms within the trial, ``t_start`` /
``t_stop`` the observed window; annotations ``population`` "e" or "i" and ``cell_index``)
and the state traces where the file holds them, one AnalogSignal per population and
variable (``v_e``, ``g_exc_e``, ...; mV or uS; one channel per recorded cell, array
annotation ``cell_index``). ``block.groups``
has one Group per population collecting its trains over the segments. The block's
annotations hold the configuration and provenance as JSON (``configuration``,
``provenance``) and ``source_script``; segment annotations the trial's labels (``trial``, or
``epoch`` and ``digit``).

The writer is chosen by the output's suffix: ``.nix`` (NeoNixIO, HDF5-based, the default;
about 7 ms per spike train) or ``.pkl`` (pickle; fast, but only for Python readers).
"""

from __future__ import annotations

import numpy as np

from ei_sim.analysis.export import metadata
from ei_sim.analysis.export.common import (
    atomic_output,
    check_room,
    fits_in_memory,
    neo_format,
    require,
    write_image,
)
from ei_sim.analysis.export.reader import Recording


def _segment(neo, pq, rec: Recording, trial: int, per_cell: dict, groups: dict):
    info = rec.trial_info[trial]
    label = ", ".join(f"{k} {v}" for k, v in info.items())
    segment = neo.Segment(name=label, index=trial, **info)
    start_ms, stop_ms = rec.window_ms
    for events in rec.populations:
        for cell, times_ms in enumerate(per_cell[events.name][trial]):
            train = neo.SpikeTrain(
                times_ms, units=pq.ms, t_start=start_ms * pq.ms, t_stop=stop_ms * pq.ms,
                name=f"{events.name}{cell}", population=events.name, cell_index=cell,
            )  # fmt: skip
            segment.spiketrains.append(train)
            groups[events.name].add(train)
    for trace in (t for t in rec.traces if t.trial == trial):
        base, unit, _, _ = metadata.split_variable(trace.variable)
        segment.analogsignals.append(neo.AnalogSignal(
            trace.values, units=getattr(pq, unit), sampling_period=trace.dt_ms * pq.ms,
            t_start=trace.start_ms * pq.ms, name=f"{base}_{trace.population}",
            population=trace.population, variable=trace.variable,
            array_annotations={"cell_index": np.asarray(trace.cells)},
        ))  # fmt: skip
    return segment


def _split_trials(events, n_trials: int) -> list[list[np.ndarray]]:
    """``[trial][cell]`` sorted spike times (ms) of one population."""
    out = []
    for k in range(n_trials):
        mine = events.trial == k
        sub = events._replace(times_ms=events.times_ms[mine], trial=np.zeros(mine.sum(), int),
                              cell=events.cell[mine])  # fmt: skip
        out.append(metadata.spikes_by_cell(sub, 0.0))
    return out


def build_block(rec: Recording, traces: bool = True):
    """A ``neo.Block`` of a :class:`Recording` (module docstring)."""
    neo = require("neo", "neo")
    pq = require("quantities", "neo")
    config, prov = metadata.split_attrs(rec.attrs)
    block = neo.Block(
        name=f"ei-sim {rec.kind}", description=metadata.description(rec),
        file_origin=rec.source, rec_datetime=metadata.start_time(rec),
        configuration=metadata.as_json(config), provenance=metadata.as_json(prov),
        source_script=metadata.source_script(rec),
    )  # fmt: skip
    groups = {}
    for events in rec.populations:
        groups[events.name] = neo.Group(name=metadata.POPULATION_NAMES[events.name],
                                        allowed_types=[neo.SpikeTrain])  # fmt: skip
    n_trials = len(rec.trial_info)
    per_cell = {e.name: _split_trials(e, n_trials) for e in rec.populations}
    if not traces:
        rec = rec._replace(traces=())
    for trial in range(n_trials):
        block.segments.append(_segment(neo, pq, rec, trial, per_cell, groups))
    block.groups.extend(groups.values())
    block.check_relationships()
    return block


NIX_S_PER_TRAIN = 0.007  # NeoNixIO writes about one spike train per 7 ms (module docstring)


def neo_seconds(n_trains: int, out: str) -> str:
    """What a Neo export of ``n_trains`` spike trains will take, in words."""
    if neo_format(out) != "nix":
        return "pickle: a few seconds"
    seconds = max(1, round(n_trains * NIX_S_PER_TRAIN))
    return f"NIX takes about 7 ms per train on an idle core: {seconds} s or more"


NIX_BYTES_PER_TRAIN = 24 << 10  # measured: about 20 kB per spike train in a NIX file


def nix_bytes_estimate(rec: Recording, traces: bool = True) -> float:
    """About how large the NIX file of ``rec`` is (NIX stores each spike train with its own
    groups and metadata: about :data:`NIX_BYTES_PER_TRAIN` each)."""
    n_trains = sum(e.n_cells for e in rec.populations) * len(rec.trial_info)
    spikes = sum(len(e.times_ms) for e in rec.populations) * 8
    trace_bytes = sum(t.values.nbytes for t in rec.traces) if traces else 0
    return n_trains * NIX_BYTES_PER_TRAIN + 2.0 * (spikes + trace_bytes) + (2 << 20)


def _nix_in_memory(nixio_module, block) -> bytes | None:
    """The bytes of a NIX file of ``block`` built in memory (None when this nixio does not
    let its file be opened so: its ``make_fapl`` hook is gone)."""
    import nixio.file as nix_file

    make_fapl = getattr(nix_file, "make_fapl", None)
    if make_fapl is None:
        return None

    def in_memory():
        fapl = make_fapl()
        fapl.set_fapl_core(1 << 20, False)  # HDF5's core driver, never written to disk
        return fapl

    nix_file.make_fapl = in_memory
    try:
        io = nixio_module.NixIO("ei-sim-export.nix", mode="ow")
    finally:
        nix_file.make_fapl = make_fapl
    try:
        io.write_block(block)
        h5 = io.nix_file._h5file
        h5.flush()
        return h5.id.get_file_image()
    finally:
        io.close()


def write_neo(rec: Recording, out: str, traces: bool = True) -> None:
    """Write ``rec`` at ``out`` with neo's NIX (``.nix``) or pickle (``.pkl``) writer
    (atomically; a NIX file is built in memory when it fits,
    :mod:`ei_sim.analysis.export.common`)."""
    fmt = neo_format(out)
    block = build_block(rec, traces)
    if fmt == "nix":
        nixio = require("neo.io.nixio", "neo")
        require("nixio", "neo")
        estimate = nix_bytes_estimate(rec, traces)
        image = _nix_in_memory(nixio, block) if fits_in_memory(estimate) else None
        if image is not None:
            write_image(out, image)
            return
        check_room(out, estimate)
        with atomic_output(out) as tmp:
            with nixio.NixIO(tmp, mode="ow") as io:
                io.write_block(block)
        return
    from neo.io import PickleIO

    with atomic_output(out) as tmp:
        PickleIO(tmp).write_block(block)
