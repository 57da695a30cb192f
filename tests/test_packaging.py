"""The install leaves one top-level name, ``ei_sim``: the repository's folders ``models/``,
``sweeps/``, ``analysis/`` and the shipped data are inside it. Built as a wheel and installed
into an empty folder, the package imports from there with its data (the editable install of
the checkout is what the rest of the suite uses)."""

import os
import subprocess
import sys
import tarfile
import zipfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.slow
def test_the_wheel_holds_one_top_level_name_and_imports_from_a_clean_folder(tmp_path):
    dist, target = tmp_path / "dist", tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(dist), ROOT], check=True, timeout=300)  # fmt: skip
    (wheel,) = dist.glob("ei_sim-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        tops = {name.split("/")[0] for name in zf.namelist()}
        names = set(zf.namelist())
    assert {t for t in tops if not t.endswith(".dist-info")} == {"ei_sim"}, tops
    for must in ("ei_sim/models/ping.py", "ei_sim/sweeps/grid.py", "ei_sim/analysis/report.py",
                 "ei_sim/reference/pinglab.json", "ei_sim/sim/native/network.cc"):  # fmt: skip
        assert must in names, must
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target",
                    str(target), str(wheel)], check=True, timeout=300)  # fmt: skip
    installed = {p for p in os.listdir(target) if not p.endswith(".dist-info")}
    assert installed - {"bin"} == {"ei_sim"}, installed  # bin/: the ei-sim console script
    probe = (
        "import ei_sim, ei_sim.models, ei_sim.sweeps.grid, ei_sim.analysis.reproduce.runner\n"
        "from importlib.resources import files\n"
        "from ei_sim.models import PRESETS\n"
        "print(ei_sim.__file__, ei_sim.models.__file__, ei_sim.sweeps.grid.__file__)\n"
        "print(sorted(PRESETS))\n"
        "print(files('ei_sim.reference').joinpath('pinglab.json').is_file())\n"
        "from ei_sim.analysis.reproduce.reference import DEFAULT_PATH, load_reference\n"
        "from ei_sim.analysis.reproduce.results import shipped_root\n"
        "print(DEFAULT_PATH, len(load_reference().entries) > 100, shipped_root())\n"
        "from ei_sim.store.attrs import git_commit\n"
        "print(git_commit())\n"
    )
    for git in (["init", "-q"], ["-c", "user.name=t", "-c", "user.email=t@example.org", "commit",
                                 "-q", "--allow-empty", "-m", "another project"]):  # fmt: skip
        subprocess.run(["git", "-C", str(target), *git], check=True, timeout=60)
    env = {**os.environ, "PYTHONPATH": str(target)}
    done = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env=env, check=True,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    out = done.stdout.split("\n")
    assert all(path.startswith(str(target)) for path in out[0].split()), out[0]
    assert out[1] == "['coba', 'ping', 'va_coba', 'wilson_cowan']" and out[2] == "True"
    reference, loaded, results = out[3].split()  # ei-sim reproduce finds the lab's numbers
    assert reference.startswith(str(target)) and loaded == "True", out[3]
    assert results.startswith(str(target)) and os.path.isdir(results), out[3]
    # provenance: the commit the wheel was built from, though the copy is no git checkout (and
    # the folder it is installed in is made one, to show that its commit is not taken)
    from ei_sim.store.attrs import git_commit

    assert out[4] == git_commit(ROOT) and len(out[4].split("+")[0]) == 40, out[4]
    (target / "ei_sim" / "build_commit.txt").unlink()  # a copy that names no commit
    probe = "from ei_sim.store.attrs import git_commit; print(git_commit())"
    again = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env=env, check=True,
                           capture_output=True, text=True, timeout=120)  # fmt: skip
    assert again.stdout.strip() == "unknown"  # not the commit of the checkout around it


@pytest.mark.slow
def test_an_sdist_and_its_wheel_name_the_commit_and_never_another_projects(tmp_path):
    """The sdist carries the checkout's commit, and so does a wheel built from it unpacked
    inside another project's checkout (not that project's commit). Without the sdist's file
    (a tree without git) the wheel has none, even where an earlier build of the same tree
    left one behind."""
    from ei_sim.store.attrs import git_commit

    other = tmp_path / "other"
    other.mkdir()
    for git in (["init", "-q"], ["-c", "user.name=t", "-c", "user.email=t@example.org", "commit",
                                 "-q", "--allow-empty", "-m", "another project"]):  # fmt: skip
        subprocess.run(["git", "-C", str(other), *git], check=True, timeout=60)
    code = f"from setuptools import build_meta; print(build_meta.build_sdist({str(tmp_path)!r}))"
    name = subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, capture_output=True,
                          text=True, timeout=300).stdout.split()[-1]  # fmt: skip
    with tarfile.open(tmp_path / name) as tf:
        tf.extractall(other, filter="data")
    tree = other / name.removesuffix(".tar.gz")
    assert (tree / "ei_sim" / "build_commit.txt").read_text().strip() == git_commit(ROOT)

    def wheel_commit(dist):
        subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                        "-q", "-w", str(dist), str(tree)], check=True, timeout=300)  # fmt: skip
        (wheel,) = dist.glob("ei_sim-*.whl")
        with zipfile.ZipFile(wheel) as zf:
            names = set(zf.namelist())
            return zf.read("ei_sim/build_commit.txt").decode().strip() if (
                "ei_sim/build_commit.txt" in names) else None  # fmt: skip

    assert wheel_commit(tmp_path / "dist1") == git_commit(ROOT)
    (tree / "ei_sim" / "build_commit.txt").unlink()  # a tree without git, inside another repo
    assert wheel_commit(tmp_path / "dist2") is None
