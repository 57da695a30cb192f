"""The same networks written in Brian2's own equations, for spike-for-spike comparison.

Nothing here calls ei-sim's engine: the model is stated in Brian2's equation strings and
integrated by Brian2 (exponential Euler, float64, numpy target). Only the numbers that define
one concrete network (weights, initial state, input spike times) are shared.

Timing convention (see ei_sim.sim.engine): ei-sim adds input row t and the previous step's spikes
to g before the membrane update of step t, and decays g first. Brian2 integrates v with the g
of the start of the step, then decays g, then adds this step's spikes. The two recursions are
the same if the Brian2 input spike of ei-sim row t is emitted at (t - 1) dt and Brian2's
initial conductance is ei-sim's multiplied by exp(-dt/tau).
"""

from __future__ import annotations

import numpy as np

EQS = """
dv/dt = (gleak*(el - v) + ge*(ee - v) + gi*(ei - v)) / cmem : volt (unless refractory)
dge/dt = -ge / tau_e : siemens
dgi/dt = -gi / tau_i : siemens
gleak : siemens (constant)
cmem : farad (constant)
"""


def run_brian2(config, weights, v0_e, v0_i, input_spikes=None, g0=None, n_steps=None):
    """Simulate one trial in Brian2; return boolean rasters (T, N_E), (T, N_I).

    ``weights``: dict of numpy blocks (w_in, w_ee, w_ei, w_ie, w_ii; uS; absent = None).
    ``input_spikes``: (T, n_in) boolean raster (ei-sim row convention), or None.
    ``g0``: optional dict of initial conductances in uS (ei-sim convention) for e/i.
    """
    import brian2 as b2

    b2.start_scope()
    b2.prefs.codegen.target = "numpy"
    dt = config.dt_ms * b2.ms
    b2.defaultclock.dt = dt
    n_steps = n_steps if n_steps is not None else config.n_steps
    namespace = {
        "el": config.e_leak_mV * b2.mV, "ee": config.e_exc_mV * b2.mV,
        "ei": config.e_inh_mV * b2.mV, "tau_e": config.tau_ampa_ms * b2.ms,
        "tau_i": config.tau_gaba_ms * b2.ms, "vt": config.v_th_mV * b2.mV,
        "vr": config.v_reset_mV * b2.mV,
    }  # fmt: skip
    groups = {}
    for name, n, cell, v0 in (
        ("e", config.n_e, config.cell_e, v0_e),
        ("i", config.n_i, config.cell_i, v0_i),
    ):
        g = b2.NeuronGroup(
            n, EQS, threshold="v >= vt", reset="v = vr", refractory=cell.t_ref_ms * b2.ms,
            method="exponential_euler", namespace=namespace, name=f"pop_{name}",
        )  # fmt: skip
        g.gleak = cell.g_leak_uS * b2.uS
        g.cmem = cell.c_nF * b2.nF
        g.v = np.asarray(v0, np.float64) * b2.mV
        if g0 is not None:
            g.ge = np.asarray(g0[name][0]) * np.exp(-config.dt_ms / config.tau_ampa_ms) * b2.uS
            g.gi = np.asarray(g0[name][1]) * np.exp(-config.dt_ms / config.tau_gaba_ms) * b2.uS
        groups[name] = g
    objects = list(groups.values())
    blocks = [("w_ee", "e", "e", "ge"), ("w_ei", "e", "i", "ge"),
              ("w_ie", "i", "e", "gi"), ("w_ii", "i", "i", "gi")]  # fmt: skip
    for key, pre, post, target in blocks:
        w = weights.get(key)
        if w is not None and np.any(w):
            objects.append(_synapses(b2, groups[pre], groups[post], w, target))
    if input_spikes is not None and weights.get("w_in") is not None:
        rows, chans = np.nonzero(np.asarray(input_spikes))
        if np.any(rows == 0):
            raise ValueError("Brian2 reference cannot express input in row 0; start at row 1")
        gen = b2.SpikeGeneratorGroup(input_spikes.shape[1], chans, (rows - 1) * dt, name="inputs")
        objects += [gen, _synapses(b2, gen, groups["e"], weights["w_in"], "ge")]
    monitors = {k: b2.SpikeMonitor(g) for k, g in groups.items()}
    net = b2.Network(*objects, *monitors.values())
    net.run(n_steps * dt, namespace=namespace)
    rasters = []
    for name, n in (("e", config.n_e), ("i", config.n_i)):
        raster = np.zeros((n_steps, n), bool)
        steps = np.round(np.asarray(monitors[name].t / dt)).astype(int)
        raster[steps, np.asarray(monitors[name].i)] = True
        rasters.append(raster)
    return rasters


def _synapses(b2, pre, post, w, target):
    w = np.asarray(w, np.float64)
    i, j = np.nonzero(w)
    syn = b2.Synapses(pre, post, "w : siemens", on_pre=f"{target}_post += w")
    syn.connect(i=i, j=j)
    syn.w = w[i, j] * b2.uS
    return syn
