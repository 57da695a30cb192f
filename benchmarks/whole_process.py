"""Whole-process runs for bench_engine.py: wall time and peak memory of one command each.

Every command runs in its own process; its wall time is measured from outside (interpreter
start, imports, compilation or cache loading, network construction, simulation, writing and
exit) and its peak resident memory comes from ``os.wait4``. ei-sim is
``ei-sim simulate --model va_coba --t-ms T --out FILE`` (its ``--timings`` line gives the
parts); Brian2 is ``peers/coba_brian2.py T`` (cython, a SpikeMonitor). Both are run once
before the measurements so that their caches are warm (ei-sim's compiled programs, Brian2's
compiled Cython code), then alternately, ``repeats`` times each, each repeat with another
network realisation (ei-sim seeds 0, 1, 2, ...; Brian2 seeds 42, 1, 2, ...); medians of the
wall times and of the mean rates are reported.
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
RATES = re.compile(r"E ([0-9.]+) Hz, I ([0-9.]+) Hz")


def measure(cmd: list[str], cwd: str | None = None, env: dict | None = None) -> dict:
    """Run ``cmd``; wall seconds, peak RSS (MB), exit status, stdout and stderr."""
    out_f, err_f = tempfile.TemporaryFile("w+"), tempfile.TemporaryFile("w+")
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=out_f, stderr=err_f, cwd=cwd, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    out_f.seek(0), err_f.seek(0)
    return {"wall_s": wall, "peak_rss_mb": usage.ru_maxrss / 1024, "rc": proc.returncode,
            "stdout": out_f.read(), "stderr": err_f.read()}  # fmt: skip


def _last_json(text: str) -> dict:
    lines = [ln for ln in text.splitlines() if ln.startswith("{")]
    return json.loads(lines[-1]) if lines else {}


def ei_sim_command(seconds: float, out: str, seed: int = 0) -> list[str]:
    script = os.path.join(os.path.dirname(sys.executable), "ei-sim")
    head = [script] if os.path.exists(script) else [sys.executable, "-m", "ei_sim.cli"]
    return [*head, "simulate", "--model", "va_coba", "--t-ms", str(seconds * 1000.0),
            "--seed", str(seed), "--out", out, "--no-progress", "--timings"]  # fmt: skip


def run_ei_sim(seconds: float, folder: str, seed: int = 0) -> dict:
    out = os.path.join(folder, "va.h5")
    r = measure(ei_sim_command(seconds, out, seed))
    row = {"sim": "ei-sim", "sim_s": seconds, "seed": seed, "wall_s": r["wall_s"],
           "peak_rss_mb": r["peak_rss_mb"], "rc": r["rc"]}  # fmt: skip
    match = RATES.search(r["stdout"])
    if r["rc"] != 0 or not match:
        row["error"] = (r["stderr"].strip().splitlines() or ["no output"])[-1][:200]
        return row
    rate_e, rate_i = float(match.group(1)), float(match.group(2))
    row["rate_hz"] = (3200 * rate_e + 800 * rate_i) / 4000
    row["parts"] = _last_json(r["stderr"])
    row["file_mb"] = os.path.getsize(out) / 1e6
    os.unlink(out)
    return row


def run_brian2(seconds: float, seed: int = 42) -> dict:
    script = os.path.join(PEERS, "coba_brian2.py")
    r = measure([sys.executable, script, str(seconds), "--seed", str(seed)])
    row = {"sim": "brian2", "sim_s": seconds, "seed": seed, "wall_s": r["wall_s"],
           "peak_rss_mb": r["peak_rss_mb"], "rc": r["rc"]}  # fmt: skip
    inner = _last_json(r["stdout"])
    if r["rc"] != 0 or not inner:
        row["skipped"] = (r["stderr"].strip().splitlines() or ["no output"])[-1][:200]
        return row
    row.update(rate_hz=inner["rate_hz"], parts={k: inner[k] for k in ("import_s", "build_s",
                                                                      "wall_s")})  # fmt: skip
    return row


def _median_row(rows: list[dict]) -> dict:
    good = [r for r in rows if "wall_s" in r and r.get("rc", 0) == 0 and "error" not in r]
    if not good:
        return rows[-1]
    walls = [r["wall_s"] for r in good]
    best = min(good, key=lambda r: abs(r["wall_s"] - statistics.median(walls)))
    rates = [r["rate_hz"] for r in good if r.get("rate_hz") is not None]
    return {**best, "wall_s": statistics.median(walls), "walls_s": walls,
            "rate_hz": statistics.median(rates) if rates else None, "rates_hz": rates,
            "peak_rss_mb": max(r["peak_rss_mb"] for r in good)}  # fmt: skip


def compare(seconds_list, repeats: int, with_brian2: bool = True) -> list[dict]:
    """ei-sim against Brian2, whole process, for each simulated length; medians."""
    folder = tempfile.mkdtemp(prefix="bench-whole-")
    out = []
    try:
        for k in range(repeats):  # warm caches; each realisation has its own block sizes,
            run_ei_sim(min(seconds_list), folder, seed=k)  # so its own compiled run program
        have_brian2 = with_brian2 and "skipped" not in run_brian2(0.1)
        for seconds in seconds_list:
            rows = {"ei-sim": [], "brian2": []}
            for k in range(repeats):  # one network realisation (seed) per repeat
                rows["ei-sim"].append(run_ei_sim(seconds, folder, seed=k))
                if have_brian2:
                    rows["brian2"].append(run_brian2(seconds, seed=(42, 1, 2, 3, 4)[k % 5]))
            ours = _median_row(rows["ei-sim"])
            theirs = _median_row(rows["brian2"]) if have_brian2 else None
            if theirs and "wall_s" in theirs and "rate_hz" in ours:
                ours["wall_vs_brian2"] = ours["wall_s"] / theirs["wall_s"]
                ours["rate_vs_brian2"] = ours["rate_hz"] / theirs["rate_hz"]
            out += [ours] + ([theirs] if theirs else [])
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return out


def memory(seconds_list) -> list[dict]:
    """Peak memory of ``ei-sim simulate --out`` against simulated time."""
    folder = tempfile.mkdtemp(prefix="bench-memory-")
    try:
        return [run_ei_sim(seconds, folder) for seconds in seconds_list]
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def baseline(rev: str, seconds: float, repeats: int) -> list[dict]:
    """The same command on an earlier commit (a temporary git worktree), for before/after."""
    root = os.path.dirname(HERE)
    tree = tempfile.mkdtemp(prefix="bench-baseline-")
    folder = tempfile.mkdtemp(prefix="bench-baseline-out-")
    try:
        subprocess.run(["git", "-C", root, "worktree", "add", "--detach", tree, rev],
                       check=True, capture_output=True)  # fmt: skip
        env = {**os.environ, "PYTHONPATH": tree, "EI_SIM_COMPILE_CACHE": "0"}
        out = os.path.join(folder, "va.h5")
        cmd = [sys.executable, "-c", "import sys; from ei_sim.cli import main; "
               "sys.exit(main(sys.argv[1:]))", "simulate", "--model", "va_coba",
               "--t-ms", str(seconds * 1000.0), "--out", out]  # fmt: skip
        rows = []
        for _ in range(repeats + 1):  # the first warms the native build and the OS caches
            r = measure(cmd, cwd=tree, env=env)
            match = RATES.search(r["stdout"])
            rate = (
                (3200 * float(match.group(1)) + 800 * float(match.group(2))) / 4000
                if match
                else None
            )
            rows.append({"sim": f"ei-sim at {rev}", "sim_s": seconds, "rate_hz": rate,
                         **{k: r[k] for k in ("wall_s", "peak_rss_mb", "rc")}})  # fmt: skip
        return [_median_row(rows[1:])]
    finally:
        subprocess.run(["git", "-C", root, "worktree", "remove", "--force", tree],
                       capture_output=True)  # fmt: skip
        shutil.rmtree(folder, ignore_errors=True)
