"""JAX's persistent compilation cache, kept in the ei-sim cache directory.

:func:`enable` (through :func:`enable_on_import` in every ``ei-sim`` command) points JAX at
``$EI_SIM_CACHE_DIR/xla/<cpu>`` (default ``~/.cache/ei_sim``; one folder per CPU kind, as for
the native kernels, since XLA:CPU compiles for the CPU at hand) and caches every program,
however quickly it compiled, so a second run of the same command loads its programs instead
of compiling them. ``EI_SIM_COMPILE_CACHE=0`` turns it off.

Entries are written to a temporary file and renamed into place (:class:`AtomicFileCache`),
so processes sharing the folder (Dask workers, parallel commands) see either no entry or a
whole one, and a process killed while writing leaves no truncated entry behind. JAX's own
file cache writes in place; ours replaces it through JAX's cache hook (if that hook moves in
a later JAX, :func:`enable` falls back to JAX's file cache).

:class:`CompileCounter` counts the programs a process needed and how many of them were
actually compiled (the rest came from the cache), from JAX's monitoring events.

The module imports JAX only in :func:`enable` and :class:`CompileCounter`. Commands call
:func:`enable_on_import`, which turns the cache on when JAX is first imported: a process
that never compiles (a native ``ei-sim simulate`` run, the main process of a grid on Dask
workers) starts without importing JAX.
"""

from __future__ import annotations

import hashlib
import importlib.abc
import importlib.util
import os
import sys
import threading
from pathlib import Path

from ei_sim.data.cache import write_entry
from ei_sim.sim import native

ENV_SWITCH = "EI_SIM_COMPILE_CACHE"
_SUFFIX = "-cache"  # the file names of JAX's own file cache, so either can read the other's


def cache_path() -> Path:
    """``<ei-sim cache>/xla/<hash of the CPU model and features>``."""
    cpu = hashlib.sha256(native._cpu_fingerprint().encode()).hexdigest()[:12]
    return native.cache_dir().parent / "xla" / cpu


def disabled() -> bool:
    return os.environ.get(ENV_SWITCH, "1").strip().lower() in ("0", "false", "no", "off")


class AtomicFileCache:
    """A folder of compiled programs, one file per key, each written atomically (JAX's cache
    interface, ``get`` and ``put``, which JAX calls on the object it is given)."""

    def __init__(self, path: Path):
        self._path = Path(path)
        self._path.mkdir(parents=True, exist_ok=True)

    def get(self, key: str) -> bytes | None:
        try:
            return (self._path / f"{key}{_SUFFIX}").read_bytes()
        except FileNotFoundError:
            return None

    def put(self, key: str, value: bytes) -> None:
        target = self._path / f"{key}{_SUFFIX}"
        if not target.exists():  # a full or read-only folder: the program is just not cached
            write_entry(str(target), lambda fh: fh.write(value))

    def clear(self) -> None:
        for entry in self._path.glob(f"*{_SUFFIX}"):
            entry.unlink(missing_ok=True)


def _install(cache: AtomicFileCache) -> bool:
    """Make JAX use ``cache`` (its private hook); False if the hook is not where we expect."""
    try:
        from jax._src import compilation_cache as jax_cache
        from jax._src.compilation_cache_interface import CacheInterface  # noqa: F401
    except ImportError:
        return False
    names = ("_cache", "_cache_initialized", "_cache_initialized_mutex")
    if not all(hasattr(jax_cache, name) for name in names):
        return False
    with jax_cache._cache_initialized_mutex:
        jax_cache._cache = cache
        jax_cache._cache_initialized = True
    return True


_enabled: list[Path] = []


def enable() -> Path | None:
    """Turn the persistent cache on (once per process); return its folder, or None if off.

    A cache folder the user gave JAX (``JAX_COMPILATION_CACHE_DIR``) is left as it is."""
    if disabled():
        return None
    if _enabled:
        return _enabled[0]
    import jax

    if jax.config.jax_compilation_cache_dir:
        _enabled.append(Path(jax.config.jax_compilation_cache_dir))
        return _enabled[0]
    path = cache_path()
    try:
        cache = AtomicFileCache(path)
    except OSError:
        return None  # an unwritable cache folder: compile as without a cache
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)
    _install(cache)
    _enabled.append(path)
    return path


class _EnableAfterJaxImport(importlib.abc.MetaPathFinder):
    """An import hook that runs :func:`enable` right after JAX's module has executed (the
    first time anything imports ``jax``), then leaves ``sys.meta_path``. Looking JAX up
    without importing it (``importlib.util.find_spec``) leaves the hook in place."""

    def __init__(self):
        self._local = threading.local()  # this thread is looking JAX up through the finders

    def find_spec(self, name, path=None, target=None):
        if name != "jax" or getattr(self._local, "looking", False):
            return None
        self._local.looking = True
        try:
            spec = importlib.util.find_spec(name)  # the finders after this one
        finally:
            self._local.looking = False
        if spec is None or not hasattr(spec.loader, "exec_module"):
            return spec
        run_module, finder = spec.loader.exec_module, self

        def exec_module(module):
            if finder in sys.meta_path:
                sys.meta_path.remove(finder)
            run_module(module)
            try:
                enable()
            except Exception as err:  # e.g. a JAX without one of the options: no cache
                print(f"ei-sim: compilation cache off ({type(err).__name__}: {err})",
                      file=sys.stderr)  # fmt: skip

        spec.loader.exec_module = exec_module
        return spec


def enable_on_import() -> None:
    """:func:`enable` now if JAX is already imported, else when it first is."""
    if sys.modules.get("jax") is not None:
        enable()
    elif not disabled() and not any(isinstance(f, _EnableAfterJaxImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _EnableAfterJaxImport())


class CompileCounter:
    """Counts, from now on, the programs this process needed and those actually compiled.

    ``programs``: every program JAX prepared (compiled or loaded from the persistent cache);
    ``cache_hits``: those loaded; ``compiled = programs - cache_hits``; ``seconds``: their
    total preparation time. JAX's listeners cannot be removed: make one counter per process.
    """

    PROGRAM_EVENT = "/jax/core/compile/backend_compile_duration"
    HIT_EVENT = "/jax/compilation_cache/cache_hits"

    def __init__(self):
        import jax

        self.programs, self.cache_hits, self.seconds = 0, 0, 0.0
        jax.monitoring.register_event_duration_secs_listener(self._on_duration)
        jax.monitoring.register_event_listener(self._on_event)

    def _on_duration(self, event: str, duration: float, **_) -> None:
        if event == self.PROGRAM_EVENT:
            self.programs += 1
            self.seconds += duration

    def _on_event(self, event: str, **_) -> None:
        if event == self.HIT_EVENT:
            self.cache_hits += 1

    @property
    def compiled(self) -> int:
        return self.programs - self.cache_hits

    def as_dict(self) -> dict:
        return {"programs": self.programs, "compiled": self.compiled,
                "cache_hits": self.cache_hits, "compile_s": self.seconds}  # fmt: skip
