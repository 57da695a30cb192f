"""Sparse synaptic blocks in compressed sparse rows, built on the host (no JAX import).

A block ``W`` (n_pre, n_post) with few nonzeros per row (the Vogels-Abbott network: 2 %) is
stored as :class:`SparseBlock`: the nonzeros of presynaptic row ``i`` are ``data[k]`` at
postsynaptic column ``cols[k]`` for ``k`` in ``[indptr[i], indptr[i+1])`` (``rows[k] = i``
repeats the row index per entry). Its propagation (native and pure-JAX) and the joining of
blocks are :mod:`ei_sim.sim.sparse`, which also registers the class as a JAX pytree (``data``
and the pattern are leaves, ``shape`` static); this module holds what a preset needs to draw
a block with NumPy, so that the native run of ``ei-sim simulate`` starts without JAX.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class SparseBlock:
    indptr: object  # (n_pre + 1,) int32
    rows: object  # (nnz,) int32, presynaptic index of each entry
    cols: object  # (nnz,) int32, postsynaptic index of each entry
    data: object  # (..., nnz) weights
    shape: tuple[int, int] = field(default=(0, 0))

    @property
    def nnz(self) -> int:
        return int(self.cols.shape[-1])

    @property
    def dtype(self):
        return self.data.dtype

    def todense(self):
        """The block as a dense (n_pre, n_post) JAX array."""
        import jax.numpy as jnp

        out = jnp.zeros(self.data.shape[:-1] + self.shape, self.data.dtype)
        return out.at[..., self.rows, self.cols].add(self.data)

    @classmethod
    def from_dense(cls, w) -> SparseBlock:
        """Keep the nonzero entries of a dense block (on the host), row by row."""
        import jax.numpy as jnp

        w = np.asarray(w)
        if w.ndim != 2:
            raise ValueError(f"a sparse block is built from a 2-D array, got shape {w.shape}")
        rows, cols = np.nonzero(w)  # row-major order: sorted by row
        indptr = np.zeros(w.shape[0] + 1, np.int64)
        np.cumsum(np.bincount(rows, minlength=w.shape[0]), out=indptr[1:])
        as_i32 = lambda a: jnp.asarray(a.astype(np.int32))  # noqa: E731
        return cls(as_i32(indptr), as_i32(rows), as_i32(cols), jnp.asarray(w[rows, cols]),
                   (int(w.shape[0]), int(w.shape[1])))  # fmt: skip


_registered: list[bool] = []


def register_pytree() -> None:
    """Make :class:`SparseBlock` a JAX pytree (once; :mod:`ei_sim.sim.sparse` calls it on
    import, and this module does when JAX is already imported)."""
    if _registered:
        return
    import jax

    jax.tree_util.register_dataclass(
        SparseBlock, data_fields=["indptr", "rows", "cols", "data"], meta_fields=["shape"]
    )
    _registered.append(True)


if "jax" in sys.modules:
    register_pytree()


def bernoulli_sparse(rng: np.random.Generator, shape, p: float, weight: float) -> SparseBlock:
    """A block with every entry present independently with probability ``p`` (value
    ``weight``), drawn directly in compressed form.

    In row-major order the gaps between consecutive present entries are Geometric(p) (support
    1, 2, ...), so the positions are cumulative sums of geometric draws: work and memory are
    proportional to the number of synapses, not to ``n_pre x n_post``. The arrays are NumPy
    arrays (handed to the device by the first compiled program that uses them).
    """
    n_pre, n_post = (int(n) for n in shape)
    if not 0.0 < p <= 1.0:
        raise ValueError(f"connection probability must lie in (0, 1], got {p}")
    size = n_pre * n_post
    expected = size * p
    parts, last = [], -1
    while last < size - 1:
        gaps = rng.geometric(p, int(expected + 8.0 * np.sqrt(expected) + 64))
        positions = last + np.cumsum(gaps)
        parts.append(positions)
        last = int(positions[-1])
    positions = np.concatenate(parts)
    positions = positions[positions < size]
    rows, cols = np.divmod(positions, n_post)
    indptr = np.zeros(n_pre + 1, np.int64)
    np.cumsum(np.bincount(rows, minlength=n_pre), out=indptr[1:])
    data = np.full(positions.size, weight, np.float32)
    i32 = np.int32  # host arrays: a compiled program that takes the block transfers them
    return SparseBlock(indptr.astype(i32), rows.astype(i32), cols.astype(i32), data,
                       (n_pre, n_post))  # fmt: skip


def host_dense(block: SparseBlock) -> np.ndarray:
    """The block as a dense NumPy array, built on the host (no compiled program)."""
    out = np.zeros(block.shape, np.asarray(block.data).dtype)
    out[np.asarray(block.rows), np.asarray(block.cols)] = np.asarray(block.data)
    return out
