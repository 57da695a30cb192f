"""MkDocs hook: the source tree that the API reference (mkdocstrings) reads.

The repository's folders ``models/``, ``sweeps/`` and ``analysis/`` are installed as
``ei_sim.models``, ``ei_sim.sweeps`` and ``ei_sim.analysis`` (``pyproject.toml``), so the
package ``ei_sim`` is not one folder on disk. mkdocstrings reads the sources without importing
them; this hook gives it the installed layout as a tree of symbolic links,
``build/docs-api/ei_sim``: every entry of ``ei_sim/`` plus the three folders under their
installed names (``ei_sim/__init__.py`` itself is copied, not linked). ``mkdocs.yml``
points the Python handler there.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TREE = ROOT / "build" / "docs-api"
MAPPED = {"models": "models", "sweeps": "sweeps", "analysis": "analysis"}  # name -> folder


def build_tree() -> Path:
    """(Re)make ``build/docs-api/ei_sim`` and return ``build/docs-api``."""
    package = TREE / "ei_sim"
    if TREE.exists():
        shutil.rmtree(TREE)
    package.mkdir(parents=True)
    for entry in sorted((ROOT / "ei_sim").iterdir()):
        if entry.name == "__init__.py":  # a copy: griffe resolves links, and would find the
            shutil.copy(entry, package / entry.name)  # real folder, without the three others
        elif entry.name != "__pycache__":
            os.symlink(entry, package / entry.name)
    for name, folder in MAPPED.items():
        os.symlink(ROOT / folder, package / name)
    return TREE


# Made when MkDocs imports this hook, while it reads mkdocs.yml: mkdocstrings expands its
# ``paths`` in its own ``on_config``, which runs before any hook's, and drops a path that does
# not exist yet (a fresh clone has no ``build/`` folder) for the repository root, where
# ``ei_sim/`` lacks the three installed folders.
build_tree()


def on_pre_build(config):
    build_tree()
