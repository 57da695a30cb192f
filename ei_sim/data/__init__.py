"""Input data: the MNIST pools and their Poisson spike encoding."""
