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


def _register_all(sub) -> dict:
    """Add every command's parser; return {command: handler}. Sweeps, analysis, the rate
    model and videos are wired in here only: the core never imports them."""
    from ei_sim import (
        cli_analyze,
        cli_export,
        cli_rate,
        cli_reproduce,
        cli_simulate,
        cli_sweeps,
        cli_train,
        cli_video,
    )

    handlers = {}
    for module in (cli_simulate, cli_train, cli_sweeps, cli_rate, cli_analyze, cli_video,
                   cli_export, cli_reproduce):  # fmt: skip
        handlers.update(module.register(sub))
    return handlers


def build_parser(command: str | None = None):
    """The parser of every command, or only of ``simulate`` when that is the command (its
    start-up then skips importing the training, sweep and analysis modules)."""
    parser = argparse.ArgumentParser(
        prog="ei-sim",
        description="Conductance-based spiking E-I networks: simulate, train, sweep, analyse.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    if command == "simulate":
        from ei_sim import cli_simulate

        return parser, cli_simulate.register(sub)
    return parser, _register_all(sub)


def main(argv=None) -> int:
    from_console, argv = argv is None, sys.argv[1:] if argv is None else list(argv)
    parser, handlers = build_parser(argv[0] if argv else None)
    args = parser.parse_args(argv)
    code = _run(handlers, args)
    if from_console and args.command == "simulate":
        _exit_now(code)
    return code


def _exit_now(code: int) -> None:
    """End the process without Python's teardown of every module (about 0.3 s once JAX is
    imported): the standard streams are flushed and the atexit handlers run first. Only when
    no other non-daemon thread is running."""
    import atexit
    import threading

    main_thread = threading.main_thread()
    if any(t is not main_thread and not t.daemon for t in threading.enumerate()):
        return
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _run(handlers, args) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from ei_sim.compile_cache import enable

    enable()  # JAX's persistent compilation cache (EI_SIM_COMPILE_CACHE=0: off)
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
