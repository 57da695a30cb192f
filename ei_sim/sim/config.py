"""Configuration of a conductance-based E-I network: plain, frozen, hashable values.

Configuration (sizes, cell constants, time step, surrogate settings) is static under
``jax.jit``; the differentiable parameters (weights) live apart in
:class:`ei_sim.sim.engine.Weights`.
Every default is the canonical recipe's value (docs/model.md); variants are made with
:func:`dataclasses.replace`, never by mutation. ``to_attrs`` flattens a config into
HDF5-attribute-friendly ``{name: scalar}`` pairs.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

SURROGATES = ("fast_sigmoid", "arctan")
PROPAGATIONS = ("auto", "native", "events", "dense")
CELL_KERNELS = ("auto", "native", "xla")
OUT_RESET_GRADIENTS = ("detached", "surrogate")


@dataclass(frozen=True)
class CellParams:
    """Membrane constants of one population.

    The membrane time constant at rest is ``c_nF / g_leak_uS`` in ms (nF/uS = ms).
    """

    c_nF: float
    g_leak_uS: float
    t_ref_ms: float

    def __post_init__(self):
        if not (self.c_nF > 0 and self.g_leak_uS > 0):
            raise ValueError(
                f"cell capacitance and leak must be positive, got C={self.c_nF} nF, "
                f"g_L={self.g_leak_uS} uS"
            )
        if self.t_ref_ms < 0:
            raise ValueError(f"refractory period must be >= 0 ms, got {self.t_ref_ms}")


CELL_E = CellParams(c_nF=1.0, g_leak_uS=0.05, t_ref_ms=3.0)
CELL_I = CellParams(c_nF=0.5, g_leak_uS=0.1, t_ref_ms=1.5)


@dataclass(frozen=True)
class NetworkConfig:
    """Sizes, cell constants and integration settings of an E-I network.

    Equations (per cell, one step of ``dt_ms``; see :func:`ei_sim.sim.engine.step`)::

        g_exc <- g_exc * exp(-dt/tau_ampa) + sum_pre s_pre * W      [uS]
        g_inh <- g_inh * exp(-dt/tau_gaba) + sum_pre s_pre * W      [uS]
        g_tot  = g_L + g_exc + g_inh
        V_inf  = (g_L E_L + g_exc E_exc + g_inh E_inh) / g_tot      [mV]
        V     <- V + (V_inf - V) * (1 - exp(-dt g_tot / C))         (exponential Euler)

    ``propagation`` picks how recurrent spikes reach their targets: ``"native"`` (a C++ event
    kernel, :mod:`ei_sim.sim.native`), ``"events"`` (pure JAX: only the cells that spiked),
    ``"dense"`` (a matrix product) or ``"auto"`` (native when it builds, else events); all give
    the same numbers up to float rounding (see :mod:`ei_sim.sim.propagate`). ``cell_kernel`` picks
    how the membrane/spike update and its adjoint run: ``"native"`` (one fused C++ pass per
    population, split over XLA's CPU threads, :mod:`ei_sim.sim.native`), ``"xla"`` (jax.numpy) or
    ``"auto"`` (native when it builds and a population holds at least
    ``ei_sim.sim.engine.NATIVE_CELLS_MIN_SIZE`` cell-trials, where it is the faster one); the two
    agree to float rounding.
    ``n_in`` input channels project onto E only; ``n_out`` leaky readout units read E spikes
    (``n_out = 0``: no readout). ``out_reset_gradient`` is what the readout's subtractive
    reset passes back: ``"detached"`` (nothing: the reset uses the spike's value only) or
    ``"surrogate"`` (the reset ``v - theta s_out`` with ``s_out = H(v - theta)`` carrying the
    network's surrogate derivative at the same slope, per unit of v, as the reference lab's
    readout does). ``v_init_*`` bound the uniform initial voltage (defaults:
    ``[e_leak_mV, v_th_mV]``).
    """

    n_in: int = 784
    n_e: int = 1024
    n_i: int = 256
    n_out: int = 10
    cell_e: CellParams = CELL_E
    cell_i: CellParams = CELL_I
    e_leak_mV: float = -65.0
    e_exc_mV: float = 0.0
    e_inh_mV: float = -80.0
    v_th_mV: float = -50.0
    v_reset_mV: float = -65.0
    v_floor_mV: float = -200.0
    v_init_low_mV: float | None = None
    v_init_high_mV: float | None = None
    tau_ampa_ms: float = 2.0
    tau_gaba_ms: float = 9.0
    dt_ms: float = 0.1
    t_ms: float = 200.0
    r_max_Hz: float = 25.0
    tau_out_ms: float = 2.0
    out_threshold: float = 1.0
    out_reset_gradient: str = "detached"
    surrogate: str = "fast_sigmoid"
    surrogate_slope_per_mV: float = 1.0
    grad_damping: float = 1000.0
    propagation: str = "auto"
    cell_kernel: str = "auto"
    name: str = field(default="custom", compare=False)

    def __post_init__(self):
        check = _Checker(self)
        check.positive("dt_ms", "t_ms", "tau_ampa_ms", "tau_gaba_ms", "tau_out_ms")
        check.positive("surrogate_slope_per_mV", "grad_damping")
        check.non_negative_int("n_in", "n_out")
        check.positive_int("n_e", "n_i")
        if self.propagation not in PROPAGATIONS:
            raise ValueError(f"propagation must be one of {PROPAGATIONS}, got {self.propagation!r}")
        if self.cell_kernel not in CELL_KERNELS:
            raise ValueError(f"cell_kernel must be one of {CELL_KERNELS}, got {self.cell_kernel!r}")
        if self.surrogate not in SURROGATES:
            raise ValueError(f"unknown surrogate {self.surrogate!r}; choose one of {SURROGATES}")
        if self.out_reset_gradient not in OUT_RESET_GRADIENTS:
            raise ValueError(f"out_reset_gradient must be one of {OUT_RESET_GRADIENTS}, "
                             f"got {self.out_reset_gradient!r}")  # fmt: skip
        if self.t_ms < self.dt_ms:
            raise ValueError(
                f"trial length t_ms={self.t_ms} is shorter than one step dt_ms={self.dt_ms}"
            )
        for pop, cell in (("E", self.cell_e), ("I", self.cell_i)):
            if cell.t_ref_ms > 0 and self.dt_ms > cell.t_ref_ms:
                raise ValueError(
                    f"dt_ms={self.dt_ms} is larger than the {pop} refractory period "
                    f"({cell.t_ref_ms} ms); use dt_ms <= {cell.t_ref_ms}"
                )
        if not self.v_reset_mV < self.v_th_mV:
            raise ValueError("v_reset_mV must lie below v_th_mV")

    # Derived quantities (pure functions of the config, so never stored twice).
    @property
    def n_steps(self) -> int:
        return int(round(self.t_ms / self.dt_ms))

    def refractory_steps(self, cell: CellParams) -> int:
        """Length of the refractory count started by a spike: max(1, round(t_ref/dt))."""
        return max(1, int(round(cell.t_ref_ms / self.dt_ms)))

    @property
    def v_init_range_mV(self) -> tuple[float, float]:
        low = self.e_leak_mV if self.v_init_low_mV is None else self.v_init_low_mV
        high = self.v_th_mV if self.v_init_high_mV is None else self.v_init_high_mV
        return low, high

    @property
    def p_spike_per_unit_intensity(self) -> float:
        """Input spike probability per step for a pixel of intensity 1: r_max * dt."""
        return self.r_max_Hz * self.dt_ms * 1e-3

    def to_attrs(self, prefix: str = "") -> dict:
        return to_attrs(self, prefix)


class _Checker:
    def __init__(self, obj):
        self.obj = obj

    def positive(self, *names):
        for n in names:
            v = getattr(self.obj, n)
            if not (isinstance(v, int | float) and math.isfinite(v) and v > 0):
                raise ValueError(f"{n} must be a positive number, got {v!r}")

    def positive_int(self, *names):
        for n in names:
            v = getattr(self.obj, n)
            if not (isinstance(v, int) and v > 0):
                raise ValueError(f"{n} must be a positive integer, got {v!r}")

    def non_negative_int(self, *names):
        for n in names:
            v = getattr(self.obj, n)
            if not (isinstance(v, int) and v >= 0):
                raise ValueError(f"{n} must be a non-negative integer, got {v!r}")


def to_attrs(obj, prefix: str = "") -> dict:
    """Flatten a (nested) frozen dataclass into ``{"prefix.field": scalar}``; None -> "none"."""
    out = {}
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        key = f"{prefix}{f.name}"
        if dataclasses.is_dataclass(value):
            out.update(to_attrs(value, key + "."))
        elif value is None:
            out[key] = "none"
        elif isinstance(value, tuple):
            out[key] = repr(value)
        else:
            out[key] = value
    return out


def from_attrs(cls, attrs: dict, prefix: str = ""):
    """Inverse of :func:`to_attrs` for a dataclass type ``cls``."""
    kwargs = {}
    for f in dataclasses.fields(cls):
        key = f"{prefix}{f.name}"
        ftype = f.type if not isinstance(f.type, str) else None
        if f.name in ("cell_e", "cell_i"):
            kwargs[f.name] = from_attrs(CellParams, attrs, key + ".")
            continue
        if key not in attrs:
            continue
        value = attrs[key]
        if hasattr(value, "item"):
            value = value.item()
        if isinstance(value, bytes):
            value = value.decode()
        if value == "none":
            value = None
        elif isinstance(value, str) and value.startswith("("):
            import ast

            value = ast.literal_eval(value)
        del ftype
        kwargs[f.name] = value
    return cls(**kwargs)
