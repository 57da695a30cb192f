"""Run a preset network on MNIST digits (or without input) and store the result.

This is the Python counterpart of ``ei-sim simulate``: :func:`run_preset` returns the
rasters, population activity and rates; :func:`write_run` stores them in HDF5.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import numpy as np

from ei_sim.config import to_attrs
from ei_sim.encoding import InputEvents, poisson_events
from ei_sim.engine import simulate_jit
from ei_sim.spectrum import Peak, gamma_peak
from ei_sim.storage import atomic_h5, provenance, write_attrs, write_spike_lists


@dataclass
class SimulationResult:
    spikes_e: np.ndarray  # (T, B, N_E) bool
    spikes_i: np.ndarray  # (T, B, N_I) bool
    rate_e_Hz: float
    rate_i_Hz: float
    gamma: Peak | None
    dt_ms: float


def run_preset(model, seed: int = 0, images=None, encoder_seed=None, drop_ms: float = 20.0):
    """Simulate ``model`` for one trial per image (or one trial without input).

    ``images``: (B, 784) intensities in [0, 1], or None for a network without input.
    The initial state and weights come from ``seed``; input spikes from ``encoder_seed``
    (defaults to ``seed``).
    """
    config = model.config
    key_w, key_s = jax.random.split(jax.random.PRNGKey(seed))
    weights = model.init_weights(key_w)
    batch = 1 if images is None else len(images)
    state = model.init_state(key_s, batch)
    events: InputEvents | None = None
    if images is not None and config.n_in > 0:
        enc = seed if encoder_seed is None else encoder_seed
        events = poisson_events(images, config.n_steps, config.p_spike_per_unit_intensity, enc)
    _, rec = simulate_jit(
        weights, state, events, config, record=("spikes_e", "spikes_i"), n_steps=config.n_steps
    )
    spikes_e = np.asarray(rec["spikes_e"])
    spikes_i = np.asarray(rec["spikes_i"])
    seconds = config.n_steps * config.dt_ms * 1e-3
    activity = spikes_e.mean(axis=2)
    peak = gamma_peak(activity, config.dt_ms, drop_ms=min(drop_ms, config.t_ms / 2))
    return SimulationResult(
        spikes_e, spikes_i, float(spikes_e.sum(0).mean() / seconds),
        float(spikes_i.sum(0).mean() / seconds), peak, config.dt_ms,
    )  # fmt: skip


def write_run(path: str, model, result: SimulationResult, extra_attrs: dict) -> None:
    """HDF5 layout: /spikes/{e,i}/{time_ms,trial,index}, /population/{e,i} (T, B) spike
    fractions; root attributes: rates, gamma peak, model config, provenance."""
    with atomic_h5(path) as fh:
        write_attrs(fh, {**to_attrs(model, "model."), **provenance(extra_attrs.get("seed"))})
        write_attrs(fh, extra_attrs)
        fh.attrs["rate_e_Hz"] = result.rate_e_Hz
        fh.attrs["rate_i_Hz"] = result.rate_i_Hz
        fh.attrs["gamma_peak_Hz"] = np.nan if result.gamma is None else result.gamma.frequency_Hz
        for name, raster in (("e", result.spikes_e), ("i", result.spikes_i)):
            write_spike_lists(fh.create_group(f"spikes/{name}"), raster, result.dt_ms)
            fh.create_dataset(
                f"population/{name}", data=raster.mean(axis=2).astype(np.float32),
                compression="gzip",
            )  # fmt: skip


def summary_line(name: str, result: SimulationResult) -> str:
    gamma = "none" if result.gamma is None else f"{result.gamma.frequency_Hz:.1f} Hz"
    return f"{name}: E {result.rate_e_Hz:.2f} Hz, I {result.rate_i_Hz:.2f} Hz, gamma peak {gamma}"
