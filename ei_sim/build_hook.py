"""The build's hooks (``[tool.setuptools.cmdclass]`` in pyproject.toml; used by the build only):
a built copy of ei-sim carries the commit it was built from in ``ei_sim/build_commit.txt``, so
that its files' provenance names that commit where no git checkout is at hand
(``ei_sim.store.attrs.git_commit``). A wheel built from a checkout (``pip install .``,
``pip wheel .``) gets the checkout's commit; an sdist carries it too, and so does a wheel built
from that sdist. Nothing is written (and a file left by an earlier build is removed) when the
source is neither: a tree without git, or one inside another project's checkout."""

import os

from setuptools.command.build_py import build_py
from setuptools.command.sdist import sdist

from ei_sim.gitinfo import commit_of, git, tracks

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the source tree
FILE = "build_commit.txt"


def source_commit(root: str = HERE) -> str:
    """The commit of the checkout whose top is ``root`` and which tracks ``ei_sim/__init__.py``
    (:func:`ei_sim.gitinfo.commit_of`); "" when ``root`` is no such checkout or git is
    missing."""
    top = git(root, "rev-parse", "--show-toplevel")
    if top is None or top.returncode != 0:
        return ""
    if os.path.realpath(top.stdout.strip()) != os.path.realpath(root):
        return ""  # another project's checkout around this tree
    if not tracks(root, "ei_sim/__init__.py"):
        return ""
    commit = commit_of(root)
    return "" if commit == "unknown" else commit


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
