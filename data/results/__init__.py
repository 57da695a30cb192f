"""The lab-scale campaign's results as data (JSON, no weights), installed as
``ei_sim.results``; see ``ei_sim.analysis.reproduce.results``."""
