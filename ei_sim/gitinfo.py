"""The git commit of a source tree, with the standard library only (the build hook of
``ei_sim.build_hook`` and the provenance of ``ei_sim.store.attrs`` both use it)."""

from __future__ import annotations

import subprocess


def git(folder: str, *args: str, timeout_s: float = 10.0):
    """``git -C folder ARGS`` (``--no-optional-locks``: never the user's ``.git/index.lock``);
    None when git is missing or does not answer in time."""
    try:
        return subprocess.run(["git", "--no-optional-locks", "-C", folder, *args],
                              capture_output=True, text=True, timeout=timeout_s)  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None


def commit_of(folder: str) -> str:
    """``HEAD`` of the checkout holding ``folder``, with ``+dirty`` when tracked files differ
    from it (``+unchecked`` when git cannot say); "unknown" outside a checkout."""
    head = git(folder, "rev-parse", "HEAD")
    if head is None or head.returncode != 0:
        return "unknown"
    status = git(folder, "status", "--porcelain", "--untracked-files=no")
    if status is None or status.returncode != 0:
        return head.stdout.strip() + "+unchecked"
    return head.stdout.strip() + ("+dirty" if status.stdout.strip() else "")


def tracks(folder: str, path: str) -> bool:
    """Whether the checkout holding ``folder`` tracks ``path`` (relative to ``folder``)."""
    out = git(folder, "ls-files", "--error-unmatch", path)
    return out is not None and out.returncode == 0
