"""The reference lab's published numbers (``pinglab.json``), installed as ``ei_sim.reference``."""
