"""Sparse synaptic blocks (compressed sparse rows) and their event-driven propagation.

The block class and its host-side draws are :mod:`ei_sim.sim.blocks` (no JAX import); this
module registers it as a JAX pytree and propagates spikes through it. A block ``W`` (n_pre,
n_post) with few nonzeros per row (the Vogels-Abbott network: 2 %) is stored as
:class:`SparseBlock`: the nonzeros of presynaptic row ``i`` are ``data[k]`` at postsynaptic
column ``cols[k]`` for ``k`` in ``[indptr[i], indptr[i+1])`` (``rows[k] = i`` repeats the row
index per entry). Any :class:`ei_sim.sim.engine.Weights` field may hold one instead of a dense
array. Propagation of one step's spikes::

    g[b, cols[k]] += s[b, rows[k]] * data[k]        for every k

costs (spikes x fan-out) with the native kernel, O(B nnz) on the pure-JAX path. ``data`` is
differentiable (and may be vmapped); the pattern is static per block.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from ei_sim.sim import native
from ei_sim.sim.blocks import SparseBlock, bernoulli_sparse, host_dense, register_pytree
from ei_sim.sim.propagate import sum_tangents

__all__ = ["SparseBlock", "bernoulli_sparse", "dense", "host_dense", "hstack",
           "sparse_propagate"]  # fmt: skip


register_pytree()


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
