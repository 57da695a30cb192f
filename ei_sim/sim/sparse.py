"""Sparse synaptic blocks (compressed sparse rows) and their event-driven propagation.

A block ``W`` (n_pre, n_post) with few nonzeros per row (the Vogels-Abbott network: 2 %)
is stored as :class:`SparseBlock`: the nonzeros of presynaptic row ``i`` are
``data[k]`` at postsynaptic column ``cols[k]`` for ``k`` in ``[indptr[i], indptr[i+1])``
(``rows[k] = i`` repeats the row index per entry). Any :class:`ei_sim.sim.engine.Weights` field
may hold one instead of a dense array. Propagation of one step's spikes::

    g[b, cols[k]] += s[b, rows[k]] * data[k]        for every k

costs (spikes x fan-out) with the native kernel, O(B nnz) on the pure-JAX path. ``data`` is
differentiable (and may be vmapped); the pattern is static per block.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from ei_sim.sim import native
from ei_sim.sim.propagate import sum_tangents


@partial(
    jax.tree_util.register_dataclass,
    data_fields=["indptr", "rows", "cols", "data"],
    meta_fields=["shape"],
)
@dataclass(frozen=True)
class SparseBlock:
    indptr: jax.Array  # (n_pre + 1,) int32
    rows: jax.Array  # (nnz,) int32, presynaptic index of each entry
    cols: jax.Array  # (nnz,) int32, postsynaptic index of each entry
    data: jax.Array  # (..., nnz) weights
    shape: tuple[int, int] = field(default=(0, 0))

    @property
    def nnz(self) -> int:
        return int(self.cols.shape[-1])

    @property
    def dtype(self):
        return self.data.dtype

    def todense(self) -> jax.Array:
        """The block as a dense (n_pre, n_post) array."""
        out = jnp.zeros(self.data.shape[:-1] + self.shape, self.data.dtype)
        return out.at[..., self.rows, self.cols].add(self.data)

    @classmethod
    def from_dense(cls, w) -> SparseBlock:
        """Keep the nonzero entries of a dense block (on the host), row by row."""
        w = np.asarray(w)
        if w.ndim != 2:
            raise ValueError(f"a sparse block is built from a 2-D array, got shape {w.shape}")
        rows, cols = np.nonzero(w)  # row-major order: sorted by row
        indptr = np.zeros(w.shape[0] + 1, np.int64)
        np.cumsum(np.bincount(rows, minlength=w.shape[0]), out=indptr[1:])
        as_i32 = lambda a: jnp.asarray(a.astype(np.int32))  # noqa: E731
        return cls(as_i32(indptr), as_i32(rows), as_i32(cols), jnp.asarray(w[rows, cols]),
                   (int(w.shape[0]), int(w.shape[1])))  # fmt: skip


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


def hstack(blocks: list[SparseBlock]) -> SparseBlock:
    """Join blocks with the same presynaptic rows column-wise: ``[A | B | ...]``.

    Entries stay grouped by row, block by block within a row, each block's order kept (what a
    stable sort of the row indices gives). Entry ``k`` of block ``j``, in row ``r = rows[k]``,
    goes to ``indptr[r] + sum_{i<j} len_i(r) + (k - indptr_j[r])`` (``indptr`` of the joined
    block, ``len_i(r)`` the length of row ``r`` in block ``i``): O(nnz) gathers and one
    scatter, no sort. It depends on weights only, so inside a scanned step XLA computes it once,
    outside the loop (once per call of a compiled chunk).
    """
    if len(blocks) == 1:
        return blocks[0]
    n_pre = blocks[0].shape[0]
    if any(b.shape[0] != n_pre for b in blocks):
        raise ValueError("hstack needs blocks with the same number of presynaptic rows")
    offsets = np.cumsum([0] + [b.shape[1] for b in blocks[:-1]])
    indptr = sum(b.indptr for b in blocks)
    dest, base = [], indptr[:-1]
    for b in blocks:
        within = jnp.arange(b.nnz, dtype=b.indptr.dtype) - jnp.take(b.indptr, b.rows)
        dest.append(jnp.take(base, b.rows) + within)
        base = base + jnp.diff(b.indptr)
    order = jnp.zeros(sum(b.nnz for b in blocks), jnp.int32)
    order = order.at[jnp.concatenate(dest)].set(
        jnp.arange(order.shape[0], dtype=jnp.int32), unique_indices=True
    )
    rows = jnp.concatenate([b.rows for b in blocks])
    cols = jnp.concatenate([b.cols + int(o) for b, o in zip(blocks, offsets, strict=True)])
    data = jnp.concatenate([b.data for b in blocks], axis=-1)
    n_post = sum(b.shape[1] for b in blocks)
    return SparseBlock(indptr, rows[order], cols[order], jnp.take(data, order, axis=-1),
                       (n_pre, int(n_post)))  # fmt: skip


def dense(w):
    """A dense array for a dense or sparse block (None stays None)."""
    return w.todense() if isinstance(w, SparseBlock) else w


def _scatter(spikes, block: SparseBlock, data):
    """Pure JAX: ``out[b, cols[k]] += spikes[b, rows[k]] * data[k]``, O(B nnz)."""
    contrib = jnp.take(spikes, block.rows, axis=-1) * data
    out = jnp.zeros(spikes.shape[:-1] + (block.shape[1],), contrib.dtype)
    return out.at[..., block.cols].add(contrib)


def _forward(spikes, block: SparseBlock, method: str):
    if method == "native":
        return native.sparse_event_matmul(
            spikes, block.indptr, block.cols, block.data, block.shape[1]
        )
    return _scatter(spikes, block, block.data)


@partial(jax.custom_jvp, nondiff_argnums=(2,))
def sparse_propagate(spikes: jax.Array, block: SparseBlock, method: str = "native"):
    """``spikes @ W`` for a :class:`SparseBlock` ``W``; spikes (B, n_pre) -> (B, n_post).

    Differentiable in ``spikes`` (surrogate gradients) and in ``block.data``.
    """
    return _forward(spikes, block, method)


@partial(sparse_propagate.defjvp, symbolic_zeros=True)
def _sparse_jvp(method, primals, tangents):
    spikes, block = primals
    spikes_dot, block_dot = tangents
    out = _forward(spikes, block, method)
    terms = (
        (spikes_dot, lambda d: _scatter(d, block, block.data)),
        (getattr(block_dot, "data", None), lambda d: _scatter(spikes, block, d)),
    )
    return out, sum_tangents(out, terms)
