"""benchmarks/gpu_check.sh in its shrunk mode (GPU_CHECK_SMALL=1), on whatever device JAX has
here: one JSON line with the device and both parts' epoch times, CPU said so."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import gpu_check  # noqa: E402


def test_epoch_times_from_marks():
    out = gpu_check.epoch_times_s([10.0, 12.0, 15.0], 0.0)
    assert out == {"first_epoch_s": 10.0, "epoch_s": 2.5, "epochs": 3}
    assert gpu_check.epoch_times_s([4.0], 1.0) == {"first_epoch_s": 3.0, "epoch_s": None,
                                                    "epochs": 1}  # fmt: skip


def test_grid_axes_span_the_recipe_ranges():
    w_ei, w_ie = gpu_check.grid_axes(5)
    assert w_ei == [0.0, 0.5, 1.0, 1.5, 2.0] and w_ie == [0.0, 1.0, 2.0, 3.0, 4.0]


@pytest.mark.slow
def test_shrunk_run_prints_device_and_epochs():
    env = {**os.environ, "GPU_CHECK_SMALL": "1", "PYTHON": sys.executable}
    done = subprocess.run([str(ROOT / "benchmarks" / "gpu_check.sh")], capture_output=True,
                          text=True, env=env, timeout=1800)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert {"device", "platform", "on_cpu", "jax", "train", "grid_vmap", "total_s"} <= set(result)
    assert result["small"] and result["ei_sim_native"] == "0"
    for part in ("train", "grid_vmap"):
        assert "error" not in result[part], result[part]
        assert result[part]["epochs"] == 2 and result[part]["epoch_s"] > 0
    assert result["grid_vmap"]["cells"] == 4
    if result["on_cpu"]:
        assert "JAX runs on the CPU" in done.stderr
