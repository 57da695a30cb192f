#!/usr/bin/env bash
# GPU check: one medium training epoch on the pure-JAX path and one epoch of a vmapped 5 x 5
# medium grid; prints one JSON line with the JAX device (benchmarks/gpu_check.py says how the
# epochs are timed). Meant to finish well under 10 minutes on a GPU.
#
#   benchmarks/gpu_check.sh [--epochs 2] [--grid 5]    # on the GPU machine
#   GPU_CHECK_SMALL=1 benchmarks/gpu_check.sh           # shrunk: tiny tier, 2 x 2 grid (CPU test)
#
# It uses the repository's .venv (or $PYTHON) as it is: nothing is installed. On a GPU
# machine that environment needs a CUDA jaxlib (e.g. `pip install -U "jax[cuda12]"`, done
# beforehand where there is network); with a CPU-only jaxlib JAX runs on the CPU, and the
# script says so on stderr and with "on_cpu": true in the JSON.
#
# EI_SIM_NATIVE=0: the native kernels are CPU-only XLA FFI targets, so the GPU runs the
# pure-JAX paths (the same path is measured on a CPU for comparison).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="${PYTHON:-$root/.venv/bin/python}"
[ -x "$python" ] || python="$(command -v python3)"
export EI_SIM_NATIVE=0
exec "$python" "$root/benchmarks/gpu_check.py" "$@"
