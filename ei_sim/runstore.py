"""Compatibility names for the run layout, which now lives in :mod:`ei_sim.store.run`."""

from ei_sim.store.run import (  # noqa: F401
    LEGACY_DEFAULTS,
    METRICS,
    RESUMABLE_CHANGES,
    RUN_FILE,
    _copy_snapshots,
    _read_weights,
    config_differences,
    load_run,
    open_run,
    run_path,
    save_run,
)
