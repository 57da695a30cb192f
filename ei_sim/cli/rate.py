"""``ei-sim rate``: train and analyse the Wilson-Cowan / TIDE rate model (256 units, 80 % E).

``register(subparsers)`` adds the ``rate`` command and returns ``{"rate": handler}``; the
handler raises ValueError for bad input (the main CLI prints one line and exits with 2).

    ei-sim rate train [--tier tiny|medium|long] [--epochs N] [--steps-internal K]
                      [--tau-e-ms] [--tau-i-ms] [--e-fraction] [--seed] [--out FILE.h5] ...
    ei-sim rate analyze [RUN.h5]      (an untrained model from --seed when no file is given)
"""

from __future__ import annotations

import argparse

from ei_sim.cli.locks import holds, store_outputs


def _add_train(sub) -> None:
    from ei_sim.rate.train import TIERS

    p = sub.add_parser("train", help="train the rate model on an MNIST tier")
    p.add_argument("--tier", choices=tuple(TIERS), default="tiny", help="data tier (default tiny)")
    p.add_argument("--epochs", type=int, default=None, help="epochs (default: the tier's)")
    p.add_argument("--steps-internal", type=int, default=25, help="Euler steps K (default 25)")
    p.add_argument("--tau-e-ms", type=float, default=20.0, help="E time constant (default 20)")
    p.add_argument("--tau-i-ms", type=float, default=10.0, help="I time constant (default 10)")
    p.add_argument("--dt-ms", type=float, default=1.0, help="Euler step in ms (default 1)")
    p.add_argument("--e-fraction", type=float, default=0.8, help="E share of units (0.8)")
    p.add_argument("--activation", default="relu", help="relu, softplus or sigmoid")
    p.add_argument("--seed", type=int, default=42, help="init and shuffling seed (default 42)")
    p.add_argument("--out", default=None, help="write the run to this .h5 file (a rate-model "
                   "run there is replaced; any other file is refused)")  # fmt: skip
    p.add_argument("--learning-rate", type=float, default=3e-3, help="Adam step (3e-3)")
    p.add_argument("--no-dale", action="store_true", help="drop the Dale projection (ablation)")
    p.add_argument("--spectral-weight", type=float, default=1.0, help="0 turns it off (1.0)")
    p.add_argument("--rho-ee-target", type=float, default=0.9, help="hinge target (0.9)")
    p.add_argument("--rho-ii-target", type=float, default=9.0, help="hinge target (9.0)")
    p.add_argument("--ratio-weight", type=float, default=0.0, help="E-I ratio term (off)")
    p.add_argument("--ratio-target", type=float, default=0.5, help="E/I rate target (0.5)")
    p.add_argument("--residual-weight", type=float, default=0.0, help="fixed-point residual")
    p.add_argument("--lds-every", type=int, default=10, help="LDS check every N steps (10)")
    p.add_argument("--quiet", action="store_true", help="no per-epoch lines")


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


@holds(store_outputs)
def cmd_train(args) -> int:
    from ei_sim.cli.checks import check_rate_train
    from ei_sim.rate.network import WCConfig
    from ei_sim.rate.train import RateTrainConfig, summary_line, train_rate

    check_rate_train(args)
    config = WCConfig(
        steps_internal=args.steps_internal, tau_e_ms=args.tau_e_ms, tau_i_ms=args.tau_i_ms,
        dt_ms=args.dt_ms, e_fraction=args.e_fraction, activation=args.activation,
    )  # fmt: skip
    train = RateTrainConfig.for_tier(
        args.tier, epochs=args.epochs, seed=args.seed,
        learning_rate=args.learning_rate, dale=not args.no_dale,
        spectral_weight=args.spectral_weight, rho_ee_target=args.rho_ee_target,
        rho_ii_target=args.rho_ii_target, ratio_weight=args.ratio_weight,
        ratio_target=args.ratio_target, residual_weight=args.residual_weight,
        lds_every_steps=args.lds_every,
    )  # fmt: skip
    result = train_rate(config, train, args.out, progress=not args.quiet)
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
