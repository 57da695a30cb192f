"""Native kernels: small C++ functions registered as XLA FFI targets (CPU).

* ``event_matmul(spikes, w)`` returns ``spikes @ w`` by adding, for every nonzero entry of
  ``spikes`` (B, n_pre), the matching row of ``w`` (n_pre, n_post): work proportional to the
  number of spikes, with no stream compaction on the XLA side (``sparse_event_matmul``: the
  same for compressed-sparse-row blocks); ``event_outer(spikes, ct)`` returns ``spikes^T @ ct``
  (the gradient with respect to ``w``) the same way. Gradients are defined one level up, in
  :func:`ei_sim.sim.propagate.propagate` and :func:`ei_sim.sim.sparse.sparse_propagate`.
* ``population_forward`` / ``population_adjoint``: the membrane and spike update of one
  population and its adjoint, each one fused, vectorised pass over the cells (the equations
  are in ``population.cc`` and :func:`ei_sim.sim.engine.population_update`, which uses them).

They run inside ``jit``, ``scan``, ``cond`` and ``vmap`` like any JAX operation. The sources
(``*.cc`` next to this file) are compiled on first use with the C++ compiler found as ``$CXX``
or ``g++``/``c++`` against the XLA FFI headers that ship with jaxlib, for the CPU at hand
(``-march=native``), and cached in ``$EI_SIM_CACHE_DIR`` (default ``~/.cache/ei_sim``) under a
key of sources, flags, jaxlib version and CPU model and features (so a cache shared by
different cluster nodes holds one build per kind of node). Set ``EI_SIM_NATIVE=0`` to disable
them. When they cannot be built, :func:`available` returns False, :func:`unavailable_reason`
says why, and the engine uses its pure-JAX paths (same results up to float rounding, slower).

The same library holds the network loop of ``ei-sim simulate`` for networks without input
(``host.cc``, plain C functions): :func:`library` loads it with ctypes without importing JAX
(:mod:`ei_sim.sim.hostrun` calls it), so that such a run starts without JAX.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import hashlib
import os
import platform
import shlex
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import jax

SOURCES = tuple(
    Path(__file__).with_name(name)
    for name in ("event_matmul.cc", "population.cc", "network.cc", "host.cc")
)
HEADERS = tuple(Path(__file__).with_name(name) for name in ("float_types.h", "cells.h", "dense.h"))
TARGETS = {"ei_sim_event_matmul": "EiSimEventMatmul",
           "ei_sim_event_outer": "EiSimEventOuter",
           "ei_sim_sparse_event_matmul": "EiSimSparseEventMatmul",
           "ei_sim_population_forward": "EiSimPopulationForward",
           "ei_sim_population_adjoint": "EiSimPopulationAdjoint",
           "ei_sim_network_forward": "EiSimNetworkForward",
           "ei_sim_network_adjoint_step": "EiSimNetworkAdjointStep",
           "ei_sim_packed_product": "EiSimPackedProduct"}  # fmt: skip
# -fno-math-errno / -fno-trapping-math only drop errno and FP-exception bookkeeping (results
# are IEEE as written, NaN and inf propagate); they let the compiler vectorise the loops.
# A compiler that rejects -march=native gets the same build without it.
FLAGS = ("-O3", "-march=native", "-fno-math-errno", "-fno-trapping-math", "-std=c++17",
         "-shared", "-fPIC")  # fmt: skip
EXTRA_FLAGS_ENV = "EI_SIM_NATIVE_FLAGS"  # more compiler flags, e.g. -mno-avx512f (tests)


def flags() -> tuple:
    """:data:`FLAGS` and those of ``$EI_SIM_NATIVE_FLAGS`` (part of the build's cache key)."""
    return FLAGS + tuple(shlex.split(os.environ.get(EXTRA_FLAGS_ENV, "")))

_reason: list[str] = []


def cache_dir() -> Path:
    """Where built kernels are kept: ``native`` in :func:`ei_sim.data.cache.cache_root`."""
    from ei_sim.data.cache import cache_root

    return Path(cache_root()) / "native"


def _compiler() -> str | None:
    for name in (os.environ.get("CXX"), "g++", "c++", "clang++"):
        if name and shutil.which(name):
            return name
    return None


def _cpu_fingerprint() -> str:
    """CPU model and feature flags (Linux), so that ``-march=native`` builds are per CPU kind."""
    try:
        with open("/proc/cpuinfo") as fh:
            lines = [ln for ln in fh if ln.startswith(("model name", "flags"))]
        return "".join(sorted(set(lines)))
    except OSError:
        return platform.processor() or platform.machine()


def _jaxlib_dir() -> Path:
    """jaxlib's folder (its FFI headers are in ``include/``), found without importing it."""
    import importlib.util

    spec = importlib.util.find_spec("jaxlib")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("jaxlib is not installed")
    return Path(list(spec.submodule_search_locations)[0])


def library_path() -> Path:
    """The cached shared library for these sources, flags, jaxlib version and CPU."""
    key = hashlib.sha256()
    for source in (*SOURCES, *HEADERS):
        key.update(source.read_bytes())
    version = _jaxlib_dir() / "version.py"  # the jaxlib version, as text (no import)
    key.update(version.read_bytes() if version.exists() else b"")
    for part in (platform.machine(), _cpu_fingerprint(), " ".join(flags())):
        key.update(part.encode())
    return cache_dir() / f"ei_sim_native-{key.hexdigest()[:16]}.so"


def build() -> Path:
    """Compile the kernels into the cache (atomically) unless they are there; return the path.

    One process builds, the others wait for it: an exclusive ``flock`` on
    ``<library>.lock`` is held while building (the Dask workers of a grid starting on an
    empty cache build once, not once each). The sources are compiled in parallel, one
    compiler per source file, then linked."""
    path = library_path()
    if path.exists():
        return path
    compiler = _compiler()
    if compiler is None:
        raise RuntimeError("no C++ compiler found (set CXX or install g++)")
    path.parent.mkdir(parents=True, exist_ok=True)
    with _build_lock(path):
        if path.exists():  # built by the process that held the lock
            return path
        with tempfile.TemporaryDirectory(dir=path.parent, prefix=".build-") as work:
            tmp = Path(work) / path.name
            wanted = flags()
            portable = tuple(f for f in wanted if f != "-march=native")
            for these in (wanted, portable):
                error = _compile(compiler, these, Path(work), tmp)
                if error is None:
                    break
            if error is not None:
                raise RuntimeError(f"compiling the native kernels failed: {error}")
            os.replace(tmp, path)
    return path


def _compile(compiler: str, flags, work: Path, out: Path) -> str | None:
    """Compile :data:`SOURCES` with ``flags`` (each source by its own compiler process, all at
    once) and link them into ``out``; the compiler's last error line, or None."""
    include = f"-I{_jaxlib_dir() / 'include'}"
    objects = [work / f"{src.stem}.o" for src in SOURCES]
    procs = [subprocess.Popen([compiler, *flags, include, "-c", str(src), "-o", str(obj)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
             for src, obj in zip(SOURCES, objects, strict=True)]  # fmt: skip
    errors = [proc.communicate()[1] for proc in procs]
    for proc, err in zip(procs, errors, strict=True):
        if proc.returncode != 0:
            return (err.strip().splitlines() or ["unknown error"])[-1]
    link = subprocess.run([compiler, *flags, *map(str, objects), "-o", str(out)],
                          capture_output=True, text=True)  # fmt: skip
    if link.returncode != 0:
        return (link.stderr.strip().splitlines() or ["unknown error"])[-1]
    return None


@contextlib.contextmanager
def _build_lock(path: Path):
    """Hold an exclusive ``flock`` on ``<path>.lock`` (no lock where flock is missing)."""
    try:
        import fcntl
    except ImportError:  # not POSIX: every process builds for itself, as before
        yield
        return
    with open(path.with_suffix(".lock"), "a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX)
        except OSError:  # a file system without flock
            pass
        yield


def disabled() -> bool:
    """True when ``EI_SIM_NATIVE`` is 0/false/no/off."""
    return os.environ.get("EI_SIM_NATIVE", "1").strip().lower() in ("0", "false", "no", "off")


@functools.cache
def library() -> ctypes.CDLL | None:
    """Build (once) and load the library with ctypes, without JAX; None (with a reason) if
    that fails or the kernels are disabled."""
    if disabled():
        _reason.append("disabled by EI_SIM_NATIVE")
        return None
    try:
        return ctypes.cdll.LoadLibrary(str(build()))
    except (OSError, RuntimeError) as err:
        _reason.append(str(err))
        return None


@functools.cache
def available() -> bool:
    """Build (once), load and register the kernels with JAX; False (with a reason) if that
    fails."""
    library_ = library()
    if library_ is None:
        return False
    import jax

    try:
        for target, symbol in TARGETS.items():
            handler = getattr(library_, symbol)
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
        raise RuntimeError(f"the native kernels are unavailable: {unavailable_reason()}")


def event_matmul(spikes: jax.Array, w: jax.Array) -> jax.Array:
    """``spikes @ w`` by the native kernel: spikes (..., B, n_pre), w (..., n_pre, n_post)."""
    import jax

    _require()
    dtype = jax.numpy.result_type(spikes, w)
    out = jax.ShapeDtypeStruct(spikes.shape[:-1] + w.shape[-1:], dtype)
    call = jax.ffi.ffi_call("ei_sim_event_matmul", out, vmap_method="expand_dims")
    return call(spikes.astype(dtype), w.astype(dtype))


def event_outer(spikes: jax.Array, ct: jax.Array) -> jax.Array:
    """``spikes^T @ ct`` by the native kernel: spikes (..., B, n_pre), ct (..., B, n_post)."""
    import jax

    _require()
    dtype = jax.numpy.result_type(spikes, ct)
    lead = np.broadcast_shapes(spikes.shape[:-2], ct.shape[:-2])
    out = jax.ShapeDtypeStruct(lead + (spikes.shape[-1], ct.shape[-1]), dtype)
    call = jax.ffi.ffi_call("ei_sim_event_outer", out, vmap_method="expand_dims")
    return call(spikes.astype(dtype), ct.astype(dtype))


def sparse_event_matmul(spikes, indptr, cols, data, n_post: int) -> jax.Array:
    """``spikes @ W`` for W in compressed sparse rows (``indptr``, ``cols``, ``data``).

    spikes (..., B, n_pre); indptr (n_pre + 1,) and cols (nnz,) int32; data (..., nnz).
    Work is proportional to the number of spikes times the fan-out.
    """
    import jax

    _require()
    dtype = jax.numpy.result_type(spikes, data)
    out = jax.ShapeDtypeStruct(spikes.shape[:-1] + (n_post,), dtype)
    call = jax.ffi.ffi_call("ei_sim_sparse_event_matmul", out, vmap_method="expand_dims")
    return call(spikes.astype(dtype), indptr, cols, data.astype(dtype))


SURROGATE_CODES = {"fast_sigmoid": 0, "arctan": 1}


def _cell_attrs(cell, config) -> dict:
    """The constants of one population's update as FFI attributes (float64 / int32)."""
    values = dict(
        g_leak_uS=cell.g_leak_uS, c_nF=cell.c_nF, e_leak_mV=config.e_leak_mV,
        e_exc_mV=config.e_exc_mV, e_inh_mV=config.e_inh_mV, dt_ms=config.dt_ms,
        v_th_mV=config.v_th_mV, v_reset_mV=config.v_reset_mV, v_floor_mV=config.v_floor_mV,
    )  # fmt: skip
    attrs = {name: np.float64(value) for name, value in values.items()}
    attrs["n_ref"] = np.int32(config.refractory_steps(cell))
    return attrs


def population_forward(v_mV, g_exc, g_inh, refractory_steps, cell, config):
    """Membrane and spike update of one population: ``(v', ref', spikes)`` (see ``population.cc``).

    ``v_mV``, ``g_exc``, ``g_inh`` float32/float64 of one shape, ``refractory_steps`` int32.
    """
    import jax

    _require()
    out = (jax.ShapeDtypeStruct(v_mV.shape, v_mV.dtype),
           jax.ShapeDtypeStruct(v_mV.shape, np.int32),
           jax.ShapeDtypeStruct(v_mV.shape, v_mV.dtype))  # fmt: skip
    call = jax.ffi.ffi_call("ei_sim_population_forward", out, vmap_method="broadcast_all")
    dtype = v_mV.dtype
    return call(v_mV, g_exc.astype(dtype), g_inh.astype(dtype),
                refractory_steps.astype(np.int32), **_cell_attrs(cell, config))  # fmt: skip


def population_adjoint(v_mV, g_exc, g_inh, refractory_steps, ct_v_new, ct_spikes, cell, config):
    """Cotangents ``(dL/dV, dL/dg_exc, dL/dg_inh)`` of :func:`population_forward`'s inputs.

    From the step's inputs and the cotangents of ``v'`` and ``spikes`` (the surrogate, its
    slope and the gradient damping come from ``config``).
    """
    import jax

    _require()
    dtype = v_mV.dtype
    out = tuple(jax.ShapeDtypeStruct(v_mV.shape, dtype) for _ in range(3))
    call = jax.ffi.ffi_call("ei_sim_population_adjoint", out, vmap_method="broadcast_all")
    operands = (v_mV, g_exc, g_inh, refractory_steps, ct_v_new, ct_spikes)
    operands = tuple(x.astype(np.int32 if k == 3 else dtype) for k, x in enumerate(operands))
    return call(
        *operands,
        **_cell_attrs(cell, config),
        surrogate=np.int32(SURROGATE_CODES[config.surrogate]),
        slope_per_mV=np.float64(config.surrogate_slope_per_mV),
        damping=np.float64(config.grad_damping),
    )
