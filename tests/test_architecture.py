"""The import contract: one installed name (``ei_sim``) and dependencies that point one way.

The repository's folders ``models/``, ``sweeps/`` and ``analysis/`` are installed as
``ei_sim.models``, ``ei_sim.sweeps`` and ``ei_sim.analysis``; the core is ``ei_sim/``'s
sub-packages. Layers, bottom to top (a layer may import only the layers below it and itself)::

    base (ei_sim, ei_sim.validate)
      <- data <- sim <- store <- training <- rate           (the core)
      <- models <- sweeps <- analysis <- cli

- nothing imports a module by a path that no longer exists (the top-level ``models``,
  ``sweeps``, ``analysis``, or a core module that moved into a sub-package);
- nothing outside ``ei_sim/cli/`` imports the CLI;
- ``sweeps`` produces numbers and stores, never figures or videos: nothing under ``sweeps/``
  imports matplotlib (or the image and video encoders ``PIL``, ``imageio``,
  ``imageio_ffmpeg``); the figures of grids and sweeps are drawn in ``analysis``.

Every ``.py`` file of the packages is parsed (nothing is imported): every ``import`` and
``from ... import`` statement counts, also those inside functions or ``if`` blocks, and so do
``importlib.import_module("...")`` calls with a literal name.
"""

from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# installed name -> folder of the repository
FOLDERS = {"ei_sim.models": "models", "ei_sim.sweeps": "sweeps", "ei_sim.analysis": "analysis",
           "ei_sim": "ei_sim"}  # fmt: skip
CORE = ("data", "sim", "store", "training", "rate")
LAYERS = ("base", *CORE, "models", "sweeps", "analysis", "cli")  # bottom to top
ALLOWED = {layer: set(LAYERS[: k + 1]) for k, layer in enumerate(LAYERS)}
# Module paths that existed before the core was split into sub-packages and the upper packages
# moved under ei_sim: importing one is an error (there is one import path per name).
REMOVED = {
    "models", "sweeps", "analysis", "ei_sim.storage", "ei_sim.runstore", "ei_sim.stored",
    "ei_sim.train", "ei_sim.rate_train", "ei_sim.perron", "ei_sim.classifier", "ei_sim.config",
    "ei_sim.engine", "ei_sim.surrogate", "ei_sim.propagate", "ei_sim.sparse", "ei_sim.init",
    "ei_sim.encoding", "ei_sim.monitors", "ei_sim.recorder", "ei_sim.spectrum",
    "ei_sim.parallel", "ei_sim.compile_cache", "ei_sim.simulation", "ei_sim.h5stream",
    "ei_sim.evaluate", "ei_sim.objective", "ei_sim.optim", "ei_sim.fused", "ei_sim.native",
    "ei_sim.outputs", "ei_sim.interrupts", "ei_sim.models.ei_classifier",
    "ei_sim.models.perron",
}  # fmt: skip

# Violations being removed right now, as (file, imported module). Each entry must still be
# found: once its import is gone, this test fails until the entry is deleted here.
PENDING: set[tuple[str, str]] = set()


def module_of_file(relpath: str) -> str:
    """The installed module name of a repository file (``sweeps/grid.py`` ->
    ``ei_sim.sweeps.grid``)."""
    parts = relpath[: -len(".py")].split("/")
    if parts[-1] == "__init__":
        parts = parts[:-1]
    top = next(name for name, folder in FOLDERS.items() if folder == parts[0])
    return ".".join([top, *parts[1:]])


def layer_of_module(module: str) -> str | None:
    """The layer of a module, None outside ei_sim ("removed" for a path that is gone)."""
    parts = module.split(".")
    if is_removed(module):
        return "removed"
    if parts[0] != "ei_sim":
        return None
    if len(parts) == 1 or parts[1] not in (*CORE, "models", "sweeps", "analysis", "cli"):
        return "base"
    return parts[1]


def is_removed(module: str) -> bool:
    return any(module == old or module.startswith(old + ".") for old in REMOVED)


def layer_of_file(relpath: str) -> str:
    """The layer a source file belongs to."""
    return layer_of_module(module_of_file(relpath)) or "base"


def _is_module(dotted: str) -> bool:
    for name, folder in sorted(FOLDERS.items(), key=lambda kv: -len(kv[0])):
        if dotted == name or dotted.startswith(name + "."):
            path = ROOT.joinpath(folder, *dotted[len(name) + 1 :].split(".")) if dotted != name \
                else ROOT / folder  # fmt: skip
            return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()
    return False


def _resolve(relpath: str, node: ast.ImportFrom) -> str:
    """The absolute module of ``from <module> import ...`` (relative imports resolved)."""
    if not node.level:
        return node.module or ""
    package = module_of_file(relpath).split(".")
    if not relpath.endswith("__init__.py"):
        package = package[:-1]
    base = package[: len(package) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports_of(relpath: str, tree: ast.AST):
    """Yield (line, module) for every module the file imports; ``from a import b`` yields
    ``a.b`` when ``b`` is a module of the repository, else ``a``."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            module = _resolve(relpath, node)
            for alias in node.names:
                sub = f"{module}.{alias.name}"
                yield node.lineno, sub if _is_module(sub) else module
        elif isinstance(node, ast.Call) and _is_import_call(node):
            yield node.lineno, node.args[0].value


def _is_import_call(node: ast.Call) -> bool:
    func = node.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
    return (
        name in ("import_module", "__import__")
        and bool(node.args)
        and isinstance(node.args[0], ast.Constant)
        and isinstance(node.args[0].value, str)
    )


def source_files() -> list[str]:
    files = []
    for package in FOLDERS.values():
        for folder, dirs, names in os.walk(ROOT / package):
            dirs[:] = sorted(d for d in dirs if d != "__pycache__" and not d.startswith("."))
            files += [
                os.path.relpath(os.path.join(folder, n), ROOT).replace(os.sep, "/")
                for n in sorted(names)
                if n.endswith(".py")
            ]
    return files


def all_imports() -> list[tuple[str, int, str, str, str]]:
    """(file, line, module, file's layer, module's layer) of every import between layers."""
    found = []
    for relpath in source_files():
        tree = ast.parse((ROOT / relpath).read_text(encoding="utf-8"), filename=relpath)
        source = layer_of_file(relpath)
        for line, module in imports_of(relpath, tree):
            target = layer_of_module(module)
            if target is not None:
                found.append((relpath, line, module, source, target))
    return found


def violations() -> list[tuple[str, int, str, str, str]]:
    return [imp for imp in all_imports() if imp[4] not in ALLOWED[imp[3]] | {"removed"}]


def _describe(imp) -> str:
    relpath, line, module, source, target = imp
    if target == "removed":
        return f"{relpath}:{line}: imports {module}, a path that no longer exists"
    allowed = ", ".join(layer for layer in LAYERS if layer in ALLOWED[source])
    return f"{relpath}:{line}: imports {module} ({source} may import only {allowed})"


def test_the_scanner_sees_every_kind_of_import(tmp_path):
    code = (
        "import models.ping\n"
        "from ei_sim.sweeps import grid\n"
        "def f():\n"
        "    from ei_sim.analysis.video import Snapshot\n"
        "    import importlib\n"
        "    return importlib.import_module('ei_sim.cli.train')\n"
        "from . import checks\n"
        "from .. import validate, __version__\n"
        "from .train import build_run\n"
    )
    found = sorted(imports_of("ei_sim/cli/x.py", ast.parse(code)))
    assert found == [
        (1, "models.ping"), (2, "ei_sim.sweeps.grid"), (4, "ei_sim.analysis.video"),
        (5, "importlib"), (6, "ei_sim.cli.train"), (7, "ei_sim.cli.checks"), (8, "ei_sim"),
        (8, "ei_sim.validate"), (9, "ei_sim.cli.train"),
    ]  # fmt: skip
    relative = sorted(imports_of("sweeps/x.py", ast.parse("from .store import cell_name\n")))
    assert relative == [(1, "ei_sim.sweeps.store")]
    assert layer_of_file("ei_sim/cli/train.py") == "cli"
    assert layer_of_file("ei_sim/training/spiking.py") == "training"
    assert layer_of_file("sweeps/grid.py") == "sweeps"
    assert layer_of_file("models/ping.py") == "models"
    assert layer_of_module("ei_sim") == "base" and layer_of_module("ei_sim.validate") == "base"
    assert layer_of_module("models.ping") == "removed"
    assert layer_of_module("ei_sim.train") == "removed"
    assert layer_of_module("ei_sim.training.spiking") == "training"
    assert layer_of_module("numpy") is None
    assert len(source_files()) > 40 and "ei_sim/cli/__init__.py" in source_files()


def test_removed_paths_are_gone():
    """Every path the contract forbids is really absent (the list stays honest)."""
    still_there = [m for m in REMOVED if _is_module(m)]
    assert not still_there, f"listed as removed but present: {still_there}"
    assert is_removed("ei_sim.storage") and not is_removed("ei_sim.store.atomic")


def test_imports_point_one_way():
    found = violations()
    new = [imp for imp in found if (imp[0], imp[2]) not in PENDING]
    assert not new, "imports against the package layering:\n" + "\n".join(map(_describe, new))


def test_pending_violations_still_exist():
    """Each allowlisted violation is still there; a removed one must leave PENDING too."""
    present = {(imp[0], imp[2]) for imp in violations()}
    gone = sorted(PENDING - present)
    assert not gone, "no longer imported, remove from PENDING in tests/test_architecture.py: " + (
        "; ".join(f"{path} -> {module}" for path, module in gone)
    )


def test_nothing_outside_the_cli_imports_the_cli():
    outside = [imp for imp in all_imports() if imp[4] == "cli" and imp[3] != "cli"]
    assert not outside, "only ei_sim/cli/ may import ei_sim.cli:\n" + "\n".join(
        map(_describe, outside)
    )


def package_graph() -> dict[str, dict[str, tuple[str, int, str]]]:
    """{layer: {imported layer: (file, line, module) of one such import}}, pending left out."""
    graph: dict[str, dict[str, tuple[str, int, str]]] = {layer: {} for layer in LAYERS}
    for relpath, line, module, source, target in all_imports():
        if source != target and (relpath, module) not in PENDING:
            graph[source].setdefault(target, (relpath, line, module))
    return graph


def find_cycle(graph: dict[str, dict]) -> list[str] | None:
    """One cycle of ``graph`` as [a, b, ..., a], or None (depth-first search)."""
    state: dict[str, str] = {}
    path: list[str] = []

    def visit(node):
        state[node] = "open"
        path.append(node)
        for nxt in sorted(graph.get(node, {})):
            if state.get(nxt) == "open":
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        state[node] = "done"
        path.pop()
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_find_cycle():
    assert find_cycle({"a": {"b": 0}, "b": {"c": 0}, "c": {}}) is None
    assert find_cycle({"a": {"b": 0}, "b": {"c": 0}, "c": {"a": 0}}) == ["a", "b", "c", "a"]


def test_the_package_graph_has_no_cycle():
    graph = package_graph()
    cycle = find_cycle(graph)
    if cycle:
        edges = []
        for a, b in zip(cycle, cycle[1:], strict=False):
            relpath, line, module = graph[a][b]
            edges.append(f"{a} -> {b} ({relpath}:{line} imports {module})")
        pytest.fail("the package graph has a cycle: " + "; ".join(edges))


# Libraries that draw figures or encode images and videos; sweeps/ may import none of them.
DRAWING_LIBRARIES = ("matplotlib", "PIL", "imageio", "imageio_ffmpeg")


def drawing_imports(relpath: str, tree: ast.AST) -> list[tuple[int, str]]:
    """(line, module) of every import of a drawing library in the file."""
    return [
        (line, module)
        for line, module in imports_of(relpath, tree)
        if module.split(".")[0] in DRAWING_LIBRARIES
    ]


def test_the_drawing_scanner_sees_every_kind_of_import():
    code = (
        "import numpy as np\n"
        "import matplotlib\n"
        "def f():\n"
        "    import matplotlib.pyplot as plt\n"
        "    from matplotlib.figure import Figure\n"
        "    from PIL import Image\n"
        "    import importlib\n"
        "    return importlib.import_module('imageio_ffmpeg')\n"
        "import matplotlibrc_helper\n"
    )
    found = drawing_imports("sweeps/x.py", ast.parse(code))
    assert found == [
        (2, "matplotlib"), (4, "matplotlib.pyplot"), (5, "matplotlib.figure"), (6, "PIL"),
        (8, "imageio_ffmpeg"),
    ]  # fmt: skip
    assert any(f.startswith("sweeps/") for f in source_files())


def test_sweeps_draws_no_figures():
    """sweeps/ produces numbers and stores; its figures live in analysis (sweep_plots)."""
    found = []
    for relpath in source_files():
        if layer_of_file(relpath) == "sweeps":
            tree = ast.parse((ROOT / relpath).read_text(encoding="utf-8"), filename=relpath)
            found += [f"{relpath}:{line}: imports {module}" for line, module in
                      drawing_imports(relpath, tree)]  # fmt: skip
    assert not found, "sweeps/ must not draw figures or videos (move it to analysis/):\n" + (
        "\n".join(found)
    )
