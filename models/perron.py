"""Stability tools of the rate model (Perron roots, Schur bounds, the spectral penalty and
the LDS monitor), re-exported from the core, :mod:`ei_sim.perron`, where the trainer that
uses them lives; ``from models.perron import ...`` keeps working."""

from ei_sim.perron import (
    DEFAULT_PERRON_STEPS,
    LDSReport,
    check_target,
    continuous_time_matrix,
    isolated_bound_ee,
    isolated_bound_ii,
    lds_monitor,
    lyapunov_margin,
    metzler_majorant,
    perron_root,
    refine_diagonal,
    signed_recurrent_matrix,
    single_blas_thread,
    spectral_penalty,
    tau_vector_ms,
)

__all__ = [
    "DEFAULT_PERRON_STEPS", "LDSReport", "check_target", "continuous_time_matrix",
    "isolated_bound_ee", "isolated_bound_ii", "lds_monitor", "lyapunov_margin",
    "metzler_majorant", "perron_root", "refine_diagonal", "signed_recurrent_matrix",
    "single_blas_thread", "spectral_penalty", "tau_vector_ms",
]  # fmt: skip
