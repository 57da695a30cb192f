"""The file layer: every HDF5 file ei-sim writes, how it is written and how it is opened.

Each file carries the root attributes ``kind`` and ``schema_version`` (an int, 1 for every
layout of this release) and is opened through one opener, :func:`open_kind`, with one
message for a missing file or a file of another kind. Files written before ``kind`` existed
are read as today's layout (:func:`kind_of` recognises them by their groups).

Modules, by what they hold:

- :mod:`~ei_sim.store.atomic`: atomic writing (temporary file, rename; stale temporaries);
- :mod:`~ei_sim.store.attrs`: attributes and provenance;
- :mod:`~ei_sim.store.kinds`: the registry of kinds (:data:`KINDS`) and the opener;
- :mod:`~ei_sim.store.parts`: stores built of finished parts (grid cells, reproduction
  stages): open, check or create, add one part;
- :mod:`~ei_sim.store.run`: the run layout (``run.h5`` of ``ei-sim train``);
- :mod:`~ei_sim.store.snapshot`: the snapshot layout (one epoch's reference trial, inside a
  run file or a grid cell);
- :mod:`~ei_sim.store.spikes`: the spike-list layout of simulate files.

The layouts of the other kinds live beside their writers and use these helpers: simulate
files in :mod:`ei_sim.h5stream`, rate-model runs in :mod:`ei_sim.rate_train`, grid stores and
sweep files in :mod:`sweeps.store`, reproduction stores in :mod:`analysis.reproduce.store`.

Every name below is importable from ``ei_sim.store`` itself (loaded on first use, so that
importing the opener does not import JAX).
"""

from __future__ import annotations

import importlib

_NAMES = {
    "atomic": ("atomic_h5", "check_output_path", "readable_mode", "remove_stale_temporaries",
               "TMP_PREFIX", "STALE_AFTER_S"),
    "attrs": ("git_commit", "provenance", "read_attrs", "write_attrs"),
    "kinds": ("KINDS", "Kind", "file_kind", "kind_of", "open_kind", "open_readable",
              "register_kind", "schema_version", "stamp", "wrong_kind"),
    "parts": ("adding_part", "open_or_create", "resumable_parts"),
    "run": ("METRICS", "RUN_FILE", "config_differences", "load_run", "model_from_attrs",
            "open_run", "register_model_type", "run_path", "save_run"),
    "snapshot": ("Snapshot", "read_snapshots", "weight_histograms", "write_snapshot"),
    "spikes": ("EVENT_FIELDS", "write_spike_lists"),
}  # fmt: skip
_MODULE_OF = {name: module for module, names in _NAMES.items() for name in names}
__all__ = sorted(_MODULE_OF)


def __getattr__(name: str):
    if name in _MODULE_OF:
        return getattr(importlib.import_module(f"ei_sim.store.{_MODULE_OF[name]}"), name)
    raise AttributeError(f"module 'ei_sim.store' has no attribute {name!r}")


def __dir__():
    return __all__
