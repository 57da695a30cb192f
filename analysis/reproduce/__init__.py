"""``ei-sim reproduce``: the reference lab's experiments side by side with ei-sim's numbers.

:mod:`~ei_sim.analysis.reproduce.runner` runs one experiment at one scale
(:mod:`~ei_sim.analysis.reproduce.plans`) into a campaign folder; the experiments are
:mod:`~ei_sim.analysis.reproduce.experiments` and :mod:`~ei_sim.analysis.reproduce.grids`;
their stages (:mod:`~ei_sim.analysis.reproduce.stages`) are stored one at a time in a
reproduction store (:mod:`~ei_sim.analysis.reproduce.store`); the tables
(:mod:`~ei_sim.analysis.reproduce.table`) put the lab's numbers
(:mod:`~ei_sim.analysis.reproduce.reference`) beside ei-sim's.
"""
