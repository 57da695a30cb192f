"""The spiking simulator: the model, its numerics and how a run is recorded."""
