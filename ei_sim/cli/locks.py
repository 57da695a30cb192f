"""One writer per output, at the command line: each command that writes holds the locks of
its outputs (:func:`ei_sim.store.lock.exclusive`) from its start, before anything is opened
for writing, so that a second command writing the same output is refused at once, in one
line naming the first (its pid and command line), before it starts any work.

:func:`holds` wraps a command's handler; ``outputs(args)`` names the files it writes (a
training run's ``RUN_DIR/run.h5``, a simulate file, a store, an export, a report, a video).
An output whose folder is missing or read-only is not locked here: the command's own
checks say what is wrong with it (and its writers lock it when they write).
"""

from __future__ import annotations

import functools
import os

from ei_sim.store.lock import Unlockable, exclusive, set_command


def identify(argv: list[str]) -> None:
    """Tell the lock layer what this process is (``ei-sim simulate --out s.h5``), for the
    lock files it writes and the messages of the commands it blocks."""
    from ei_sim.store.lock import command_text

    set_command("ei-sim " + command_text(argv))


def _lockable(paths) -> list[str]:
    return [p for p in dict.fromkeys(paths) if p and os.path.isdir(os.path.dirname(
        os.path.abspath(p)))]  # fmt: skip


def holds(outputs):
    """Decorate a handler so that it runs holding the locks of ``outputs(args)``."""

    def wrap(handler):
        @functools.wraps(handler)
        def locked(args):
            paths = _lockable(outputs(args))
            with _all(paths):
                return handler(args)

        return locked

    return wrap


class _all:
    """Hold the locks of ``paths`` (those that cannot be made are skipped)."""

    def __init__(self, paths):
        self.paths, self.held = paths, []

    def __enter__(self):
        try:
            for path in self.paths:
                lock = exclusive(path)
                try:
                    lock.__enter__()
                except Unlockable:
                    continue
                self.held.append(lock)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc):
        while self.held:
            self.held.pop().__exit__(None, None, None)
        return False


# what each command writes -----------------------------------------------------------------


def simulate_outputs(args) -> list[str]:
    return [args.out] if args.out else []


def train_outputs(args) -> list[str]:
    return [os.path.join(args.out, "run.h5")] if args.out else []


def store_outputs(args) -> list[str]:
    """``--out`` of grid and ``rate train``."""
    return [args.out] if getattr(args, "out", None) else []


def sweep_outputs(args) -> list[str]:
    folder = args.out or args.run_dir
    if args.sweep_kind == "scale":
        return [os.path.join(folder, "scale_sweep.h5")]
    return [os.path.join(folder, f"coupling_{t}.h5")
            for t, given in (("w_ei", args.w_ei_scale), ("w_ie", args.w_ie_scale)) if given]


def report_outputs(args) -> list[str]:
    return [args.out or os.path.splitext(args.path)[0] + ".html"]


def video_outputs(args) -> list[str]:
    """A run's video (a grid's cell videos are locked one by one as they are written)."""
    path = os.path.join(args.path, "run.h5") if os.path.isdir(args.path) else args.path
    if not path.endswith(".h5") or _is_grid(path):
        return []
    return [args.out or os.path.join(os.path.dirname(os.path.abspath(path)), f"video.{args.fmt}")]


def _is_grid(path: str) -> bool:
    from ei_sim.cli.outputs import existing_kind

    return existing_kind(path) == "grid"


def export_outputs(args) -> list[str]:
    from ei_sim.analysis.export.common import default_output

    return [args.out or default_output(args.path, args.to)]
