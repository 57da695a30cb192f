"""JAX's default random keys computed with NumPy: ``PRNGKey(seed)`` and ``split``.

:func:`split_seed` returns what ``jax.random.split(jax.random.PRNGKey(seed))`` returns with
JAX's default generator (threefry2x32, "partitionable" splitting, the default of this JAX),
without importing JAX, so that a run whose network is drawn with NumPy from these keys (the
Vogels-Abbott preset) starts without JAX and draws the same network (and no program is
compiled to split them). Where another generator or splitting rule is configured (JAX's
``jax_default_prng_impl``, ``jax_threefry_partitionable``, or their environment variables
before JAX is imported), JAX itself is asked.

Threefry-2x32 (Salmon, Moraes, Dror and Shaw, "Parallel random numbers: as easy as 1, 2, 3",
SC 2011): 20 rounds of add-rotate-xor on two 32-bit words with the key injected every four
rounds; ``tests/test_hostrun.py`` checks it against JAX.
"""

from __future__ import annotations

import os
import sys

import numpy as np

_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))
_PARITY = np.uint32(0x1BD11BDA)


def _rotl(x: np.ndarray, r: int) -> np.ndarray:
    return (x << np.uint32(r)) | (x >> np.uint32(32 - r))


def threefry2x32(key: tuple[int, int], x0, x1) -> tuple[np.ndarray, np.ndarray]:
    """The Threefry-2x32 block function (20 rounds) of counters ``(x0, x1)`` under ``key``."""
    ks = (np.uint32(key[0]), np.uint32(key[1]))
    ks = (*ks, ks[0] ^ ks[1] ^ _PARITY)
    x0 = np.asarray(x0, np.uint32) + ks[0]
    x1 = np.asarray(x1, np.uint32) + ks[1]
    with np.errstate(over="ignore"):
        for block in range(5):
            for r in _ROTATIONS[block % 2]:
                x0 = x0 + x1
                x1 = _rotl(x1, r) ^ x0
            x0 = x0 + ks[(block + 1) % 3]
            x1 = x1 + ks[(block + 2) % 3] + np.uint32(block + 1)
    return x0, x1


def _numpy_applies() -> bool:
    """Whether JAX's configured generator is the default one computed here."""
    jax = sys.modules.get("jax")
    if jax is not None and hasattr(jax, "config"):
        impl = str(jax.config.jax_default_prng_impl)
        partitionable = bool(jax.config.jax_threefry_partitionable)
    else:
        impl = os.environ.get("JAX_DEFAULT_PRNG_IMPL", "threefry2x32").strip().lower()
        flag = os.environ.get("JAX_THREEFRY_PARTITIONABLE", "1").strip().lower()
        partitionable = flag in ("1", "true", "yes", "on", "t", "y")
    return impl == "threefry2x32" and partitionable


def split_seed(seed: int) -> np.ndarray:
    """``jax.random.split(jax.random.PRNGKey(seed))`` as a (2, 2) uint32 array."""
    seed = int(seed)
    if not _numpy_applies() or not 0 <= seed < 2**32:
        return np.asarray(_split_jitted()(seed))
    bits0, bits1 = threefry2x32((0, seed), np.zeros(2, np.uint32), np.arange(2, dtype=np.uint32))
    return np.stack([bits0, bits1], axis=-1)


_JITTED: list = []


def _split_jitted():
    if not _JITTED:
        import jax

        _JITTED.append(jax.jit(lambda seed: jax.random.split(jax.random.PRNGKey(seed))))
    return _JITTED[0]
