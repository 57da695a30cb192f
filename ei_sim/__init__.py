"""ei-sim: conductance-based spiking E-I networks in JAX."""

__version__ = "0.1.0"
