"""What a training run raises, importable without JAX (a grid's main process catches these
from its workers without importing the training code)."""


class TrainingFailed(RuntimeError):
    """The weights became non-finite; the run file is marked ``status = "failed"``."""
