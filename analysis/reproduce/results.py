"""Results as data: a reproduction's numbers (no weights) in a JSON file, with provenance.

A results file holds what a reproduction store holds, its finished stages (each stage's
attributes and arrays: summaries and per-epoch metrics), plus the comparison table's rows and
the verdicts, for one (experiment, scale, setting, epochs). The repository ships the lab-scale
campaign's files under ``data/results/<experiment>/<scale>_<setting>_<epochs>ep.json``
(installed as ``ei_sim.results``); ``ei-sim reproduce`` reads a matching file before it runs
anything, so a user sees the full-scale tables without retraining, and recomputes only the
stages the file lacks.

A file is used only when it matches: the same layout (:data:`LAYOUT`; a file of another
layout, written by another release, is refused), and the same recipe (the plan's attributes
and the setting). Provenance: ei-sim's commit, the command, the machine, the creation time
and the trainings' wall time (the sum of their epochs' wall times).
"""

from __future__ import annotations

import datetime
import json
import math
import os
import platform
import sys

import numpy as np

LAYOUT = 1
ENV_ROOT = "EI_SIM_RESULTS"  # another folder of shipped results (tests, a lab's own campaign)


def shipped_root() -> str | None:
    """The folder of the shipped results (``$EI_SIM_RESULTS`` when set)."""
    if os.environ.get(ENV_ROOT):
        return os.environ[ENV_ROOT]
    try:
        from importlib.resources import files

        return str(files("ei_sim.results"))
    except (ModuleNotFoundError, TypeError):
        return None


def results_path(root: str, experiment: str, scale: str, setting: str, epochs: int) -> str:
    return os.path.join(root, experiment, f"{scale}_{setting}_{epochs}ep.json")


def _jsonable(x):
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return _jsonable(x.tolist())
    if isinstance(x, np.generic):
        return _jsonable(x.item())
    if isinstance(x, float) and not math.isfinite(x):
        return None if math.isnan(x) else ("inf" if x > 0 else "-inf")
    return x


def _array(values):
    def fix(v):
        if isinstance(v, list):
            return [fix(u) for u in v]
        if v is None:
            return float("nan")
        if v in ("inf", "-inf"):
            return float(v)
        return v

    return np.asarray(fix(values))


def machine() -> str:
    """The machine in words: CPU model, cores, memory."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next(line.split(":", 1)[1].strip() for line in fh
                       if line.startswith("model name"))  # fmt: skip
    except (OSError, StopIteration):
        pass
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError, AttributeError):
        memory = float("nan")
    return f"{cpu}, {os.cpu_count()} cores, {memory:.0f} GiB"


def write_results(path: str, *, experiment: str, scale: str, setting: str, epochs: int,
                  plan_attrs: dict, stages: dict, rows: list, verdicts: list,
                  statements: list) -> None:  # fmt: skip
    """Write a results file atomically (see the module doc)."""
    from ei_sim.store.attrs import git_commit

    wall = sum(float(np.nansum(np.asarray(stage.get("epoch_wall_s", []), float)))
               for stage in stages.values())  # fmt: skip
    data = {
        "layout": LAYOUT, "experiment": experiment, "scale": scale, "setting": setting,
        "epochs": int(epochs), "plan": {k: str(v) for k, v in plan_attrs.items()},
        "provenance": {
            "git_commit": git_commit(), "command": " ".join(sys.argv),
            "machine": machine(),
            "created_utc": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "training_wall_s": round(wall, 1),
        },
        "verdicts": [dict(claim=v.claim, status=v.status, evidence=v.evidence, epochs=v.epochs)
                     for v in verdicts],
        "statements": list(statements),
        "rows": rows,
        "stages": {name: {"attrs": stage["attrs"],
                          "arrays": {k: v for k, v in stage.items() if k != "attrs"}}
                   for name, stage in stages.items()},
    }  # fmt: skip
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(_jsonable(data), fh, indent=1, sort_keys=True)
        fh.write("\n")
    os.replace(tmp, path)


def read_results(path: str, *, experiment: str, setting: str, plan_attrs: dict) -> dict:
    """A results file's content, its stages' arrays as NumPy arrays; ValueError (one line)
    when it is of another layout or made with another recipe."""
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"results file {path} cannot be read: {err}") from None
    if data.get("layout") != LAYOUT:
        raise ValueError(f"results file {path} has layout {data.get('layout')!r}; this ei-sim "
                         f"reads layout {LAYOUT} (written by another release)")  # fmt: skip
    if data.get("experiment") != experiment or data.get("setting") != setting:
        raise ValueError(f"results file {path} holds {data.get('experiment')} with setting "
                         f"{data.get('setting')}, not {experiment} with {setting}")  # fmt: skip
    want = {k: str(v) for k, v in plan_attrs.items()}
    diffs = sorted(k for k in set(want) | set(data.get("plan", {}))
                   if want.get(k) != data.get("plan", {}).get(k))  # fmt: skip
    if diffs:
        raise ValueError(f"results file {path} was made with another recipe "
                         f"({', '.join(diffs[:4])} differ)")  # fmt: skip
    for stage in data["stages"].values():
        stage["arrays"] = {k: _array(v) for k, v in stage["arrays"].items()}
    return data


def available(root: str | None, experiment: str, scale: str, setting: str) -> list[int]:
    """Epoch counts of the results files of an experiment, scale and setting under ``root``."""
    if not root:
        return []
    folder = os.path.join(root, experiment)
    prefix = f"{scale}_{setting}_"
    out = []
    if os.path.isdir(folder):
        for name in os.listdir(folder):
            if name.startswith(prefix) and name.endswith("ep.json"):
                text = name[len(prefix) : -len("ep.json")]
                if text.isdigit():
                    out.append(int(text))
    return sorted(out)
