"""``ei-sim reproduce``: the reference lab's experiments side by side with ei-sim's numbers.

An experiment (:mod:`~ei_sim.analysis.reproduce.experiment`: name, plans, run, result,
verdicts on the lab's claims) is defined by one module: :mod:`~ei_sim.analysis.reproduce.budgets`
(nb025), :mod:`~ei_sim.analysis.reproduce.coupling` (nb036 Figure 1),
:mod:`~ei_sim.analysis.reproduce.grids` (the nb036 grid and diagonal) and
:mod:`~ei_sim.analysis.reproduce.meanfield` (nb033). :mod:`~ei_sim.analysis.reproduce.runner`
runs one at a scale (:mod:`~ei_sim.analysis.reproduce.plans`) into a campaign folder; its
stages (:mod:`~ei_sim.analysis.reproduce.stages`) are stored one at a time in a reproduction
store (:mod:`~ei_sim.analysis.reproduce.store`) and shipped as data
(:mod:`~ei_sim.analysis.reproduce.results`); the tables
(:mod:`~ei_sim.analysis.reproduce.table`) put the lab's numbers
(:mod:`~ei_sim.analysis.reproduce.reference`) beside ei-sim's.
"""
