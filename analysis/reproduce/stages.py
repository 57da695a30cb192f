"""Stages of a reproduction: each computes one piece and stores it in the reproduction store.

A stage runs only when the store does not hold it yet, so an interrupted reproduction resumes
with nothing recomputed. Training stages train into ``<out>/runs/<run name>`` with the
trainer's own per-epoch resume, so even a killed training keeps its finished epochs, and runs
are shared between experiments in the same ``--out`` folder.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

import jax
import numpy as np

from ei_sim.analysis.reproduce import store as rstore

EVAL_TRIALS = 256  # the lab re-evaluated its budget cells on 256 test trials
GAMMA_BATCH = 64


@dataclass
class Campaign:
    """Where and how a reproduction runs; ``done`` holds the store's finished stages."""

    out_dir: str
    store_path: str
    setting: str = "canonical"
    progress: bool = True
    done: set = field(default_factory=set)
    log: list = field(default_factory=list)
    grid_options: dict = field(default_factory=dict)  # executor, scheduler, workers
    quick: bool = False  # a miniature: no per-number comparison with the lab
    reference: object = None  # the lab's numbers (ei_sim.analysis.reproduce.reference)
    cell_records: object = None  # grid cells as data (analysis.reproduce.cell_records)
    check: object = None  # called between stages and after each epoch trained in this process
    # (the CLI raises a Ctrl-C there that a library swallowed: ei_sim.cli.interrupts)
    records_only: bool = False  # an interim page: grid cells from their records, none trained

    def checkpoint(self, _epochs_done: int = 0) -> None:
        if self.check is not None:
            self.check()

    def say(self, text: str) -> None:
        self.log.append(text)
        if self.progress:
            print(text, flush=True)

    def stage(self, name: str, compute):
        """The stored stage ``name``, computing and storing it first if needed."""
        if name in self.done:
            self.say(f"stage {name}: already finished, not recomputed")
        else:
            self.checkpoint()
            self.say(f"stage {name}: running")
            attrs, arrays = compute()
            rstore.save_stage(self.store_path, name, attrs, arrays)
            self.done.add(name)
        return rstore.load_stage(self.store_path, name)


def run_name(model: str, budget, seed: int, setting: str, tier: str, **extra) -> str:
    """Directory name of a training run; encodes everything that makes runs differ but the
    epoch count (a run is continued to more epochs in place)."""
    parts = [model, "off" if budget is None else f"{budget:g}", f"seed{seed}", setting, tier]
    parts += [
        f"{k}{v:g}" if isinstance(v, float | int) else f"{k}{v}" for k, v in sorted(extra.items())
    ]
    return "_".join(parts)


def run_dir_of(runs_root: str, name: str) -> str:
    """The run directory of ``name``; a run of an earlier release, whose name carried its
    epochs (``..._<tier>_30ep_...``), is renamed to it (the one with the most epochs)."""
    path = os.path.join(runs_root, name)
    if os.path.exists(path) or not os.path.isdir(runs_root):
        return path
    tier_end = name.split("_")[4]
    head, _, tail = name.partition(f"_{tier_end}")
    pattern = re.compile(re.escape(f"{head}_{tier_end}_") + r"(\d+)ep" + re.escape(tail) + "$")
    old = [(int(m.group(1)), d) for d in os.listdir(runs_root) if (m := pattern.match(d))]
    if old:
        os.rename(os.path.join(runs_root, max(old)[1]), path)
    return path


def build_model(model: str, setting: str, tier: str, n_e=None, t_ms=None, **changes):
    from ei_sim.models import get_model
    from ei_sim.training.config import tier_model

    return tier_model(get_model(model, setting=setting, **changes), tier, n_e, t_ms)


def train_stage(camp: Campaign, model: str, budget, seed: int, plan, **changes) -> dict:
    """Train (or continue, or resume) one run to ``plan.epochs``; stored: best/final accuracy
    (%), best epoch, rates of the best and the last epoch, the best epoch's gamma, and the
    per-epoch metrics, all of the first ``plan.epochs`` epochs (a run trained longer for
    another plan is read up to them)."""
    from ei_sim.training.config import TrainConfig
    from ei_sim.training.spiking import discard_damaged_run, train

    name = run_name(model, budget, seed, camp.setting, plan.tier, **changes)
    run_dir = run_dir_of(os.path.join(camp.out_dir, "runs"), name)

    def compute():
        net = build_model(model, camp.setting, plan.tier, plan.n_e, plan.t_ms, **changes)
        cfg = TrainConfig.for_tier(
            plan.tier, budget=budget, epochs=plan.epochs, seed=seed, n_samples=plan.samples
        )
        os.makedirs(run_dir, exist_ok=True)
        discard_damaged_run(run_dir, camp.say)  # a damaged run trains again, never resumes
        result = train(net, cfg, run_dir, resume=True, progress=camp.progress,
                       after_epoch=camp.checkpoint)  # fmt: skip
        attrs, arrays = run_summary(result.metrics, plan.epochs)
        attrs["run_dir"] = run_dir
        attrs["trained_epochs"] = len(result.metrics["test_accuracy"])
        return attrs, arrays

    return camp.stage(f"train__{name}", compute)


KEPT_METRICS = ("test_accuracy", "test_rate_e_Hz", "test_rate_i_Hz", "ref_rate_e_Hz",
                "ref_rate_i_Hz", "gamma_peak_Hz", "gamma_significance", "epoch_wall_s")  # fmt: skip


def run_summary(metrics: dict, epochs: int) -> tuple[dict, dict]:
    """A run's numbers over its first ``epochs`` epochs: best (ties: the first) and final
    accuracy in %, the best epoch, E and I rates at the best and the last epoch, the best
    epoch's gamma, and the per-epoch series kept in results (:data:`KEPT_METRICS`)."""
    m = {k: np.asarray(metrics[k], float)[:epochs] for k in KEPT_METRICS if k in metrics}
    acc = m["test_accuracy"]
    b = int(np.argmax(acc))
    attrs = {
        "best_accuracy": 100 * float(acc[b]), "final_accuracy": 100 * float(acc[-1]),
        "best_epoch": b + 1, "epochs": int(acc.size),
        "best_rate_e_Hz": float(m["test_rate_e_Hz"][b]),
        "best_rate_i_Hz": float(m["test_rate_i_Hz"][b]),
        "final_rate_e_Hz": float(m["test_rate_e_Hz"][-1]),
        "final_rate_i_Hz": float(m["test_rate_i_Hz"][-1]),
        "final_ref_rate_e_Hz": float(m["ref_rate_e_Hz"][-1]) if "ref_rate_e_Hz" in m else None,
        "best_gamma_Hz": float(m["gamma_peak_Hz"][b]),
        "wall_s": float(np.nansum(m.get("epoch_wall_s", np.zeros(0)))),
    }  # fmt: skip
    return attrs, m


def gamma_stage(camp: Campaign, trained: dict, n_trials: int = EVAL_TRIALS) -> dict:
    """The lab's re-evaluation of a trained run's best weights on the first ``n_trials`` test
    trials: accuracy (%), E and I rates, the gamma peak, its significance and participation
    (:mod:`ei_sim.analysis.gamma`)."""
    run_dir = str(trained["attrs"]["run_dir"])

    def compute():
        from ei_sim.analysis.gamma import gamma_stats
        from ei_sim.data.encoding import encode
        from ei_sim.sim.engine import simulate_jit
        from ei_sim.training.evaluate import EVAL_STREAM
        from ei_sim.training.stored import load_stored

        model, split, weights, attrs = load_stored(run_dir)
        seed, c = int(attrs["train.seed"]), model.config
        n = min(n_trials, len(split.y_test))
        spikes_e, spikes_i, correct = [], [], 0
        for start in range(0, n, GAMMA_BATCH):
            x, y = (
                split.x_test[start : min(n, start + GAMMA_BATCH)],
                split.y_test[start : min(n, start + GAMMA_BATCH)],
            )
            events = encode(x, c, (seed, EVAL_STREAM, start))
            key = jax.random.fold_in(jax.random.PRNGKey(seed), EVAL_STREAM + start)
            final, rec = simulate_jit(
                weights, model.init_state(key, len(y)), events, c, record=("spikes_e", "spikes_i")
            )
            from ei_sim.sim.engine import logits

            correct += int(np.sum(np.argmax(np.asarray(logits(final, c.n_steps)), -1) == y))
            spikes_e.append(np.asarray(rec["spikes_e"]) > 0)
            spikes_i.append(np.asarray(rec["spikes_i"]) > 0)
        e, i = np.concatenate(spikes_e, axis=1), np.concatenate(spikes_i, axis=1)
        seconds = c.n_steps * c.dt_ms * 1e-3
        stats = gamma_stats(e, i, c.dt_ms)
        attrs = {
            "n_trials": n,
            "accuracy": 100 * correct / n,
            "rate_e_Hz": float(e.sum(0).mean() / seconds),
            "rate_i_Hz": float(i.sum(0).mean() / seconds),
            "gamma_Hz": stats.frequency_Hz,
            "gamma_significance": stats.significance,
            "participation": stats.participation,
            "n_cycles": stats.n_cycles,
        }
        return attrs, {}

    return camp.stage(f"gamma__{os.path.basename(run_dir)}", compute)


def sweep_stage(camp: Campaign, trained: dict, scales, target=None, couplings=(1.0,)) -> dict:
    """Inference-time W_in scale sweep of a run's best weights, per coupling scale of
    ``target`` (``"w_ei"``, ``"w_ie"`` or None): accuracy (%), E and I rates (C, S)."""
    from ei_sim.sweeps.inference import sweep_scales

    run_dir = str(trained["attrs"]["run_dir"])

    def compute():
        r = sweep_scales(run_dir, tuple(scales), target, tuple(couplings), progress=camp.progress)
        arrays = {
            k: np.asarray(r[k], float)
            for k in ("scales", "coupling_scales", "accuracy", "rate_e_Hz", "rate_i_Hz")
        }
        arrays["accuracy"] = 100 * arrays["accuracy"]
        return {"target": target or "none", "run_dir": run_dir}, arrays

    return camp.stage(f"sweep__{os.path.basename(run_dir)}__{target or 'w_in'}", compute)
