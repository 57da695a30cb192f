"""Metadata shared by the NWB and Neo exports: the configuration and provenance of a
recording as JSON, its start time, a description and a stable identifier."""

from __future__ import annotations

import datetime
import hashlib
import json
import os

import numpy as np

from ei_sim.analysis.export.reader import Recording

POPULATION_NAMES = {"e": "excitatory", "i": "inhibitory"}
# unit suffix of a state variable -> (unit, SI unit, factor from the unit to SI)
UNITS = {"mV": ("mV", "volts", 1e-3), "uS": ("uS", "siemens", 1e-6), "nA": ("nA", "amperes", 1e-9)}
QUANTITY = {"v": "membrane potential", "g_exc": "excitatory conductance",
            "g_inh": "inhibitory conductance"}  # fmt: skip


def split_variable(variable: str) -> tuple[str, str, str, float]:
    """``"g_exc_uS"`` -> ``("g_exc", "uS", "siemens", 1e-6)``: name, unit, SI unit, factor."""
    base, _, suffix = variable.rpartition("_")
    if suffix not in UNITS:
        raise ValueError(
            f"state variable {variable!r} has no known unit suffix ({', '.join(UNITS)})"
        )
    return (base, *UNITS[suffix])


def _plain(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


def split_attrs(attrs: dict) -> tuple[dict, dict]:
    """``(configuration, provenance)``: the provenance.* attributes apart from all others."""
    config = {k: _plain(v) for k, v in sorted(attrs.items()) if not k.startswith("provenance.")}
    prov = {k: _plain(v) for k, v in sorted(attrs.items()) if k.startswith("provenance.")}
    return config, prov


def as_json(values: dict) -> str:
    """JSON text of a flat attribute dict (NaN written as the string "nan")."""
    return json.dumps({k: "nan" if isinstance(v, float) and v != v else v
                       for k, v in values.items()}, sort_keys=True)  # fmt: skip


def start_time(rec: Recording) -> datetime.datetime:
    """When the recording was made: ``provenance.created_utc``, else the file's mtime (UTC)."""
    created = rec.attrs.get("provenance.created_utc")
    if isinstance(created, str):
        try:
            stamp = datetime.datetime.fromisoformat(created)
        except ValueError:
            stamp = None
        if stamp is not None:
            return stamp if stamp.tzinfo else stamp.replace(tzinfo=datetime.UTC)
    return datetime.datetime.fromtimestamp(os.path.getmtime(rec.source), datetime.UTC)


def identifier(path: str) -> str:
    """A stable identifier of an exported file: the SHA-256 of the source file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return f"ei-sim-{digest.hexdigest()[:32]}"


def description(rec: Recording) -> str:
    """One sentence: model, population sizes, trials, trial length and time step."""
    model = rec.attrs.get("model.name", "unknown")
    sizes = ", ".join(f"{p.n_cells} {POPULATION_NAMES[p.name]}" for p in rec.populations)
    what = "reference-trial snapshots of a training run" if rec.kind == "run" else "simulation"
    start, stop = rec.window_ms
    return (
        f"ei-sim {what}: {model} network ({sizes} cells), {len(rec.trial_info)} trial(s), "
        f"spikes observed from {start:g} to {stop:g} ms of each trial, dt {rec.dt_ms:g} ms"
    )


def source_script(rec: Recording) -> str:
    version = rec.attrs.get("provenance.ei_sim_version", "unknown")
    commit = rec.attrs.get("provenance.git_commit", "unknown")
    return f"ei-sim {version} (git commit {commit})"


def spikes_by_cell(events, trial_offset_ms: float) -> list[np.ndarray]:
    """Per cell of ``events`` its spike times on the shared clock (ms, sorted): trial k's
    times are shifted by ``k * trial_offset_ms``."""
    clock = events.times_ms + events.trial * trial_offset_ms
    order = np.lexsort((clock, events.cell))
    cells, clock = events.cell[order], clock[order]
    bounds = np.searchsorted(cells, np.arange(events.n_cells + 1))
    return [clock[bounds[c] : bounds[c + 1]] for c in range(events.n_cells)]
