"""``ei-sim train`` and ``ei-sim eval``: the training recipe and evaluation of stored runs."""

from __future__ import annotations

import os
import sys

from ei_sim.cli.locks import holds, train_outputs


def add_training_options(p, *, budget: str = "off", tier: str = "medium",
                         video_help: str | None = None) -> None:  # fmt: skip
    """The options ``train`` and ``grid`` share (``budget``, ``tier``: their defaults)."""
    from ei_sim.cli import options

    options.add_recipe(p, tier=tier, budget=budget)
    p.add_argument("--n-e", type=int, default=None, help="E cells, N_I = N_E / 4 (default: the "
                   "tier's)")  # fmt: skip
    p.add_argument("--t-ms", type=float, default=None, help="trial length in ms (default: the "
                   "tier's)")  # fmt: skip
    p.add_argument("--train-weights", default=None, help="comma list of trained blocks "
                   "(default w_in,w_out; add w_ei,w_ie to train the loop)")  # fmt: skip
    options.add_parameters(p)
    video_help = video_help or ("store a snapshot of the reference trial after every epoch "
                                "and render an MP4 at the end")  # fmt: skip
    p.add_argument("--video", action="store_true", help=video_help)
    options.add_quiet(p)


def _add_train(sub) -> None:
    from ei_sim.cli import options

    p = sub.add_parser("train", help="train a spiking classifier on MNIST (BPTT)",
                       description="Surrogate-gradient training (BPTT) of a spiking MNIST "
                       "classifier into RUN_DIR/run.h5 (default tier medium: N_E 1024, "
                       "200 ms trials, 2,000 samples, 10 epochs).")  # fmt: skip
    options.add_model(p)
    options.add_couplings(p)
    add_training_options(p)
    p.add_argument("--out", default="runs/train", help="run directory (default runs/train; "
                   "made when missing; a run in it is continued only with --resume)")  # fmt: skip
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its "
                   "last completed epoch (also to more --epochs than it first had)")  # fmt: skip
    p.add_argument(
        "--devices",
        type=int,
        default=None,
        help="split each batch over this many "
        "CPU devices, one per core (default 0: every core this process may use)",
    )


def build_run(args):
    """The frozen (model, TrainConfig) pair the training options describe."""
    from ei_sim.cli import options

    targets = options.build_targets(args)
    return targets["model"], targets["train"]


def video_hook():
    """The per-epoch snapshot writer for ``--video`` (from the analysis package)."""
    from ei_sim.analysis.video_hook import snapshot_writer

    return snapshot_writer


@holds(train_outputs)
def cmd_train(args) -> int:
    from ei_sim.cli.checks import check_recipe, check_train, devices_note
    from ei_sim.sim.parallel import cpu_cores, parts_for, use_cpu_cores
    from ei_sim.training.errors import TrainingFailed
    from ei_sim.training.spiking import train

    check_train(args)
    model, cfg = build_run(args)
    check_recipe(model, cfg)
    use_cpu_cores(cfg.devices or None)  # before JAX's first operation
    import jax

    used = parts_for(cfg.batch_size, len(jax.devices()), cfg.devices)
    devices_note(cfg.devices, cfg.batch_size, cpu_cores(), used)
    from ei_sim.cli.interrupts import raise_if_interrupted

    try:
        raise_if_interrupted()  # one a library swallowed while the command started
        result = train(model, cfg, args.out, resume=args.resume, progress=not args.quiet,
                       on_epoch=video_hook() if args.video else None,
                       after_epoch=lambda _done: raise_if_interrupted())  # fmt: skip
    except KeyboardInterrupt:
        print(interrupted_line(args.out))
        return 130
    except TrainingFailed as err:
        print(f"ei-sim train: error: {err}", file=sys.stderr)
        return 1
    from ei_sim.training.spiking import gamma_summary

    m = result.metrics
    best = {k: v[result.best_epoch - 1] for k, v in m.items()}
    print(
        f"{model.name}: best test accuracy {100 * result.best_accuracy:.2f} % (epoch "
        f"{result.best_epoch}), E {best['test_rate_e_Hz']:.2f} Hz, "
        f"I {best['test_rate_i_Hz']:.2f} Hz, {gamma_summary(best, 1000.0 / model.config.t_ms)}"
        f"; run in {args.out}"
    )
    if args.video:
        from ei_sim.analysis.video import render_run
        from ei_sim.store.paths import run_path

        info = render_run(run_path(args.out))
        print(f"video: {info.path} ({info.n_frames} frames)")
    return 0


def interrupted_line(run_dir: str) -> str:
    """What an interrupted training kept: its completed epochs, or nothing at all."""
    from ei_sim.store.attrs import read_attrs
    from ei_sim.store.paths import run_path

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
    p.add_argument(
        "--weights",
        choices=("best", "last"),
        default="best",
        help="the best epoch's weights (default) or the last epoch's",
    )


def cmd_eval(args) -> int:
    from ei_sim.cli.checks import check_eval
    from ei_sim.sim.parallel import use_cpu_cores
    from ei_sim.sim.spectrum import gamma_text
    from ei_sim.training.stored import evaluate_run_and_reference

    check_eval(args)
    use_cpu_cores()  # the test trials split over the cores
    ev, ref = evaluate_run_and_reference(args.run_dir, args.w_in_scale, args.w_ei_scale,
                                         args.w_ie_scale, args.weights, devices=0)  # fmt: skip
    gamma = "none" if ev.gamma_peak_Hz != ev.gamma_peak_Hz else f"{ev.gamma_peak_Hz:.1f} Hz"
    v = ref.verdict
    tested = gamma_text(v.frequency_Hz if v is not None else None, v)
    print(
        f"test accuracy {100 * ev.accuracy:.2f} %, E {ev.rate_e_Hz:.2f} Hz, "
        f"I {ev.rate_i_Hz:.2f} Hz, gamma peak {gamma} (test set)\n"
        f"reference trial: gamma peak {tested}"
    )
    return 0


def register(sub) -> dict:
    _add_train(sub)
    _add_eval(sub)
    return {"train": cmd_train, "eval": cmd_eval}
