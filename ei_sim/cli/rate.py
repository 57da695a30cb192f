"""``ei-sim rate``: train and analyse the Wilson-Cowan / TIDE rate model (256 units, 80 % E).

``register(subparsers)`` adds the ``rate`` command and returns ``{"rate": handler}``; the
handler raises ValueError for bad input (the main CLI prints one line and exits with 2).

    ei-sim rate train [--tier tiny|medium|long] [--epochs N] [--steps-internal K]
                      [--tau-e-ms] [--tau-i-ms] [--e-fraction] [--seed] [--out DIR] ...
    ei-sim rate analyze [RUN.h5]      (an untrained model from --seed when no file is given)
"""

from __future__ import annotations

import argparse
import os

RATE_MODEL_FLAGS = {
    "--steps-internal": "steps_internal", "--tau-e-ms": "tau_e_ms", "--tau-i-ms": "tau_i_ms",
    "--dt-ms": "dt_ms", "--e-fraction": "e_fraction", "--activation": "activation",
}  # fmt: skip
RATE_RECIPE_FLAGS = {
    "--spectral-weight": "spectral_weight", "--rho-ee-target": "rho_ee_target",
    "--rho-ii-target": "rho_ii_target", "--ratio-weight": "ratio_weight",
    "--ratio-target": "ratio_target", "--residual-weight": "residual_weight",
    "--lds-every": "lds_every_steps",
}  # fmt: skip


def _add_train(sub) -> None:
    from ei_sim.cli import options
    from ei_sim.rate.train import RateTrainConfig

    p = sub.add_parser("train", help="train the rate model on an MNIST tier",
                       description="Train the Wilson-Cowan / TIDE rate model as an MNIST "
                       "classifier (default tier tiny: 300 samples, 5 epochs). Any parameter "
                       "of the network or the recipe: --set KEY=VALUE (ei-sim params --model "
                       "wilson_cowan lists them).")  # fmt: skip
    p.add_argument("--steps-internal", type=int, default=None, help="Euler steps K (25)")
    p.add_argument("--tau-e-ms", type=float, default=None, help="E time constant (20 ms)")
    p.add_argument("--tau-i-ms", type=float, default=None, help="I time constant (10 ms)")
    p.add_argument("--dt-ms", type=float, default=None, help="Euler step (1 ms)")
    p.add_argument("--e-fraction", type=float, default=None, help="E share of units (0.8)")
    p.add_argument("--activation", default=None, help="relu (default), softplus or sigmoid")
    options.add_recipe(p, RateTrainConfig, tier="tiny", budget=None)
    p.add_argument("--no-dale", action="store_true", help="drop the Dale projection (ablation)")
    p.add_argument("--spectral-weight", type=float, default=None, help="0 turns it off (1.0)")
    p.add_argument("--rho-ee-target", type=float, default=None, help="hinge target (0.9)")
    p.add_argument("--rho-ii-target", type=float, default=None, help="hinge target (9.0)")
    p.add_argument("--ratio-weight", type=float, default=None, help="E-I ratio term (0: off)")
    p.add_argument("--ratio-target", type=float, default=None, help="E/I rate target (0.5)")
    p.add_argument("--residual-weight", type=float, default=None, help="fixed-point residual "
                   "term (0: off)")  # fmt: skip
    p.add_argument("--lds-every", type=int, default=None, help="LDS check every N steps (10)")
    options.add_parameters(p)
    p.add_argument("--out", default=None, help="run directory (writes OUT/run.h5; a path "
                   "ending in .h5 is the file itself); a rate-model run there is replaced, "
                   "any other file refused")  # fmt: skip
    options.add_quiet(p)
    p.set_defaults(model_default="wilson_cowan")


def rate_out_file(out: str | None) -> str | None:
    """The rate-model run file of ``--out``: a run directory's ``run.h5``, or the .h5 path."""
    if out is None:
        return None
    from ei_sim.store.paths import run_path

    return out if out.endswith(".h5") else run_path(out)


def _add_analyze(sub) -> None:
    p = sub.add_parser("analyze", help="fixed point, spectrum and oscillation onset")
    p.add_argument("run", nargs="?", default=None, help="a run file from 'rate train --out'")
    p.add_argument("--seed", type=int, default=42, help="seed of the untrained model (42)")
    p.add_argument("--digit-index", type=int, default=0, help="embedded-pool image used as input")
    p.add_argument("--max-scale", type=float, default=8.0, help="largest W_EI scale scanned (8)")


def register(subparsers) -> dict:
    """Add ``rate`` (with ``train`` and ``analyze``) and return ``{"rate": handler}``."""
    p = subparsers.add_parser(
        "rate",
        help="Wilson-Cowan rate model: train, analyze",
        description="The Wilson-Cowan / TIDE rate model: 256 units (80 % E), forward Euler, "
        "K internal steps, four non-negative blocks, trained as an MNIST classifier.",
    )
    sub = p.add_subparsers(dest="rate_command", required=True, metavar="SUBCOMMAND")
    _add_train(sub)
    _add_analyze(sub)
    return {"rate": handle}


def handle(args: argparse.Namespace) -> int:
    if args.rate_command == "train":
        return cmd_train(args)
    if args.rate_command == "analyze":
        return cmd_analyze(args)
    raise ValueError(f"unknown rate subcommand {args.rate_command!r}; use train or analyze")


def cmd_train(args) -> int:
    from ei_sim.cli import options
    from ei_sim.cli import params as P
    from ei_sim.cli.checks import check_rate_train
    from ei_sim.rate.train import RateTrainConfig, summary_line, train_rate

    out = rate_out_file(args.out)
    check_rate_train(args, out)
    targets = options.build_targets(args, recipe_cls=RateTrainConfig, tiered=False,
                                    family=("rate",), model_flags=RATE_MODEL_FLAGS)  # fmt: skip
    extra = options.flag_assignments(args, recipe=True, model_flags={})
    extra = [a for a in extra if a[0].startswith("train.")]
    for flag, key in RATE_RECIPE_FLAGS.items():
        value = getattr(args, flag[2:].replace("-", "_"))
        if value is not None:
            extra.append((f"train.{key}", value, f"{flag} {value}"))
    if args.no_dale:
        extra.append(("train.dale", False, "--no-dale"))
    sets = [P.parse_assignment(text) for text in args.assignments]
    targets = P.apply(targets, extra + sets)
    if out is not None:
        os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    result = train_rate(targets["model"], targets["train"], out, progress=not args.quiet)
    print(summary_line(result))
    return 0


def cmd_analyze(args) -> int:
    from ei_sim.cli.checks import check_rate_analyze
    from ei_sim.data.mnist import pool_size

    check_rate_analyze(args)
    n_digits = pool_size("embedded")  # known without loading the pool: bad input fails at once
    if not 0 <= args.digit_index < n_digits:
        raise ValueError(f"--digit-index must lie in [0, {n_digits}), got {args.digit_index}")

    import jax
    import numpy as np

    from ei_sim.analysis.rate_analysis import analyze, format_report
    from ei_sim.data.mnist import load_pool
    from ei_sim.rate.network import WCConfig, init_params
    from ei_sim.rate.store import load_rate_run

    if args.run is None:
        config = WCConfig()
        params = init_params(jax.random.PRNGKey(args.seed), config)
        source = f"untrained (seed {args.seed})"
    else:
        config, params, _ = load_rate_run(args.run)
        source = args.run
    pool = load_pool("embedded")
    if config.n_in != pool.images.shape[1]:
        raise ValueError(f"model expects {config.n_in} inputs, MNIST has {pool.images.shape[1]}")
    scales = np.linspace(0.0, args.max_scale, 33)
    report = analyze(params, config, pool.images[args.digit_index], scales)
    print(f"{source}: {format_report(report)}")
    return 0
