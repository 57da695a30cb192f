"""Native event-driven propagation: a small C++ kernel registered as an XLA FFI target (CPU).

``event_matmul(spikes, w)`` returns ``spikes @ w`` by adding, for every nonzero entry of
``spikes`` (B, n_pre), the matching row of ``w`` (n_pre, n_post): work proportional to the
number of spikes, with no stream compaction on the XLA side. It runs inside ``jit``, ``scan``,
``cond`` and ``vmap`` like any JAX operation. Gradients are defined one level up, in
:func:`ei_sim.propagate.propagate`.

The kernel (``event_matmul.cc``, next to this file) is compiled on first use with the C++
compiler found as ``$CXX`` or ``g++``/``c++`` against the XLA FFI headers that ship with
jaxlib, and cached in ``$EI_SIM_CACHE_DIR`` (default ``~/.cache/ei_sim``) under a key of
source, jaxlib version and machine. Set ``EI_SIM_NATIVE=0`` to disable it. When it cannot be
built, :func:`available` returns False, :func:`unavailable_reason` says why, and the engine
uses its pure-JAX event path (same results, slower on CPU).
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
from pathlib import Path

import jax

SOURCE = Path(__file__).with_name("event_matmul.cc")
TARGETS = {"ei_sim_event_matmul": "EiSimEventMatmul",
           "ei_sim_sparse_event_matmul": "EiSimSparseEventMatmul"}  # fmt: skip
FLAGS = ("-O3", "-std=c++17", "-shared", "-fPIC")

_reason: list[str] = []


def cache_dir() -> Path:
    """Where built kernels are kept: ``$EI_SIM_CACHE_DIR`` or ``~/.cache/ei_sim``."""
    root = os.environ.get("EI_SIM_CACHE_DIR") or os.path.join(
        os.path.expanduser("~"), ".cache", "ei_sim"
    )
    return Path(root) / "native"


def _compiler() -> str | None:
    for name in (os.environ.get("CXX"), "g++", "c++", "clang++"):
        if name and shutil.which(name):
            return name
    return None


def library_path() -> Path:
    """The cached shared library for this source, jaxlib version, machine and flags."""
    import jaxlib

    key = hashlib.sha256()
    for part in (SOURCE.read_bytes(), jaxlib.__version__.encode(), platform.machine().encode(),
                 " ".join(FLAGS).encode()):  # fmt: skip
        key.update(part)
    return cache_dir() / f"event_matmul-{key.hexdigest()[:16]}.so"


def build() -> Path:
    """Compile the kernel into the cache (atomically) unless it is there; return its path."""
    path = library_path()
    if path.exists():
        return path
    compiler = _compiler()
    if compiler is None:
        raise RuntimeError("no C++ compiler found (set CXX or install g++)")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".so", dir=path.parent)
    os.close(fd)
    cmd = [compiler, *FLAGS, f"-I{jax.ffi.include_dir()}", str(SOURCE), "-o", tmp]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            last = (proc.stderr.strip().splitlines() or ["unknown error"])[-1]
            raise RuntimeError(f"compiling {SOURCE.name} failed: {last}")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


@functools.cache
def available() -> bool:
    """Build (once), load and register the kernel; False (with a reason) if that fails."""
    if os.environ.get("EI_SIM_NATIVE", "1").strip().lower() in ("0", "false", "no", "off"):
        _reason.append("disabled by EI_SIM_NATIVE")
        return False
    try:
        library = ctypes.cdll.LoadLibrary(str(build()))
        for target, symbol in TARGETS.items():
            handler = getattr(library, symbol)
            jax.ffi.register_ffi_target(target, jax.ffi.pycapsule(handler), platform="cpu")
    except (OSError, RuntimeError, AttributeError) as err:
        _reason.append(str(err))
        return False
    return True


def unavailable_reason() -> str | None:
    """Why :func:`available` returned False, or None."""
    return _reason[-1] if _reason else None


def _require() -> None:
    if not available():
        raise RuntimeError(f"the native event kernel is unavailable: {unavailable_reason()}")


def event_matmul(spikes: jax.Array, w: jax.Array) -> jax.Array:
    """``spikes @ w`` by the native kernel: spikes (..., B, n_pre), w (..., n_pre, n_post)."""
    _require()
    dtype = jax.numpy.result_type(spikes, w)
    out = jax.ShapeDtypeStruct(spikes.shape[:-1] + w.shape[-1:], dtype)
    call = jax.ffi.ffi_call("ei_sim_event_matmul", out, vmap_method="expand_dims")
    return call(spikes.astype(dtype), w.astype(dtype))


def sparse_event_matmul(spikes, indptr, cols, data, n_post: int) -> jax.Array:
    """``spikes @ W`` for W in compressed sparse rows (``indptr``, ``cols``, ``data``).

    spikes (..., B, n_pre); indptr (n_pre + 1,) and cols (nnz,) int32; data (..., nnz).
    Work is proportional to the number of spikes times the fan-out.
    """
    _require()
    dtype = jax.numpy.result_type(spikes, data)
    out = jax.ShapeDtypeStruct(spikes.shape[:-1] + (n_post,), dtype)
    call = jax.ffi.ffi_call("ei_sim_sparse_event_matmul", out, vmap_method="expand_dims")
    return call(spikes.astype(dtype), indptr, cols, data.astype(dtype))
