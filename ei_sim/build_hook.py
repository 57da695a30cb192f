"""The build's hooks (``[tool.setuptools.cmdclass]`` in pyproject.toml; used by the build only):
a built copy of ei-sim carries the commit it was built from in ``ei_sim/build_commit.txt``, so
that its files' provenance names that commit where no git checkout is at hand
(``ei_sim.store.attrs.git_commit``). A wheel built from a checkout (``pip install .``,
``pip wheel .``) gets the checkout's commit; an sdist carries it too, and so does a wheel built
from that sdist. Nothing is written (and a file left by an earlier build is removed) when the
source is neither: a tree without git, or one inside another project's checkout.

Self-contained on purpose (the standard library and setuptools only): an isolated build
loads this file by its path, where the ei_sim package itself cannot be imported, so its git
calls stand beside those of ``ei_sim.store.attrs`` instead of sharing them (tried: importing a
shared helper broke ``pip install -e .``)."""

import os
import subprocess

from setuptools.command.build_py import build_py
from setuptools.command.sdist import sdist

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the source tree
FILE = "build_commit.txt"


def source_commit(root: str = HERE) -> str:
    """``git rev-parse HEAD`` of the checkout whose top is ``root`` and which tracks
    ``ei_sim/__init__.py``, with ``+dirty`` when tracked files differ from it (``+unchecked``
    when git cannot say); "" when ``root`` is no such checkout or git is missing."""

    def git(*args):
        return subprocess.run(["git", "--no-optional-locks", "-C", root, *args],
                              capture_output=True, text=True, timeout=10)  # fmt: skip

    try:
        top = git("rev-parse", "--show-toplevel")
        if top.returncode != 0 or os.path.realpath(top.stdout.strip()) != os.path.realpath(root):
            return ""  # no checkout, or another project's around this tree
        if git("ls-files", "--error-unmatch", "ei_sim/__init__.py").returncode != 0:
            return ""
        head = git("rev-parse", "HEAD")
        if head.returncode != 0:
            return ""
        status = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return ""
    if status.returncode != 0:
        return head.stdout.strip() + "+unchecked"
    return head.stdout.strip() + ("+dirty" if status.stdout.strip() else "")


class BuildWithCommit(build_py):
    """build_py, then the commit into the built package (an sdist's own file, copied as
    package data, is kept when the tree is no checkout)."""

    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):  # an editable install reads its checkout
            return
        path = os.path.join(self.build_lib, "ei_sim", FILE)
        commit = source_commit()
        if commit:
            with open(path, "w") as fh:
                fh.write(commit + "\n")
        elif not os.path.isfile(os.path.join(HERE, "ei_sim", FILE)) and os.path.exists(path):
            os.remove(path)  # left by an earlier build of another commit


class SdistWithCommit(sdist):
    """sdist, with the checkout's commit written into its tree."""

    def make_release_tree(self, base_dir, files):
        super().make_release_tree(base_dir, files)
        commit = source_commit()
        if commit:
            with open(os.path.join(base_dir, "ei_sim", FILE), "w") as fh:
                fh.write(commit + "\n")
