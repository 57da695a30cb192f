"""Export ei-sim results to the formats neuroscientists already use.

* simulate files and the reference-trial snapshots of training runs -> NWB
  (:mod:`ei_sim.analysis.export.nwb`) or Neo (:mod:`ei_sim.analysis.export.neo`);
* grid stores and sweep files -> an xarray Dataset written as netCDF
  (:mod:`ei_sim.analysis.export.xarray`).

:func:`export_file` is the Python form of ``ei-sim export FILE --to nwb|neo|xarray``. Each
target needs its optional extra (``pip install 'ei-sim[nwb]'``, ``[neo]``, ``[xarray]``).
"""

from __future__ import annotations

from ei_sim.analysis.export.common import TARGETS, check_output, default_output, require_target
from ei_sim.analysis.export.reader import SPIKE_KINDS, file_kind, read_recording, resolve

__all__ = ["TARGETS", "export_file", "file_kind"]


def _check_target(path: str, kind: str, target: str) -> None:
    if target not in TARGETS:
        raise ValueError(f"--to {target!r} is not a target; choose one of {', '.join(TARGETS)}")
    if (target == "xarray") == (kind in SPIKE_KINDS):
        wanted = "--to nwb or --to neo" if kind in SPIKE_KINDS else "--to xarray"
        raise ValueError(f"{path} is a {kind} file, which exports with {wanted}, not --to {target}")


def export_file(path: str, target: str, out: str | None = None, force: bool = False,
                traces: bool = True, log=None) -> str:  # fmt: skip
    """Export ``path`` (any ei-sim file, kind read from it) to ``target``; return the output.

    ``out`` defaults to ``path`` with the suffix ``.nwb``, ``.nix`` or ``.nc``; an existing
    output is replaced only with ``force``; ``traces`` includes the state traces
    (membrane potentials, conductances) where the file holds them (NWB, Neo).
    ValueError (one line) for an unknown kind, a target that does not fit the kind, a missing
    extra or an output that cannot be written; nothing is left half-written.
    ``log(text)``: told what is being done before each stage that may take seconds (reading,
    building, writing), and how long it took.
    """
    import time

    t0 = time.perf_counter()
    log = log or (lambda text: None)
    kind = file_kind(path)
    _check_target(path, kind, target)
    out = out or default_output(path, target)
    require_target(target, out)
    check_output(out, resolve(path), force)
    if target == "xarray":
        from ei_sim.analysis.export import xarray

        log(f"reading {path} and writing {out} (xarray, netCDF) ...")
        dataset = xarray.grid_dataset if kind == "grid" else xarray.sweep_dataset
        xarray.write_netcdf(dataset(resolve(path)), out)
        log(f"done in {time.perf_counter() - t0:.1f} s")
        return out
    log(f"reading the spikes of {path} ...")
    rec = read_recording(path)
    trains = sum(int(e.n_cells) for e in rec.populations) * len(rec.trial_info)
    if target == "nwb":
        from ei_sim.analysis.export.nwb import write_nwb

        log(f"writing {trains:,} spike trains to {out} (NWB) ...")
        write_nwb(rec, out, traces)
    else:
        from ei_sim.analysis.export.neo import neo_seconds, write_neo

        log(f"building and writing {trains:,} spike trains to {out} (Neo; "
            f"{neo_seconds(trains, out)}) ...")  # fmt: skip
        write_neo(rec, out, traces)
    log(f"done in {time.perf_counter() - t0:.1f} s")
    return out
