"""Training: the recipes (:mod:`~ei_sim.training.config`), the one loop every model family
runs (:mod:`~ei_sim.training.loop`: epochs, evaluation, best epoch, checkpoints, non-finite
steps and weights, progress, an optional stacking axis over cells), the spiking classifier's
objective, optimiser, evaluation and trainer (:mod:`~ei_sim.training.objective`,
:mod:`~ei_sim.training.optim`, :mod:`~ei_sim.training.evaluate`,
:mod:`~ei_sim.training.spiking`, with the fused native path in
:mod:`~ei_sim.training.fused`) and the reading back of stored runs
(:mod:`~ei_sim.training.stored`). The rate model's trainer (:mod:`ei_sim.rate.train`) runs
the same loop.
"""
