"""Export spikes to NWB (Neurodata Without Borders) with pynwb (extra ``nwb``).

Layout of the file (all times in seconds on one clock; trial k starts at ``k * trial``):

* ``processing/network/units_e``, ``units_i``: one Units table per population, one row per
  cell in index order (column ``cell_index``), its spike times, ``obs_intervals`` (the
  observed window of every trial) and ``resolution`` = dt;
* ``intervals/trials``: start and stop of every trial (row k is trial k), with ``epoch``
  and ``digit`` for a run's snapshots (one trial per epoch);
* ``acquisition/<variable>_<pop>_trial<k>`` (``v_e_trial0``, ``g_exc_e_trial0``, ...): state
  traces where the file holds them, one TimeSeries per population, variable and trial with
  one column per recorded cell (indices as JSON in ``comments``), data in mV or uS with
  ``conversion`` to volts or siemens;
* metadata: ``session_description`` (model, sizes, trials, dt), ``notes`` (JSON of every
  configuration attribute: ``model.*``, ``train.*``, rates, seed), ``data_collection`` (JSON
  of ``provenance.*``), ``source_script`` (ei-sim version and git commit), ``keywords``;
  the simulated network is the ``subject`` (sex "U", age "P0D": it exists from the start of
  the simulation; no species).
"""

from __future__ import annotations

import json

from ei_sim.analysis.export import metadata
from ei_sim.analysis.export.common import (
    atomic_output,
    check_room,
    fits_in_memory,
    require,
    write_image,
)
from ei_sim.analysis.export.reader import Recording

MODULE = "network"
KEYWORDS = ["simulation", "spiking network", "excitatory-inhibitory", "conductance-based", "ei-sim"]


def _subject(rec: Recording):
    from pynwb.file import Subject

    model = rec.attrs.get("model.name", "network")
    seed = rec.attrs.get("seed", rec.attrs.get("train.seed", rec.attrs.get("provenance.seed")))
    return Subject(
        subject_id=f"{model}-seed{seed}",
        description="a simulated spiking E-I network (ei-sim), not an animal",
        sex="U", age="P0D",
    )  # fmt: skip


def _add_trials(nwbfile, rec: Recording) -> None:
    """One row per trial; its labels as columns ("trial" is the row's id already)."""
    info = [{k: v for k, v in row.items() if k != "trial"} for row in rec.trial_info]
    keys = list(info[0]) if info else []
    for key in keys:
        nwbfile.add_trial_column(name=key, description=f"{key} of this trial (ei-sim)")
    trial_s = rec.trial_ms * 1e-3
    for k, row in enumerate(info):
        nwbfile.add_trial(start_time=k * trial_s, stop_time=(k + 1) * trial_s, **row)


def _units(rec: Recording, events):
    from pynwb.misc import Units

    name = metadata.POPULATION_NAMES[events.name]
    units = Units(
        name=f"units_{events.name}", resolution=rec.dt_ms * 1e-3,
        description=f"spike times (s) of the {events.n_cells} {name} cells, one row per cell",
    )  # fmt: skip
    units.add_column("cell_index", f"index of the cell in the {name} population")
    start_ms, stop_ms = rec.window_ms
    windows = [[(k * rec.trial_ms + start_ms) * 1e-3, (k * rec.trial_ms + stop_ms) * 1e-3]
               for k in range(len(rec.trial_info))]  # fmt: skip
    for cell, times_ms in enumerate(metadata.spikes_by_cell(events, rec.trial_ms)):
        units.add_unit(spike_times=times_ms * 1e-3, obs_intervals=windows, cell_index=cell)
    return units


def _trace(trace, rec: Recording):
    """One TimeSeries per (population, variable, trial): data (samples, recorded cells) in
    ei-sim's unit, ``conversion`` to SI; the cells' indices as JSON in ``comments``."""
    from pynwb import TimeSeries

    base, unit, si_unit, factor = metadata.split_variable(trace.variable)
    cells = [int(c) for c in trace.cells]
    what = metadata.QUANTITY.get(base, base)
    return TimeSeries(
        name=f"{base}_{trace.population}_trial{trace.trial}", data=trace.values, unit=si_unit,
        conversion=factor, rate=1000.0 / trace.dt_ms,
        starting_time=(trace.trial * rec.trial_ms + trace.start_ms) * 1e-3,
        description=f"{what} ({unit}) of {metadata.POPULATION_NAMES[trace.population]} cells "
        f"{cells} (one column each) in trial {trace.trial}",
        comments=json.dumps({"cell_index": cells}),
    )  # fmt: skip


def build_nwbfile(rec: Recording, traces: bool = True):
    """An in-memory ``pynwb.NWBFile`` of a :class:`Recording` (module docstring)."""
    pynwb = require("pynwb", "nwb")
    config, prov = metadata.split_attrs(rec.attrs)
    nwbfile = pynwb.NWBFile(
        session_description=metadata.description(rec), identifier=metadata.identifier(rec.source),
        session_start_time=metadata.start_time(rec), notes=metadata.as_json(config),
        data_collection=metadata.as_json(prov), source_script=metadata.source_script(rec),
        source_script_file_name="ei-sim", keywords=KEYWORDS, subject=_subject(rec),
        experiment_description="conductance-based spiking E-I network simulated with ei-sim",
    )  # fmt: skip
    _add_trials(nwbfile, rec)
    module = nwbfile.create_processing_module(MODULE, "spiking network: one Units table per "
                                              "population")  # fmt: skip
    for events in rec.populations:
        module.add(_units(rec, events))
    if traces:
        for trace in rec.traces:
            nwbfile.add_acquisition(_trace(trace, rec))
    return nwbfile


def nwb_bytes_estimate(rec: Recording, traces: bool = True) -> float:
    """About how large the NWB file of ``rec`` is (spike times as float64, one row of
    metadata per cell, the traces as stored, and a fixed overhead)."""
    spikes = sum(len(e.times_ms) for e in rec.populations) * 16
    cells = sum(e.n_cells for e in rec.populations) * 256
    trace_bytes = sum(t.values.nbytes for t in rec.traces) if traces else 0
    return 2.0 * (spikes + cells + trace_bytes) + (2 << 20)


def write_nwb(rec: Recording, out: str, traces: bool = True) -> None:
    """Write ``rec`` as an NWB file at ``out`` (atomically; built in memory when it fits,
    :mod:`ei_sim.analysis.export.common`)."""
    pynwb = require("pynwb", "nwb")
    nwbfile = build_nwbfile(rec, traces)
    estimate = nwb_bytes_estimate(rec, traces)
    if fits_in_memory(estimate):
        from ei_sim.store.atomic import h5_image, memory_h5

        fh = memory_h5(out + ".in-memory")
        try:
            with pynwb.NWBHDF5IO(mode="w", file=fh) as io:
                io.write(nwbfile)
                image = h5_image(fh)
        finally:
            if fh.id.valid:
                fh.close()
        write_image(out, image)
        return
    check_room(out, estimate)
    with atomic_output(out) as tmp, pynwb.NWBHDF5IO(tmp, "w") as io:
        io.write(nwbfile)
