"""The MNIST-classifier E-I network: the class the COBA and PING presets (``models``) build.

784 inputs -> N_E excitatory (and N_I = N_E/4 inhibitory, coupled E->I->E) -> 10 readout
units. Initial weight statistics (drawn by :mod:`ei_sim.sim.init`): ``W_in`` mean ``w_in_mean``
(std 0.1x, 95 % sparse); ``W_EI`` mean ``ei_strength`` (std 0.1x); ``W_IE`` mean ``ei_ratio *
ei_strength`` (std 0.1x); ``W_out`` Normal(5.1, 3.8) clipped at 0, times ``w_out_scale``;
each block divided by its fan-in. ``w_ei_mean`` / ``w_ie_mean`` override ``ei_strength`` and
``ei_ratio`` when given. JAX is imported when the weights or the state are drawn, not with the
class (so that listing the presets needs no JAX).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ei_sim.sim.config import NetworkConfig, from_attrs, to_attrs
from ei_sim.sim.state import Weights


@dataclass(frozen=True)
class EIClassifier:
    """A preset: network configuration plus the statistics of its initial weights."""

    name: str
    config: NetworkConfig
    w_in_mean: float
    ei_strength: float
    ei_ratio: float = 2.0
    w_ei_mean: float | None = None
    w_ie_mean: float | None = None
    w_in_std_fraction: float = 0.1
    w_in_sparsity: float = 0.95
    w_out_mean: float = 5.1
    w_out_std: float = 3.8
    w_out_scale: float = 100.0
    setting: str = "canonical"  # the name of the ei_sim.models.settings entry it was built under

    def __post_init__(self):
        for label, value in (
            ("W_in mean", self.w_in_mean),
            ("ei-strength", self.ei_strength),
            ("ei-ratio", self.ei_ratio),
            ("W_EI mean", self.w_ei_mean),
            ("W_IE mean", self.w_ie_mean),
        ):
            if value is not None and not value >= 0:
                raise ValueError(f"{label} must be >= 0 (weights are non-negative), got {value}")

    @property
    def w_ei(self) -> float:
        """Mean of W_EI before fan-in scaling."""
        return self.ei_strength if self.w_ei_mean is None else self.w_ei_mean

    @property
    def w_ie(self) -> float:
        """Mean of W_IE before fan-in scaling."""
        return self.ei_ratio * self.ei_strength if self.w_ie_mean is None else self.w_ie_mean

    def replace(self, **changes) -> EIClassifier:
        config_changes = {k: v for k, v in changes.items() if k in _CONFIG_FIELDS}
        own = {k: v for k, v in changes.items() if k not in _CONFIG_FIELDS}
        config = dataclasses.replace(self.config, **config_changes)
        return dataclasses.replace(self, config=config, **own)

    def init_weights(self, key) -> Weights:
        import jax

        from ei_sim.sim.init import init_block

        c = self.config
        k_in, k_ei, k_ie, k_out = jax.random.split(key, 4)
        w_in = init_block(
            k_in, (c.n_in, c.n_e), self.w_in_mean, self.w_in_std_fraction * self.w_in_mean,
            self.w_in_sparsity,
        )  # fmt: skip
        w_ei = init_block(k_ei, (c.n_e, c.n_i), self.w_ei, 0.1 * self.w_ei)
        w_ie = init_block(k_ie, (c.n_i, c.n_e), self.w_ie, 0.1 * self.w_ie)
        w_out = (
            init_block(k_out, (c.n_e, c.n_out), self.w_out_mean, self.w_out_std) * self.w_out_scale
        )
        return Weights(w_in=w_in, w_ei=w_ei, w_ie=w_ie, w_out=w_out)

    def init_state(self, key, batch: int):
        from ei_sim.sim.engine import init_state

        return init_state(self.config, key, batch)

    def to_attrs(self) -> dict:
        attrs = to_attrs(dataclasses.replace(self, config=self.config), "model.")
        return attrs

    @classmethod
    def from_attrs(cls, attrs: dict) -> EIClassifier:
        """The classifier stored in a run's ``model.*`` attributes (a field missing from an
        older file takes its default)."""
        config = from_attrs(NetworkConfig, attrs, "model.config.")
        values = {}
        for name in {f.name for f in dataclasses.fields(cls)} - {"config"}:
            if f"model.{name}" in attrs:
                value = attrs[f"model.{name}"]
                values[name] = None if value == "none" else value
        return cls(config=config, **values)


_CONFIG_FIELDS = {f.name for f in dataclasses.fields(NetworkConfig)}
