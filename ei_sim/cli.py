"""Command-line interface: ``ei-sim <command> ...``.

Every user error (bad flag values, missing files, unknown models) ends in one line on stderr
and exit status 2; nothing half-written is left behind (all stores are written atomically).
"""

from __future__ import annotations

import argparse
import os
import sys

EXIT_USAGE = 2


class UserError(Exception):
    """A problem with the user's input, reported as one line and exit status 2."""


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def _add_simulate(sub) -> None:
    p = sub.add_parser(
        "simulate",
        help="simulate a preset network for one trial and write an HDF5 file",
        description="Simulate one trial of a preset network (untrained weights from --seed) "
        "driven by one MNIST digit of the embedded pool, print E/I rates and the gamma peak, "
        "and optionally write spikes and population activity to HDF5.",
    )
    p.add_argument("--model", default="ping", help="coba, ping or va_coba (default: ping)")
    p.add_argument("--t-ms", type=_positive_float, default=None, help="trial length in ms "
                   "(default: the preset's, 200 ms; va_coba 1000 ms)")  # fmt: skip
    p.add_argument("--dt-ms", type=_positive_float, default=None, help="time step in ms "
                   "(default 0.1); must not exceed the refractory periods")  # fmt: skip
    p.add_argument("--seed", type=int, default=0, help="seed of weights, initial state and "
                   "input spikes (default 0)")  # fmt: skip
    p.add_argument("--digit", type=int, default=0, help="MNIST class 0-9 whose first example "
                   "in the embedded pool drives the network (default 0; ignored by va_coba)")  # fmt: skip
    p.add_argument("--out", default=None, help="write the result to this .h5 file "
                   "(its directory must exist)")  # fmt: skip


def cmd_simulate(args) -> int:
    from ei_sim.data import embedded_pool, first_of_class
    from ei_sim.simulation import run_preset, summary_line, write_run
    from ei_sim.storage import check_output_path
    from models import get_model

    changes = {}
    if args.t_ms is not None:
        changes["t_ms"] = args.t_ms
    if args.dt_ms is not None:
        changes["dt_ms"] = args.dt_ms
    model = get_model(args.model, **changes)
    if args.out:
        check_output_path(args.out)
    images = None
    if model.config.n_in > 0:
        pool = embedded_pool()
        images = pool.images[[first_of_class(pool, args.digit)]]
    result = run_preset(model, seed=args.seed, images=images)
    line = summary_line(model.name, result)
    if args.out:
        write_run(args.out, model, result, {"seed": args.seed, "digit": args.digit})
        line += f" (wrote {args.out})"
    print(line)
    return 0


def _register_all(sub) -> dict:
    """Add every command's parser; return {command: handler}. Sweeps, analysis, the rate
    model and videos are wired in here only: the core never imports them."""
    from ei_sim import (
        cli_analyze,
        cli_export,
        cli_rate,
        cli_reproduce,
        cli_sweeps,
        cli_train,
        cli_video,
    )

    _add_simulate(sub)
    handlers = {"simulate": cmd_simulate}
    for module in (cli_train, cli_sweeps, cli_rate, cli_analyze, cli_video, cli_export,
                   cli_reproduce):  # fmt: skip
        handlers.update(module.register(sub))
    return handlers


def build_parser():
    parser = argparse.ArgumentParser(
        prog="ei-sim",
        description="Conductance-based spiking E-I networks: simulate, train, sweep, analyse.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    return parser, _register_all(sub)


def main(argv=None) -> int:
    parser, handlers = build_parser()
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        return handlers[args.command](args)
    except (UserError, ValueError, OSError) as err:
        message = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        print(f"ei-sim {args.command}: error: {message}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"ei-sim {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
