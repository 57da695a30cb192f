"""Command-line interface: ``ei-sim <command> ...``, one module per command.

``simulate``, ``train`` (and ``eval``), ``grid``, ``sweep``, ``rate``, ``analyze`` (and
``meanfield``, ``report``), ``video``, ``export``, ``reproduce`` and ``verify`` each have a
module here with ``register(subparsers) -> {command: handler}``; :mod:`ei_sim.cli.checks`
holds the validation every handler runs before any work, :mod:`ei_sim.cli.locks` the locks
of each command's outputs (one writer per output).

Every user error (bad flag values, missing files, unknown models, an output another command
is writing, a damaged file, a full disk) ends in one line on stderr and exit status 2;
nothing half-written is left behind (all files are written atomically).
"""

from __future__ import annotations

import argparse
import math
import os
import sys

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class UserError(Exception):
    """A problem with the user's input, reported as one line and exit status 2."""


class OneLineParser(argparse.ArgumentParser):
    """argparse with its errors on one line (``--help`` still prints the usage)."""

    def error(self, message):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}; see {self.prog} --help\n")


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be > 0 and finite, got {text}")
    return value


# Each command's module (``register(subparsers) -> {command: handler}``), in the order
# ``ei-sim --help`` lists them; tests/test_startup_caches.py checks it against the modules.
COMMAND_MODULES = {
    "simulate": "simulate", "train": "train", "eval": "train", "grid": "grid",
    "sweep": "sweep", "rate": "rate", "analyze": "analyze", "meanfield": "analyze",
    "report": "analyze", "video": "video", "export": "export", "reproduce": "reproduce",
    "params": "params_cmd", "study": "study", "verify": "verify",
}  # fmt: skip


def _register(sub, modules) -> dict:
    """Add the parsers of ``modules`` (names in :data:`COMMAND_MODULES`); return {command:
    handler}. This subpackage is the only place that wires the core, the presets (models),
    sweeps and analysis together: none of them imports it, and the core imports none of them
    (tests/test_architecture.py)."""
    import importlib

    handlers = {}
    for name in modules:
        handlers.update(importlib.import_module(f"ei_sim.cli.{name}").register(sub))
    return handlers


def build_parser(command: str | None = None):
    """The parser of every command, or only of ``command``'s module when that names one: a
    command's start-up then imports only what that command needs (building every command's
    parser imports JAX and the rate model, about 5 s without bytecode)."""
    from ei_sim import __version__

    parser = OneLineParser(
        prog="ei-sim",
        description="Conductance-based spiking E-I networks: simulate, train, sweep, analyse.",
    )
    parser.add_argument("--version", action="version", version=f"ei-sim {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    if command in COMMAND_MODULES:
        return parser, _register(sub, [COMMAND_MODULES[command]])
    return parser, _register(sub, dict.fromkeys(COMMAND_MODULES.values()))


def main(argv=None) -> int:
    from_console, argv = argv is None, sys.argv[1:] if argv is None else list(argv)
    from ei_sim.cli.interrupts import exit_after_interrupt, guard_interrupts
    from ei_sim.cli.locks import identify

    guard_interrupts()
    identify(argv)
    command = argv[0] if argv and not argv[0].startswith("-") else None
    try:
        parser, handlers = build_parser(command)
        args = parser.parse_args(argv)
        code = _run(handlers, args)
    except KeyboardInterrupt:  # while starting up, before a command ran
        print(f"ei-sim{' ' + command if command else ''}: interrupted", file=sys.stderr)
        code = EXIT_INTERRUPTED
    if from_console and code == EXIT_INTERRUPTED:
        exit_after_interrupt(code)  # no teardown under a compilation still running
    if from_console and command == "simulate":
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


def one_line(err: BaseException) -> str:
    """An error as one line for the user: its first line, and the command-line way out the
    core names in Python terms (``cli_hint``), if any; a damaged file's line says how to
    learn more."""
    from ei_sim.store.checksum import Damaged

    text = str(err).strip()
    message = text.splitlines()[0] if text else type(err).__name__
    if isinstance(err, Damaged):
        message += f"; ei-sim verify {err.path} lists every damaged part"
    hint = getattr(err, "cli_hint", None)
    return f"{message}; {hint}" if hint else message


def _run(handlers, args) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from ei_sim.sim.compile_cache import enable_on_import

    # JAX's persistent compilation cache (EI_SIM_COMPILE_CACHE=0: off), from JAX's first import
    enable_on_import()
    try:
        return handlers[args.command](args)
    except (UserError, ValueError, OSError) as err:
        print(f"ei-sim {args.command}: error: {one_line(err)}", file=sys.stderr)
        return EXIT_USAGE
    except RuntimeError as err:  # HDF5's errors of a full disk, where no writer caught them
        from ei_sim.store.atomic import is_disk_full

        if not is_disk_full(err):
            raise
        print(f"ei-sim {args.command}: error: no space left on device ({one_line(err)[:120]})",
              file=sys.stderr)  # fmt: skip
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"ei-sim {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
