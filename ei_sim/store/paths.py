"""Names of the files and folders ei-sim derives from a user's path, defined once."""

from __future__ import annotations

import os

RUN_FILE = "run.h5"  # a training run's file inside its run directory
PARTIAL_SUFFIX = ".partial"  # a streamed file while its run goes on


def run_path(run_dir: str) -> str:
    """The run file of a run directory (``RUN_DIR/run.h5``)."""
    return os.path.join(run_dir, RUN_FILE)


def run_file_of(path: str) -> str:
    """A run file given either itself or its run directory."""
    return run_path(path) if os.path.isdir(path) else path


def cells_dir(store: str) -> str:
    """The folder beside a grid store where its cells train (``<store>.cells``)."""
    return store + ".cells"


def partial_path(path: str) -> str:
    """Where a streamed file is written until its run completes (``<path>.partial``)."""
    return path + PARTIAL_SUFFIX
