"""Data parallelism for training: the batch split across devices (one CPU device per core).

A BPTT step of the spiking network is a long chain of small per-step operations (2,000 steps,
each a few dozen kernels on (B, N) arrays). XLA:CPU runs such a chain mostly on one thread and
only the larger products use the others. Splitting the batch into one part per device
(``jax.shard_map``) runs one chain per core instead; on CPU each core is a device once
``jax_num_cpu_devices`` is set (:func:`use_cpu_cores`, which must run before JAX's first
operation). The simulation of every part is the unchanged engine; the losses' batch means and
the weight gradients are exact reductions over the parts (the gradient of a replicated input
of ``shard_map`` is summed over devices), so results equal the single-device ones up to float
summation order. The same code splits a batch across GPUs.

Input events are host-built lists of (sample, channel) pairs of the whole batch; every device
receives them all and keeps its own samples (others become padding, which the engine drops),
so no host-side work depends on the device count.
"""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from ei_sim.sim.engine import simulate

AXIS = "batch"


def cpu_cores() -> int:
    """Cores this process may run on (its CPU affinity, e.g. a SLURM allocation)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def use_cpu_cores(n: int | None = None) -> int:
    """Expose ``n`` CPU devices (default: one per core) if JAX has not started yet.

    Returns the number of CPU devices JAX has afterwards; when JAX's backend is already
    initialised (some JAX operation has run), the count cannot change and is returned as is.
    """
    n = cpu_cores() if n is None else n
    if n < 1:
        raise ValueError(f"the number of CPU devices must be >= 1, got {n}")
    try:
        jax.config.update("jax_num_cpu_devices", n)
    except RuntimeError:  # backend already initialised: keep what there is
        pass
    return len(jax.devices("cpu"))


def parts_for(batch: int, available: int, requested: int = 0) -> int:
    """How many parts a batch is split into: the largest divisor of ``batch`` that is at most
    ``requested`` (0: all ``available`` devices) and at most ``available``."""
    if requested < 0:
        raise ValueError(f"devices must be >= 0 (0 = all), got {requested}")
    limit = min(available, requested or available, batch)
    return max(d for d in range(1, limit + 1) if batch % d == 0)


def batch_mesh(batch: int, requested: int = 0) -> Mesh | None:
    """A one-axis mesh over the devices that split ``batch``, or None for a single device."""
    devices = jax.devices()
    n = parts_for(batch, len(devices), requested)
    return None if n == 1 else Mesh(np.array(devices[:n]), (AXIS,))


def replicate(tree, mesh: Mesh | None):
    """``tree`` placed on every device of ``mesh`` (as the train step returns it, so that the
    first and later steps share one compilation); unchanged without a mesh."""
    if mesh is None:
        return tree
    return jax.device_put(tree, NamedSharding(mesh, PartitionSpec()))


def _local_events(sample: jax.Array, part: int) -> jax.Array:
    """This device's sample indices: its own samples renumbered from 0, the rest padding."""
    local = sample - jax.lax.axis_index(AXIS) * part
    return jnp.where((local >= 0) & (local < part), local, part)


def split_batch(part_fn, weights, state0, events, mesh: Mesh, out_specs):
    """Run ``part_fn(weights, state0_part, (local_sample, channel))`` on every device of
    ``mesh`` with the batch split: ``weights`` replicated, ``state0`` (every leaf batch-first)
    split, ``events`` (the whole batch's input event lists) renumbered per device."""

    def part(w, s0, sample, channel):
        local = _local_events(sample, s0.e.v_mV.shape[0])
        return part_fn(w, s0, (local, channel))

    shared = PartitionSpec()
    # check_vma=False: the native kernels are FFI calls, opaque to the varying-axes check;
    # every output is per-device (batch-sharded), which is what out_specs declares.
    split = jax.shard_map(
        part, mesh=mesh, in_specs=(shared, PartitionSpec(AXIS), shared, shared),
        out_specs=out_specs, check_vma=False,
    )  # fmt: skip
    sample, channel = events
    return split(weights, state0, jnp.asarray(sample), jnp.asarray(channel))


def simulate_split(weights, state0, events, config, mesh: Mesh, checkpoint_every=None, record=()):
    """:func:`ei_sim.sim.engine.simulate` with the batch split over ``mesh``; returns the final
    accumulators (spike counts and summed readout) and the records (time first), both
    batch-sharded.

    ``weights`` are replicated; ``state0`` (every leaf batch-first) is split; ``events`` are
    the whole batch's input event lists.
    """

    def part(w, s0, local_events):
        final, rec = simulate(w, s0, local_events, config, record=record,
                              checkpoint_every=checkpoint_every)  # fmt: skip
        return final.acc, rec

    specs = (PartitionSpec(AXIS), PartitionSpec(None, AXIS))
    return split_batch(part, weights, state0, events, mesh, specs)
