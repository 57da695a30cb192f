"""Whole-process runs for bench_engine.py: wall time, processor time and peak memory of one
command each, ei-sim against Brian2 (C++ standalone and Cython) and against ei-sim's previous
version, in one run.

Every command runs in its own process; its wall time is measured from outside (interpreter
start, imports, code generation or compilation, network construction, simulation, writing and
exit), its processor time (user + system, its child processes included: Brian2's ``make`` and
binary) and peak resident memory come from ``os.wait4``. The commands:

* ``ei-sim``: ``ei-sim simulate --model va_coba --t-ms T --seed K --out FILE --timings``; its
  in-loop figures are the ``--timings`` line's ``run_s`` (wall, the spike files streamed in the
  same time) and ``loop_cpu_s`` (processor time of the native loop alone);
* ``brian2-cpp``: ``peers/coba_brian2.py T --target cpp_standalone --directory D`` with one
  project folder per (T, seed, method) that a first run builds (so the timed runs are warm:
  code generation, an empty ``make``, the binary and reading its results); in-loop: the
  binary's ``_last_run_time`` (processor time of its loop, ``std::clock``);
  ``brian2-cpp-euler``: the same with forward Euler (``--method euler``), Brian2's cheapest
  integration (a coarser scheme than the exponential Euler both simulators use otherwise);
* ``brian2-cython``: ``peers/coba_brian2.py T`` (Cython, cache warm); in-loop: ``run()``'s
  wall time;
* ``ei-sim@REV``: the ei-sim command at an earlier commit (``--baseline REV``), from a
  temporary ``git worktree`` run with this environment's packages (its compiled programs and
  native kernels warmed by a first run).

All of them run once before the measurements (warm caches), then alternately, ``repeats``
times each, each repeat with another network realisation (ei-sim seeds 0, 1, 2, ...; Brian2
seeds 42, 1, 2, ...). Medians of the wall and processor times and of the mean rates, and the
ratios of ei-sim's medians to each peer's, are reported.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PEERS = os.path.join(HERE, "peers")
ROOT = os.path.dirname(HERE)
RATES = re.compile(r"E ([0-9.]+) Hz, I ([0-9.]+) Hz")
BRIAN2_SEEDS = (42, 1, 2, 3, 4, 5, 6, 7, 8, 9)


def measure(cmd: list[str], cwd: str | None = None, env: dict | None = None) -> dict:
    """Run ``cmd``; wall seconds, processor seconds (user + system, children included), peak
    RSS (MB), exit status, stdout and stderr."""
    out_f, err_f = tempfile.TemporaryFile("w+"), tempfile.TemporaryFile("w+")
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=out_f, stderr=err_f, cwd=cwd, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    out_f.seek(0), err_f.seek(0)
    return {"wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime,
            "peak_rss_mb": usage.ru_maxrss / 1024, "rc": proc.returncode,
            "stdout": out_f.read(), "stderr": err_f.read()}  # fmt: skip


def _last_json(text: str) -> dict:
    lines = [ln for ln in text.splitlines() if ln.startswith("{")]
    return json.loads(lines[-1]) if lines else {}


def _error(r: dict) -> str:
    return (r["stderr"].strip().splitlines() or ["no output"])[-1][:200]


def ei_sim_args(seconds: float, out: str, seed: int = 0) -> list[str]:
    return ["simulate", "--model", "va_coba", "--t-ms", str(seconds * 1000.0), "--seed",
            str(seed), "--out", out, "--no-progress", "--timings"]  # fmt: skip


def ei_sim_command(seconds: float, out: str, seed: int = 0) -> list[str]:
    script = os.path.join(os.path.dirname(sys.executable), "ei-sim")
    head = [script] if os.path.exists(script) else [sys.executable, "-m", "ei_sim.cli"]
    return [*head, *ei_sim_args(seconds, out, seed)]


def _ei_sim_row(name: str, r: dict, seconds: float, seed: int, out: str) -> dict:
    row = {"sim": name, "sim_s": seconds, "seed": seed,
           **{k: r[k] for k in ("wall_s", "cpu_s", "peak_rss_mb", "rc")}}  # fmt: skip
    match = RATES.search(r["stdout"])
    if r["rc"] != 0 or not match:
        row["error"] = _error(r)
        return row
    rate_e, rate_i = float(match.group(1)), float(match.group(2))
    row["rate_hz"] = (3200 * rate_e + 800 * rate_i) / 4000
    parts = _last_json(r["stderr"])
    row["parts"] = parts
    row["loop_wall_s"] = parts.get("run_s")
    row["loop_cpu_s"] = parts.get("loop_cpu_s")
    if os.path.exists(out):
        row["file_mb"] = os.path.getsize(out) / 1e6
        os.unlink(out)
    return row


def run_ei_sim(seconds: float, folder: str, seed: int = 0) -> dict:
    out = os.path.join(folder, "va.h5")
    return _ei_sim_row("ei-sim", measure(ei_sim_command(seconds, out, seed)), seconds, seed, out)


def run_brian2(seconds: float, seed: int = 42, target: str = "cython", method: str | None = None,
               folder: str | None = None) -> dict:  # fmt: skip
    """One Brian2 process; ``folder``: the cpp_standalone project folder."""
    cmd = [sys.executable, os.path.join(PEERS, "coba_brian2.py"), str(seconds), "--seed",
           str(seed), "--target", target]  # fmt: skip
    if method:
        cmd += ["--method", method]
    if folder:
        cmd += ["--directory", folder]
    r = measure(cmd)
    name = "brian2-" + ("cpp" if target == "cpp_standalone" else target)
    name += "-euler" if method == "euler" else ""
    row = {"sim": name, "sim_s": seconds, "seed": seed,
           **{k: r[k] for k in ("wall_s", "cpu_s", "peak_rss_mb", "rc")}}  # fmt: skip
    inner = _last_json(r["stdout"])
    if r["rc"] != 0 or not inner:
        row["skipped"] = _error(r)
        return row
    row["rate_hz"] = inner["rate_hz"]
    row["parts"] = {k: inner[k] for k in ("import_s", "build_s", "wall_s", "loop_s", "binary_s",
                                          "make_s") if k in inner}  # fmt: skip
    if target == "cpp_standalone":
        row["loop_cpu_s"] = inner.get("loop_s")
    else:
        row["loop_wall_s"] = inner.get("wall_s")
    return row


LAUNCHER = """
import importlib.util, sys
tree = sys.argv.pop(1)
FOLDERS = {"ei_sim.models": "models", "ei_sim.sweeps": "sweeps", "ei_sim.analysis": "analysis"}

class Finder:  # what the editable install does for this checkout: ei_sim.models -> models/
    @classmethod
    def find_spec(cls, name, path=None, target=None):
        folder = FOLDERS.get(name)
        if folder is None:
            return None
        return importlib.util.spec_from_file_location(
            name, f"{tree}/{folder}/__init__.py", submodule_search_locations=[f"{tree}/{folder}"])

sys.path.insert(0, tree)
sys.meta_path.insert(0, Finder)
from ei_sim.cli import main
sys.exit(main(sys.argv[1:]))
"""


class Baseline:
    """ei-sim at an earlier commit, in a temporary git worktree (removed by :meth:`close`)."""

    def __init__(self, rev: str):
        self.rev = rev
        self.tree = tempfile.mkdtemp(prefix="bench-baseline-")
        subprocess.run(["git", "-C", ROOT, "worktree", "add", "--detach", self.tree, rev],
                       check=True, capture_output=True)  # fmt: skip
        self.launcher = os.path.join(self.tree, "_launch_baseline.py")
        with open(self.launcher, "w") as fh:
            fh.write(LAUNCHER)

    def run(self, seconds: float, folder: str, seed: int = 0) -> dict:
        out = os.path.join(folder, "va_base.h5")
        cmd = [sys.executable, self.launcher, self.tree, *ei_sim_args(seconds, out, seed)]
        return _ei_sim_row(f"ei-sim@{self.rev}", measure(cmd, cwd=self.tree), seconds, seed, out)

    def close(self) -> None:
        subprocess.run(["git", "-C", ROOT, "worktree", "remove", "--force", self.tree],
                       capture_output=True)  # fmt: skip
        shutil.rmtree(self.tree, ignore_errors=True)


def brian2_projects() -> str:
    """Where the Brian2 C++ projects are kept between benchmark runs (built once each):
    ``$EI_SIM_CACHE_DIR/bench/brian2-standalone`` (default ``~/.cache/ei_sim``)."""
    root = os.environ.get("EI_SIM_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache",
                                                              "ei_sim")  # fmt: skip
    return os.path.join(root, "bench", "brian2-standalone")


def _median_row(rows: list[dict]) -> dict:
    good = [r for r in rows if r.get("rc", 0) == 0 and "error" not in r and "skipped" not in r]
    if not good:
        return rows[-1] if rows else {}
    med = lambda key: statistics.median(r[key] for r in good)  # noqa: E731
    best = min(good, key=lambda r: abs(r["wall_s"] - med("wall_s")))
    out = {**best, "wall_s": med("wall_s"), "cpu_s": med("cpu_s"),
           "walls_s": [round(r["wall_s"], 3) for r in good],
           "cpus_s": [round(r["cpu_s"], 3) for r in good],
           "peak_rss_mb": max(r["peak_rss_mb"] for r in good), "repeats": len(good)}  # fmt: skip
    for key in ("rate_hz", "loop_wall_s", "loop_cpu_s"):
        values = [r[key] for r in good if r.get(key) is not None]
        out[key] = statistics.median(values) if values else None
        if key == "rate_hz":
            out["rates_hz"] = [round(v, 3) for v in values]
    return out


def _ratios(ours: dict, theirs: dict) -> dict:
    """ei-sim's medians over a peer's (below 1: ei-sim faster)."""
    out = {}
    for key in ("wall_s", "cpu_s"):
        if ours.get(key) and theirs.get(key):
            out[key.replace("_s", "")] = ours[key] / theirs[key]
    if ours.get("loop_cpu_s") and theirs.get("loop_cpu_s"):
        out["loop_cpu"] = ours["loop_cpu_s"] / theirs["loop_cpu_s"]
    if ours.get("loop_wall_s") and (theirs.get("loop_wall_s") or theirs.get("loop_cpu_s")):
        out["loop_wall"] = ours["loop_wall_s"] / (theirs.get("loop_wall_s") or
                                                   theirs["loop_cpu_s"])  # fmt: skip
    if ours.get("rate_hz") and theirs.get("rate_hz"):
        out["rate"] = ours["rate_hz"] / theirs["rate_hz"]
    return out


def compare(seconds_list, repeats: int, peers=("brian2-cpp", "brian2-cpp-euler", "brian2-cython"),
            baseline: str | None = None) -> list[dict]:  # fmt: skip
    """ei-sim against the peers (and its previous version), whole process, medians."""
    folder = tempfile.mkdtemp(prefix="bench-whole-")
    projects = brian2_projects()
    base = Baseline(baseline) if baseline else None
    out = []
    try:
        def peer(name: str, seconds: float, k: int) -> dict:
            seed = BRIAN2_SEEDS[k % len(BRIAN2_SEEDS)]
            if name == "brian2-cython":
                return run_brian2(seconds, seed)
            method = "euler" if name.endswith("euler") else None
            project = os.path.join(projects, f"{seconds:g}s-seed{seed}-{method or 'expeuler'}")
            return run_brian2(seconds, seed, "cpp_standalone", method, project)

        runners = {"ei-sim": lambda s, k: run_ei_sim(s, folder, seed=k)}
        if base is not None:
            runners[f"ei-sim@{baseline}"] = lambda s, k: base.run(s, folder, seed=k)
        for name in peers:
            runners[name] = lambda s, k, name=name: peer(name, s, k)
        for seconds in seconds_list:
            for k in range(repeats):  # warm: every realisation's build, cache and program
                for run in runners.values():
                    first = run(seconds, k)
                    if "skipped" in first or "error" in first:
                        print(json.dumps({"bench": "warm-up", **first}), file=sys.stderr)
            rows = {name: [] for name in runners}
            for k in range(repeats):  # alternately, one realisation per repeat
                for name, run in runners.items():
                    rows[name].append(run(seconds, k))
            medians = {name: _median_row(r) for name, r in rows.items()}
            ours = medians["ei-sim"]
            ours["vs"] = {name: _ratios(ours, m) for name, m in medians.items()
                          if name != "ei-sim"}  # fmt: skip
            out += list(medians.values())
    finally:
        if base is not None:
            base.close()
        shutil.rmtree(folder, ignore_errors=True)
    return out


def memory(seconds_list) -> list[dict]:
    """Peak memory of ``ei-sim simulate --out`` against simulated time."""
    folder = tempfile.mkdtemp(prefix="bench-memory-")
    try:
        return [run_ei_sim(seconds, folder) for seconds in seconds_list]
    finally:
        shutil.rmtree(folder, ignore_errors=True)
