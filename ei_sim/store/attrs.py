"""Attributes of ei-sim files: configuration, numbers and provenance as HDF5 attributes.

``None`` is stored as the string ``"none"`` (HDF5 attributes have no null); reading turns
bytes into ``str`` and 0-d arrays into Python scalars. :func:`provenance` gives the
``provenance.*`` attributes every file carries: the ei-sim version and git commit, the JAX,
NumPy and Python versions, the creation time (UTC) and the seed.
"""

from __future__ import annotations

import datetime
import functools
import os
import platform
import subprocess
import sys

import numpy as np

import ei_sim


def git_commit(folder: str | None = None) -> str:
    """Commit of the ei-sim source tree (or of the checkout holding ``folder``), with
    ``+dirty`` appended when tracked files differ from it (``+unchecked`` when git could not
    say in time); "unknown" outside a git checkout. A built copy (a wheel, ``pip install .``)
    names the commit it was built from (``build_commit.txt``, written by the build); a copy
    without one, inside another project's checkout, is "unknown", not that project's commit.
    The source tree's is worked out once per process, so a run's stamp names the code it
    imported, whatever is edited meanwhile."""
    if folder is None:
        return _source_commit()
    return _commit_of(folder)


@functools.cache
def _source_commit() -> str:
    package = os.path.dirname(os.path.abspath(ei_sim.__file__))
    try:  # a built copy: its own commit, not that of a checkout it may be installed in
        with open(os.path.join(package, "build_commit.txt")) as fh:
            built = fh.read().strip()
    except OSError:
        built = ""
    if built:
        return built
    try:  # a checkout of ei-sim (it tracks this file), not another project's around a copy
        tracked = subprocess.run(["git", "--no-optional-locks", "-C", package, "ls-files",
                                  "--error-unmatch", "__init__.py"], capture_output=True,
                                 timeout=5).returncode == 0  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        tracked = False
    return _commit_of(package) if tracked else "unknown"


def _commit_of(folder: str) -> str:
    def git(*args):  # --no-optional-locks: never take .git/index.lock from the user's git
        return subprocess.run(["git", "--no-optional-locks", "-C", folder, *args],
                              capture_output=True, text=True, timeout=5)  # fmt: skip

    try:
        out = git("rev-parse", "HEAD")
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    if out.returncode != 0:
        return "unknown"
    sha = out.stdout.strip()
    try:
        changed = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return sha + "+unchecked"
    if changed.returncode != 0:
        return sha + "+unchecked"
    return sha + ("+dirty" if changed.stdout.strip() else "")


def jax_version() -> str:
    """JAX's version, read from its ``version.py`` when JAX is not imported (no import)."""
    jax = sys.modules.get("jax")
    if jax is not None and hasattr(jax, "__version__"):
        return jax.__version__
    import importlib.util
    import re

    spec = importlib.util.find_spec("jax")
    try:
        folder = list(spec.submodule_search_locations)[0]
        with open(os.path.join(folder, "version.py")) as fh:
            found = re.search(r'^_version\s*(?::\s*str)?\s*=\s*"([^"]+)"', fh.read(), re.M)
    except (AttributeError, IndexError, TypeError, OSError):
        found = None
    if found:
        return found.group(1)
    import jax

    return jax.__version__


def provenance(seed=None) -> dict:
    return {
        "provenance.ei_sim_version": ei_sim.__version__,
        "provenance.git_commit": git_commit(),
        "provenance.jax_version": jax_version(),
        "provenance.numpy_version": np.__version__,
        "provenance.python": platform.python_version(),
        "provenance.created_utc": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "provenance.seed": "none" if seed is None else seed,
    }


def write_attrs(obj, attrs: dict) -> None:
    for key, value in attrs.items():
        obj.attrs[key] = "none" if value is None else value


def read_attrs(obj) -> dict:
    out = {}
    for key, value in obj.attrs.items():
        if isinstance(value, bytes):
            value = value.decode()
        elif hasattr(value, "item") and np.ndim(value) == 0:
            value = value.item()
        out[key] = value
    return out
