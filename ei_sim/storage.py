"""Compatibility names for the file layer, which now lives in :mod:`ei_sim.store`.

Atomic writing is :mod:`ei_sim.store.atomic`, attributes and provenance
:mod:`ei_sim.store.attrs`, the opener :mod:`ei_sim.store.kinds`, spike lists
:mod:`ei_sim.store.spikes`; new code imports from there (or from ``ei_sim.store``).
"""

from ei_sim.store.atomic import (  # noqa: F401
    STALE_AFTER_S,
    TMP_PREFIX,
    _is_stale,
    _write_error,
    _writer_id,
    atomic_h5,
    check_output_path,
    readable_mode,
    remove_stale_temporaries,
)
from ei_sim.store.attrs import git_commit, provenance, read_attrs, write_attrs  # noqa: F401
from ei_sim.store.kinds import open_readable  # noqa: F401
from ei_sim.store.spikes import write_spike_lists  # noqa: F401
