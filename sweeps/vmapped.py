"""Train several grid cells in one compiled program: ``jax.vmap`` over the coupling weights.

Cells that share a seed see the same batches, input spikes and initial states; only their
W_EI / W_IE (and so their trained weights) differ. Stacking them along a leading axis and
vmapping the training step turns C small programs into one, which on a laptop removes most
of the per-step overhead of tiny networks. The epochs, evaluation, checkpoints and
bookkeeping are the one training loop's (:func:`ei_sim.training.spiking.train_stacked` on
:func:`ei_sim.training.fit`).

**Resumption.** Each cell trains into its own run directory (``<store>.cells/<name>``, as
the serial and Dask executors do), rewritten atomically after every epoch; a killed group
restarts from its cells' last completed epoch, and a cell may be continued by any executor.
Cells whose run files hold different numbers of epochs (a kill between two cells' writes)
continue in separate groups.

**Packing.** A group holds at most ``budget // per_cell`` cells: ``per_cell`` is the memory
one training needs (:func:`ei_sim.validate.train_bytes`), ``budget`` a share
(:data:`MEMORY_SHARE`) of the memory available now (:func:`ei_sim.validate.available_memory_bytes`)
or what the caller allows; the cells of a seed are split into that many balanced groups,
and one line says how.
"""

from __future__ import annotations

import math
import os
import tempfile

import numpy as np

from ei_sim import validate

MEMORY_SHARE = 0.8  # of the available memory the groups of a grid may take


def cell_bytes(model, cfg) -> float:
    """Memory one cell's training needs (:func:`ei_sim.validate.train_bytes`)."""
    c = model.config
    return validate.train_bytes(c.n_steps, c.n_in, c.n_e, c.n_i, c.n_out, cfg.batch_size,
                                c.p_spike_per_unit_intensity, cfg.checkpoint_every)  # fmt: skip


def pack(items: list, per_cell_bytes: float, budget_bytes: float) -> list[list]:
    """``items`` in order, split into the fewest balanced groups of at most
    ``max(1, budget // per_cell)`` each."""
    if not items:
        return []
    most = max(1, int(budget_bytes // max(per_cell_bytes, 1.0)))
    n_groups = math.ceil(len(items) / most)
    size, extra = divmod(len(items), n_groups)
    groups, start = [], 0
    for g in range(n_groups):
        end = start + size + (1 if g < extra else 0)
        groups.append(items[start:end])
        start = end
    return groups


def packing_line(seed: int, groups: list[list], per_cell_bytes: float, budget_bytes: float,
                 budget_source: str) -> str:  # fmt: skip
    """One line: how the cells of ``seed`` were packed, and why."""
    n = sum(len(g) for g in groups)
    sizes = ", ".join(str(len(g)) for g in groups)
    fmt = validate.format_bytes
    return (f"vmap: {n} cells of seed {seed} in {len(groups)} "
            f"group{'s' if len(groups) != 1 else ''} ({sizes}): about {fmt(per_cell_bytes)} "
            f"per cell, {fmt(budget_bytes)} allowed ({budget_source})")  # fmt: skip


def memory_budget(memory_bytes: float | None = None) -> tuple[float, str]:
    """The memory the groups may take and where that figure comes from."""
    if memory_bytes is not None:
        validate.positive("memory_bytes", memory_bytes)
        return float(memory_bytes), "as requested"
    have = validate.available_memory_bytes()
    share = f"{MEMORY_SHARE:.0%} of {validate.format_bytes(have)} available"
    return MEMORY_SHARE * have, share


def cell_setup(spec, cells):
    """The models and the recipe of ``cells`` = [(w_ei, w_ie, seed)], one seed."""
    seeds = {c[2] for c in cells}
    if len(seeds) != 1:
        raise ValueError(f"cells trained together share one seed, got {sorted(seeds)}")
    return [spec.cell_model(a, b) for a, b, _ in cells], spec.cell_recipe(seeds.pop())


def train_group(spec, cells, cell_dirs, on_epoch=None, progress=False, after_epoch=None):
    """Train ``cells`` (one seed) together into ``cell_dirs``, resuming what they hold; one
    result per cell in the form of :func:`ei_sim.sweeps.grid.train_cell`."""
    from ei_sim.sim.compile_cache import enable
    from ei_sim.training.spiking import train_stacked

    enable()
    models, cfg = cell_setup(spec, cells)
    results = train_stacked(models, cfg, cell_dirs, resume=True, on_epoch=on_epoch,
                            progress=progress, after_epoch=after_epoch)  # fmt: skip
    return [_cell_result(cell, result) for cell, result in zip(cells, results, strict=True)]


def train_cells_vmapped(spec, cells, progress: bool = False, cell_dirs=None,
                        memory_bytes=None, on_epoch=None, log=None) -> list[dict]:  # fmt: skip
    """Train ``cells`` = [(w_ei, w_ie, seed)] of one seed in groups that fit in memory; one
    result per cell (summary, metrics, weights), in order.

    ``cell_dirs``: the cells' run directories (resumed where they hold epochs); None trains
    in a temporary folder (nothing is kept). ``memory_bytes``: what the groups may take
    (None: :func:`memory_budget`); ``log(line)`` receives the packing line.
    """
    if cell_dirs is None:
        with tempfile.TemporaryDirectory(prefix="ei-sim-vmap-") as root:
            dirs = [os.path.join(root, f"cell_{k}") for k in range(len(cells))]
            out = train_cells_vmapped(spec, cells, progress, dirs, memory_bytes, on_epoch, log)
        for result in out:
            result["summary"]["run_dir"] = "none"
        return out
    results = {}
    for group in plan_groups(spec, list(zip(cells, cell_dirs, strict=True)), memory_bytes, log):
        outs = train_group(spec, [c for c, _ in group], [d for _, d in group], on_epoch, progress)
        results.update({d: out for (_, d), out in zip(group, outs, strict=True)})
    return [results[d] for d in cell_dirs]


def plan_groups(spec, cells_and_dirs, memory_bytes=None, log=None) -> list[list]:
    """Groups of ``(cell, run_dir)`` pairs (one seed) to train together: cells with the same
    completed epochs, packed to fit :func:`memory_budget`; ``log`` gets one line per seed."""
    from ei_sim.training.spiking import discard_damaged_run, epochs_done

    if not cells_and_dirs:
        return []
    models, cfg = cell_setup(spec, [c for c, _ in cells_and_dirs[:1]])
    per_cell = cell_bytes(models[0], cfg)
    budget, source = memory_budget(memory_bytes)
    by_epoch: dict[int, list] = {}
    for pair in cells_and_dirs:
        discard_damaged_run(pair[1], log)  # a damaged cell run trains again, never resumes
        by_epoch.setdefault(epochs_done(pair[1]), []).append(pair)
    groups = [g for done in sorted(by_epoch) for g in pack(by_epoch[done], per_cell, budget)]
    if log is not None:
        log(packing_line(cfg.seed, groups, per_cell, budget, source))
    return groups


def run_vmapped(spec, todo, cell_root, finish, running=None, on_epoch=None,
                memory_bytes=None, log=print) -> None:  # fmt: skip
    """The grid's vmap executor: for each seed, train the unfinished cells ``todo`` =
    [(w_ei, w_ie, seed, name)] in packed groups (run files in ``cell_root/<name>``), and
    ``finish(name, result)`` each cell once its group is done; ``running(epochs)`` is told
    the completed epochs of the cells in training after every epoch."""
    for seed in sorted({c[2] for c in todo}):
        pairs = [(c[:3], os.path.join(cell_root, c[3])) for c in todo if c[2] == seed]
        names = {os.path.join(cell_root, c[3]): c[3] for c in todo if c[2] == seed}
        for group in plan_groups(spec, pairs, memory_bytes, log):
            size = len(group)

            def after_epoch(done, size=size):
                if running is not None:
                    running(done * size)

            outs = train_group(spec, [c for c, _ in group], [d for _, d in group], on_epoch,
                               after_epoch=after_epoch)  # fmt: skip
            for (_, cell_dir), out in zip(group, outs, strict=True):
                finish(names[cell_dir], out)


def _cell_result(cell, result) -> dict:
    from ei_sim.sim.spectrum import verdict_word

    m, b = result.metrics, result.best_epoch - 1
    summary = {
        "w_ei": cell[0], "w_ie": cell[1], "seed": cell[2],
        "best_accuracy": result.best_accuracy, "final_accuracy": result.final_accuracy,
        "best_epoch": result.best_epoch, "rate_e_Hz": float(m["test_rate_e_Hz"][b]),
        "rate_i_Hz": float(m["test_rate_i_Hz"][b]), "gamma_peak_Hz": float(m["gamma_peak_Hz"][b]),
        "gamma_rhythmic": float(m["gamma_rhythmic"][b]),
        "gamma_verdict": verdict_word(m["gamma_rhythmic"][b], m["gamma_p_value"][b],
                                      m["ref_gamma_peak_Hz"][b]),
        "run_dir": result.run_dir, "epochs": len(m["test_accuracy"]),
    }  # fmt: skip
    weights = {k: np.asarray(v) for k, v in result.best_weights._asdict().items() if v is not None}
    return {"summary": summary, "metrics": m, "weights": weights}
