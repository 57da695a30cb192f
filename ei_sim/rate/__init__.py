"""The Wilson-Cowan / TIDE rate model: its network, stability tools and trainer."""
