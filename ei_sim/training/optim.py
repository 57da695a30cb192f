"""The optimiser every trainer uses, built from optax's own transforms.

    apply_if_finite(chain(clip_by_global_norm(c), adam(lr), masked(keep_params_nonnegative, M)))

* **Dale's law.** Every weight block that obeys it stays non-negative (inhibition is carried
  by the reversal potential or by the sign in the model equations, never by a weight):
  ``optax.keep_params_nonnegative`` turns an update into one landing on ``w >= 0``
  (``w + u < 0`` becomes ``u = -w``, i.e. ``w <- max(w + u, 0)``), restricted by
  ``optax.masked`` to the blocks of the boolean pytree ``M`` (all blocks when ``M`` is True).
  The projection ``P(w) = max(w, 0)`` is idempotent and non-expansive
  (``|P(a) - P(b)| <= |a - b|`` elementwise).
* **Non-finite steps.** ``optax.apply_if_finite`` skips a step whose gradient has a NaN or
  an infinity: the update is zero and the inner (Adam) state unchanged. It never gives up
  (:data:`NEVER_GIVE_UP` consecutive skips), as the trainers always did; its state counts
  the skipped steps (``total_notfinite``), and the trainers report them per epoch
  (``skipped_steps``).

Run files written before the chain was wrapped in ``apply_if_finite`` hold the inner state
only; :func:`with_skip_counters` turns such a state into today's layout (counters at 0).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

# apply_if_finite applies an update anyway after this many consecutive non-finite ones; its
# int32 counter saturates here, so the trainers skip every non-finite step, as before.
NEVER_GIVE_UP = 2**31 - 1


def project_non_negative(tree, mask=None):
    """``max(w, 0)`` on every leaf (or on the leaves where the boolean pytree ``mask`` is True):
    where :func:`dale_adam`'s updates land."""
    if mask is None:
        return jax.tree.map(lambda w: jnp.maximum(w, 0.0), tree)
    return jax.tree.map(lambda w, m: jnp.maximum(w, 0.0) if m else w, tree, mask)


def dale_adam(learning_rate: float, clip_norm: float | None = 1.0, dale=True):
    """Global-norm clipping, Adam, then Dale's law, the whole step skipped when not finite.

    ``dale``: True (every leaf stays >= 0), False (no constraint, an ablation), or a boolean
    pytree naming the leaves that obey it (e.g. :data:`ei_sim.rate.network.DALE_MASK`)."""
    parts = [] if clip_norm is None else [optax.clip_by_global_norm(clip_norm)]
    parts.append(optax.adam(learning_rate))
    if dale is True:
        parts.append(optax.keep_params_nonnegative())
    elif dale is not False:
        parts.append(optax.masked(optax.keep_params_nonnegative(), dale))
    return optax.apply_if_finite(optax.chain(*parts), NEVER_GIVE_UP)


def adam_with_dale(learning_rate: float, clip_norm: float | None = 1.0, mask=None):
    """:func:`dale_adam` with every leaf non-negative (``mask=None``) or those of ``mask``."""
    return dale_adam(learning_rate, clip_norm, True if mask is None else mask)


def skipped_steps(opt_state) -> int:
    """Steps skipped as non-finite since the state was made (``apply_if_finite``'s count;
    the sum over a stacking axis of cells)."""
    if not isinstance(opt_state, optax.ApplyIfFiniteState):
        return 0
    return int(jnp.sum(opt_state.total_notfinite))


def with_skip_counters(template, inner_state):
    """``template`` (an ``apply_if_finite`` state, e.g. ``optimizer.init(params)``) holding
    ``inner_state``: a state stored before the chain counted skipped steps, counters at 0."""
    return template._replace(inner_state=inner_state)


def all_finite(tree) -> jax.Array:
    """True when every leaf of ``tree`` is finite: what ``apply_if_finite`` tests of a
    gradient, reported by the trainers' steps."""
    leaves = jax.tree.leaves(tree)
    if not leaves:
        return jnp.asarray(True)
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in leaves]))
