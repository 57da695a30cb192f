"""The build's hook (``[tool.setuptools.cmdclass]`` in pyproject.toml; used by the build only):
a built copy of ei-sim (a wheel, or ``pip install .`` of a checkout) carries the commit it was
built from in ``ei_sim/build_commit.txt``, so that its files' provenance names that commit where
no git checkout is at hand (``ei_sim.store.attrs.git_commit``). Nothing is written when the
source is not a git checkout (an sdist)."""

import os
import subprocess

from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the checkout


def source_commit() -> str:
    """``git rev-parse HEAD`` of this checkout, ``+dirty`` when tracked files differ; "" if
    there is no checkout or git."""

    def git(*args):
        return subprocess.run(["git", "--no-optional-locks", "-C", HERE, *args],
                              capture_output=True, text=True, timeout=10)  # fmt: skip

    try:
        head = git("rev-parse", "HEAD")
        if head.returncode != 0:
            return ""
        status = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return ""
    dirty = status.returncode != 0 or bool(status.stdout.strip())
    return head.stdout.strip() + ("+dirty" if dirty else "")


class BuildWithCommit(build_py):
    def run(self):
        super().run()
        commit = source_commit()
        if commit and not self.editable_mode:  # an editable install reads its checkout
            path = os.path.join(self.build_lib, "ei_sim", "build_commit.txt")
            with open(path, "w") as fh:
                fh.write(commit + "\n")
