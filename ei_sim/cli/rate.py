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

from ei_sim.cli.locks import holds, store_outputs

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


RATE_HELP = {
    "steps_internal": "Euler steps K per input", "tau_e_ms": "E time constant in ms",
    "tau_i_ms": "I time constant in ms", "dt_ms": "Euler step in ms",
    "e_fraction": "E share of the units", "activation": "relu, softplus or sigmoid",
    "spectral_weight": "weight of the spectral hinge, 0: off",
    "rho_ee_target": "hinge target of rho(W_EE)", "rho_ii_target": "hinge target of rho(W_II)",
    "ratio_weight": "weight of the E-I ratio term, 0: off",
    "ratio_target": "E/I rate ratio target", "residual_weight": "weight of the fixed-point "
    "residual, 0: off", "lds_every_steps": "LDS check every N steps",
}  # fmt: skip


def _add_train(sub) -> None:
    from ei_sim.cli import options
    from ei_sim.rate.network import WCConfig
    from ei_sim.rate.train import RateTrainConfig

    p = sub.add_parser("train", help="train the rate model on an MNIST tier",
                       description="Train the Wilson-Cowan / TIDE rate model as an MNIST "
                       "classifier (default tier tiny: 300 samples, 5 epochs). Any parameter "
                       "of the network or the recipe: --set KEY=VALUE (ei-sim params --model "
                       "wilson_cowan lists them).")  # fmt: skip
    model, recipe = WCConfig(), RateTrainConfig()
    for flag, key in RATE_MODEL_FLAGS.items():
        kind = type(getattr(model, key))
        p.add_argument(flag, type=kind if kind is not str else None, default=None,
                       help=f"{RATE_HELP[key]} (default {getattr(model, key)})")  # fmt: skip
    options.add_recipe(p, RateTrainConfig, tier="tiny", budget=None)
    p.add_argument("--no-dale", action="store_true", help="drop the Dale projection (ablation)")
    for flag, key in RATE_RECIPE_FLAGS.items():
        kind = type(getattr(recipe, key))
        p.add_argument(flag, type=kind, default=None,
                       help=f"{RATE_HELP[key]} (default {getattr(recipe, key)})")  # fmt: skip
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
    p.add_argument("--quiet", action="store_true", help="no status line on stderr")


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


@holds(store_outputs)
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
    from ei_sim.cli.status import stage

    scales = np.linspace(0.0, args.max_scale, 33)
    what = (f"fixed point and Jacobian spectrum at {len(scales)} W_EI scales 0-{args.max_scale:g} "
            "(continuation and bisection of the Hopf crossing; about 10 s)")  # fmt: skip
    with stage("rate analyze", what, getattr(args, "quiet", False)):
        report = analyze(params, config, pool.images[args.digit_index], scales)
    print(f"{source}: {format_report(report)}")
    return 0
