"""Wilson-Cowan / TIDE rate network: two populations, forward Euler, K steps.

Rates are dimensionless (activation units); time constants are in ms. One step of ``dt_ms``::

    pre_E = r_E W_EE - r_I W_IE + u_E          (u = x W_in + b_in, the input drive)
    pre_I = r_E W_EI - r_I W_II + u_I
    r_E  <- (1 - alpha_E) r_E + alpha_E f(pre_E),   alpha_E = dt_ms / tau_e_ms
    r_I  <- (1 - alpha_I) r_I + alpha_I f(pre_I),   alpha_I = dt_ms / tau_i_ms

i.e. forward Euler of ``tau dr/dt = -r + f(pre)``. Weight matrices follow the project
convention of :class:`ei_sim.sim.engine.Weights`: rows are presynaptic, so ``W_EI`` (n_e, n_i)
carries E -> I and ``W_IE`` (n_i, n_e) carries I -> E; in column-vector notation the
equations read ``pre_E = W_EE^T r_E - W_IE^T r_I + u_E``. All four recurrent blocks are
non-negative (Dale's law; inhibition is the minus sign), ``W_in`` is unconstrained.

Activation ``f``: ``"relu"`` **(chosen default)**: Lipschitz constant 1, so the isolated
block bounds of :mod:`ei_sim.rate.perron` hold, and its Jacobian is exact on the active set.
``"softplus"`` (slope < 1) and ``"sigmoid"`` (slope <= 1/4, saturating, the classic
Wilson-Cowan gain that gives Hopf oscillations) are also available.

The initial rates are zero; the network is run for ``steps_internal`` (K) steps with the
input held constant, and the readout reads the final E rates standardised per sample:
``logits = ((r_E - mean r_E) / (std r_E + eps)) W_out + b_out``.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

ACTIVATIONS = {"relu": jax.nn.relu, "softplus": jax.nn.softplus, "sigmoid": jax.nn.sigmoid}
READOUT_EPS = 1e-6


@dataclass(frozen=True)
class WCConfig:
    """Sizes, time constants and initial coupling gains of the rate model.

    ``gain_*`` set the initial blocks: entries ``gain / n_pre * U(0, 2)``, so the Perron root
    of a square block starts near ``gain`` and each row of a coupling block sums to about
    ``gain``. ``input_gain`` scales the N(0, 1/n_in) initial ``W_in``.
    """

    n_units: int = 256
    e_fraction: float = 0.8
    tau_e_ms: float = 20.0
    tau_i_ms: float = 10.0
    dt_ms: float = 1.0
    steps_internal: int = 25
    n_in: int = 784
    n_out: int = 10
    activation: str = "relu"
    gain_ee: float = 0.5
    gain_ei: float = 1.0
    gain_ie: float = 1.0
    gain_ii: float = 0.5
    input_gain: float = 1.0

    def __post_init__(self):
        for name in ("tau_e_ms", "tau_i_ms", "dt_ms"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number of ms, got {value!r}")
        if not (isinstance(self.e_fraction, int | float) and 0 < self.e_fraction < 1):
            raise ValueError(
                f"e_fraction must lie strictly between 0 and 1 (e.g. 0.8), got {self.e_fraction}"
            )
        for name in ("n_units", "n_in", "n_out", "steps_internal"):
            value = getattr(self, name)
            if not (isinstance(value, int) and value >= 1):
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        if not 1 <= self.n_e < self.n_units:
            raise ValueError(
                f"e_fraction={self.e_fraction} of n_units={self.n_units} leaves an empty "
                "population; use more units or a fraction nearer 0.5"
            )
        if self.dt_ms >= 2 * min(self.tau_e_ms, self.tau_i_ms):
            raise ValueError(
                f"forward Euler unstable: dt_ms={self.dt_ms} >= 2*tau "
                f"(tau_e_ms={self.tau_e_ms}, tau_i_ms={self.tau_i_ms}); use dt_ms <= "
                f"{min(self.tau_e_ms, self.tau_i_ms) / 2}"
            )
        if self.activation not in ACTIVATIONS:
            raise ValueError(
                f"unknown activation {self.activation!r}; choose one of {', '.join(ACTIVATIONS)}"
            )
        for name in ("gain_ee", "gain_ei", "gain_ie", "gain_ii", "input_gain"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")

    @property
    def n_e(self) -> int:
        return int(round(self.e_fraction * self.n_units))

    @property
    def n_i(self) -> int:
        return self.n_units - self.n_e

    @property
    def alpha_e(self) -> float:
        return self.dt_ms / self.tau_e_ms

    @property
    def alpha_i(self) -> float:
        return self.dt_ms / self.tau_i_ms

    def replace(self, **changes) -> WCConfig:
        return dataclasses.replace(self, **changes)


class Params(NamedTuple):
    """Differentiable parameters; rows are presynaptic.

    ``w_in`` (n_in, n_units) and ``b_in`` (n_units,): unconstrained input projection (columns
    ``:n_e`` drive E, the rest drive I); ``w_ee`` (n_e, n_e), ``w_ei`` (n_e, n_i, E -> I),
    ``w_ie`` (n_i, n_e, I -> E), ``w_ii`` (n_i, n_i): all >= 0; ``w_out`` (n_e, n_out) and
    ``b_out`` (n_out,): unconstrained readout.
    """

    w_in: jax.Array
    b_in: jax.Array
    w_ee: jax.Array
    w_ei: jax.Array
    w_ie: jax.Array
    w_ii: jax.Array
    w_out: jax.Array
    b_out: jax.Array


RECURRENT = ("w_ee", "w_ei", "w_ie", "w_ii")
# Boolean pytree for ei_sim.training.optim: True on the blocks that obey Dale's law.
DALE_MASK = Params(**{name: name in RECURRENT for name in Params._fields})


class Rates(NamedTuple):
    """Population rates, each (..., n_pop)."""

    e: jax.Array
    i: jax.Array


class Drive(NamedTuple):
    """Input drive onto each population, each (..., n_pop); held constant over the K steps."""

    e: jax.Array
    i: jax.Array


def _coupling_block(key, n_pre: int, n_post: int, gain: float) -> jax.Array:
    return gain / n_pre * jax.random.uniform(key, (n_pre, n_post), minval=0.0, maxval=2.0)


def init_params(key: jax.Array, config: WCConfig) -> Params:
    """Random initial parameters (see :class:`WCConfig` for the scales)."""
    k = jax.random.split(key, 6)
    n_e, n_i = config.n_e, config.n_i
    w_in = config.input_gain * jax.random.normal(k[0], (config.n_in, config.n_units))
    return Params(
        w_in=w_in / math.sqrt(config.n_in),
        b_in=jnp.zeros(config.n_units),
        w_ee=_coupling_block(k[1], n_e, n_e, config.gain_ee),
        w_ei=_coupling_block(k[2], n_e, n_i, config.gain_ei),
        w_ie=_coupling_block(k[3], n_i, n_e, config.gain_ie),
        w_ii=_coupling_block(k[4], n_i, n_i, config.gain_ii),
        w_out=jax.random.normal(k[5], (n_e, config.n_out)) / math.sqrt(n_e),
        b_out=jnp.zeros(config.n_out),
    )


def activation(config: WCConfig):
    """The rate function ``f`` named by ``config.activation``."""
    return ACTIVATIONS[config.activation]


def input_drive(params: Params, x: jax.Array, config: WCConfig) -> Drive:
    """``u = x W_in + b_in`` split into the E and I parts; ``x`` is (..., n_in)."""
    u = x @ params.w_in + params.b_in
    return Drive(e=u[..., : config.n_e], i=u[..., config.n_e :])


def zero_rates(batch_shape: tuple, config: WCConfig) -> Rates:
    return Rates(e=jnp.zeros((*batch_shape, config.n_e)), i=jnp.zeros((*batch_shape, config.n_i)))


def pre_activations(params: Params, rates: Rates, drive: Drive) -> Rates:
    """``pre_E = r_E W_EE - r_I W_IE + u_E``, ``pre_I = r_E W_EI - r_I W_II + u_I``."""
    pre_e = rates.e @ params.w_ee - rates.i @ params.w_ie + drive.e
    pre_i = rates.e @ params.w_ei - rates.i @ params.w_ii + drive.i
    return Rates(e=pre_e, i=pre_i)


def step(params: Params, rates: Rates, inp: Drive, config: WCConfig) -> Rates:
    """One forward-Euler step: ``r <- (1 - alpha) r + alpha f(pre)`` per population."""
    f = activation(config)
    pre = pre_activations(params, rates, inp)
    a_e, a_i = config.alpha_e, config.alpha_i
    return Rates(e=(1 - a_e) * rates.e + a_e * f(pre.e), i=(1 - a_i) * rates.i + a_i * f(pre.i))


def run(params: Params, x: jax.Array, config: WCConfig, record: bool = False):
    """Run K = ``steps_internal`` steps from zero rates with the input held constant.

    Returns ``(final_rates, trajectory)``; the trajectory is a :class:`Rates` of (K, ..., n)
    arrays when ``record`` is True, else None.
    """
    return relax(params, input_drive(params, x, config), config, record)


def relax(params: Params, drive: Drive, config: WCConfig, record: bool = False):
    """K = ``steps_internal`` Euler steps from zero rates under a constant ``drive``.

    Returns ``(final_rates, trajectory)`` as :func:`run` does.
    """
    rates0 = zero_rates(drive.e.shape[:-1], config)

    def body(rates, _):
        new = step(params, rates, drive, config)
        return new, (new if record else None)

    final, trajectory = lax.scan(body, rates0, None, length=config.steps_internal)
    return final, trajectory


def readout_logits(params: Params, rates: Rates) -> jax.Array:
    """Logits from the final E rates standardised per sample (mean 0, std 1)."""
    r = rates.e
    z = (r - r.mean(axis=-1, keepdims=True)) / (r.std(axis=-1, keepdims=True) + READOUT_EPS)
    return z @ params.w_out + params.b_out


def forward(params: Params, x: jax.Array, config: WCConfig):
    """``(logits, final_rates)`` for a batch of inputs ``x`` (B, n_in)."""
    final, _ = run(params, x, config)
    return readout_logits(params, final), final


def ei_ratio(rates: Rates, eps: float = 1e-6) -> jax.Array:
    """Mean E rate over mean I rate (over every axis)."""
    return (rates.e.mean() + eps) / (rates.i.mean() + eps)


def ei_ratio_penalty(rates: Rates, target: float, eps: float = 1e-6) -> jax.Array:
    """``(log(mean r_E / mean r_I) - log target)^2``: pulls the E-I activity ratio to ``target``."""
    if not (isinstance(target, int | float) and math.isfinite(target) and target > 0):
        raise ValueError(f"E-I ratio target must be a positive finite number, got {target!r}")
    return (jnp.log(ei_ratio(rates, eps)) - math.log(target)) ** 2


def fixed_point_residual(params: Params, rates: Rates, drive: Drive, config: WCConfig):
    """Game-theoretic residual: each population's gap to its own best response ``f(pre)``.

    ``sqrt(mean ||r_E - f(pre_E)||^2 + mean ||r_I - f(pre_I)||^2)`` over the batch, evaluated
    at the given (last-step) rates; zero exactly at a fixed point (a Nash equilibrium of the
    two populations, each choosing its rates given the other's).
    """
    f = activation(config)
    pre = pre_activations(params, rates, drive)
    gap_e = jnp.sum((rates.e - f(pre.e)) ** 2, axis=-1)
    gap_i = jnp.sum((rates.i - f(pre.i)) ** 2, axis=-1)
    return jnp.sqrt(jnp.mean(gap_e + gap_i) + 1e-12)
