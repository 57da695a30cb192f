"""Status lines: what a command is doing while it works for more than about two seconds.

One line on stderr per stage (``ei-sim export: writing 1,280 spike trains with Neo's NIX
writer ...``), flushed at once, and the seconds it took when it ends; nothing with
``--quiet``. Standard output keeps only the command's result.
"""

from __future__ import annotations

import contextlib
import sys
import time


def status(command: str, text: str, quiet: bool = False) -> None:
    """Print ``ei-sim COMMAND: TEXT`` on stderr (unless ``quiet``)."""
    if not quiet:
        print(f"ei-sim {command}: {text}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def stage(command: str, text: str, quiet: bool = False):
    """``with stage("export", "writing ..."):``: the line before, ``done in N s`` after."""
    status(command, f"{text} ...", quiet)
    t0 = time.perf_counter()
    yield
    status(command, f"done in {time.perf_counter() - t0:.1f} s", quiet)
