"""The file layer (ei_sim.store): kind and schema_version on every file, one opener, legacy
(kind-less) files of today's layout, and the CLI's one-line refusal of another kind."""

import os

import h5py
import jax
import numpy as np
import pytest

from ei_sim.cli import main
from ei_sim.cli.kinds import noun
from ei_sim.cli.outputs import existing_kind
from ei_sim.models import get_model
from ei_sim.sim.config import to_attrs
from ei_sim.sim.model import model_from_attrs
from ei_sim.store.atomic import atomic_h5
from ei_sim.store.kinds import KINDS, kind_of, open_kind, schema_version
from ei_sim.store.run import METRICS, load_run, open_run, save_run
from ei_sim.training.config import TrainConfig
from ei_sim.training.spiking import tier_model


def _model():
    return tier_model(get_model("ping"), "tiny").replace(n_e=8, n_i=2, t_ms=20.0)


def _run_attrs(model) -> dict:
    cfg = TrainConfig.for_tier("tiny", n_samples=200, epochs=1, batch_size=8)
    return {**to_attrs(model, "model."), **to_attrs(cfg, "train."), "epochs_done": 1,
            "best_epoch": 1, "best_accuracy": 0.5}  # fmt: skip


def _write_run(run_dir: str) -> str:
    model = _model()
    weights = model.init_weights(jax.random.PRNGKey(0))
    metrics = {m: [0.5] for m in METRICS}
    os.makedirs(run_dir, exist_ok=True)
    save_run(run_dir, _run_attrs(model), metrics, weights, weights, (), "complete")
    return os.path.join(run_dir, "run.h5")


def _write_grid(path: str) -> str:
    from ei_sim.sweeps.store import add_cell, open_or_create

    open_or_create(path, {"grid.w_ei": "(1.0,)"}, force=False)
    add_cell(path, "wei1__wie2__seed0", {"w_ei": 1.0, "w_ie": 2.0}, {"test_accuracy": [0.5]},
             {"w_ei": np.ones((2, 2))})  # fmt: skip
    return path


def _write_sweep(path: str, target: str = "none") -> str:
    from ei_sim.sweeps.store import write_sweep

    result = {"scales": np.array([0.5, 1.0]), "coupling_scales": np.array([1.0]),
              "accuracy": np.zeros((1, 2)), "rate_e_Hz": np.zeros((1, 2)),
              "rate_i_Hz": np.zeros((1, 2)), "coupling_target": target, "run_dir": "r"}  # fmt: skip
    write_sweep(path, result)
    return path


def _write_reproduce(path: str) -> str:
    from ei_sim.analysis.reproduce.store import open_or_create, save_stage

    open_or_create(path, {"experiment": "coupling", "scale": "quick"})
    save_stage(path, "baseline", {"accuracy": 88.0})
    return path


def _write_simulate(path: str) -> str:
    argv = ["simulate", "--model", "va_coba", "--no-progress", "--t-ms", "5", "--out", path]
    assert main(argv) == 0
    return path


def _write_rate(path: str) -> str:
    assert main(["rate", "train", "--epochs", "1", "--out", path]) == 0
    return path


WRITERS = {
    "run": lambda tmp: _write_run(str(tmp / "run")),
    "grid": lambda tmp: _write_grid(str(tmp / "g.h5")),
    "scale_sweep": lambda tmp: _write_sweep(str(tmp / "s.h5")),
    "coupling_sweep": lambda tmp: _write_sweep(str(tmp / "c.h5"), "w_ei"),
    "reproduce": lambda tmp: _write_reproduce(str(tmp / "r.h5")),
    "simulate": lambda tmp: _write_simulate(str(tmp / "sim.h5")),
    "wilson_cowan": lambda tmp: _write_rate(str(tmp / "rate.h5")),
}


# The layout versions written today: 1 for every kind but the rate-model run (2: its
# best_epoch counts from 1).
VERSIONS = {"wilson_cowan": 2}


@pytest.mark.parametrize("kind", sorted(WRITERS))
def test_every_writer_stamps_kind_and_schema_version(kind, tmp_path):
    path = WRITERS[kind](tmp_path)
    version = VERSIONS.get(kind, 1)
    with h5py.File(path, "r") as fh:
        assert fh.attrs["kind"] == kind
        assert int(fh.attrs["schema_version"]) == KINDS[kind].schema_version == version
    with open_kind(path, kind) as fh:  # the opener accepts it
        assert kind_of(fh) == kind and schema_version(fh) == version
    assert existing_kind(path) == kind  # and the output checks name it


def test_every_kind_is_named_for_the_output_checks():
    for name, kind in KINDS.items():
        assert noun(name) == kind.noun and kind.schema_version >= 1


def test_atomic_writer_adds_the_version_of_a_declared_kind(tmp_path):
    path = str(tmp_path / "x.h5")
    with atomic_h5(path) as fh:
        fh.attrs["kind"] = "grid"  # a writer that sets kind itself
    with h5py.File(path, "r") as fh:
        assert fh.attrs["schema_version"] == 1
    with atomic_h5(path) as fh:
        fh.attrs["note"] = "no kind"  # a file of no kind stays without one
    with h5py.File(path, "r") as fh:
        assert "kind" not in fh.attrs and "schema_version" not in fh.attrs


def _one_line(err: Exception) -> str:
    text = str(err)
    assert "\n" not in text
    return text


def test_open_kind_refuses_another_kind_a_missing_file_and_a_newer_schema(tmp_path):
    grid = _write_grid(str(tmp_path / "g.h5"))
    with pytest.raises(ValueError) as err:
        open_kind(grid, "run")
    assert _one_line(err.value) == (
        f"{grid} is a grid store, not a training run (kind='grid', expected 'run')"
    )
    with pytest.raises(ValueError) as err:
        open_kind(grid, ("simulate", "scale_sweep"))
    assert "is a grid store, not a simulate file or a scale-sweep file" in _one_line(err.value)
    missing = str(tmp_path / "none.h5")
    with pytest.raises(ValueError) as err:
        open_kind(missing, "grid")
    assert _one_line(err.value) == f"{missing} does not exist; make one with ei-sim grid --out"
    odd = str(tmp_path / "odd.h5")
    with h5py.File(odd, "w") as fh:
        fh.attrs["kind"] = "mystery"
    with pytest.raises(ValueError, match="a file of unknown kind, not a grid store"):
        open_kind(odd, "grid")
    foreign = str(tmp_path / "foreign.h5")
    with h5py.File(foreign, "w") as fh:
        fh.create_dataset("x", data=[1])
    with pytest.raises(ValueError, match="an HDF5 file that ei-sim did not write"):
        open_kind(foreign, "simulate")
    (tmp_path / "text.h5").write_text("not hdf5")
    with pytest.raises(ValueError, match="unreadable"):
        open_kind(str(tmp_path / "text.h5"), "grid")
    with h5py.File(grid, "a") as fh:
        fh.attrs["schema_version"] = 99
    with pytest.raises(ValueError, match="schema_version 99; this ei-sim reads up to 1"):
        open_kind(grid, "grid")


def test_run_opener_refuses_a_grid_store(tmp_path):
    grid = _write_grid(str(tmp_path / "g.h5"))
    with pytest.raises(ValueError, match="is a grid store, not a training run"):
        open_run(grid)
    with pytest.raises(ValueError, match="not an ei-sim run"):
        open_run(str(tmp_path))  # a folder without run.h5


@pytest.mark.parametrize("argv, fragment", [
    (["eval", "{grid}"], "{grid} is a grid store, not a training run (kind='grid'"),
    (["report", "{rate}"], "{rate} is a rate-model run, not a training run, a simulate file"),
    (["analyze", "basins", "{sweep}"], "{sweep} is a scale-sweep file, not a grid store"),
])  # fmt: skip
def test_cli_refuses_another_kind_in_one_line_exit_2(argv, fragment, tmp_path, capsys):
    paths = {"grid": _write_grid(str(tmp_path / "g.h5")), "run": _write_run(str(tmp_path / "r")),
             "sweep": _write_sweep(str(tmp_path / "s.h5"))}  # fmt: skip
    rate = tmp_path / "rate.h5"
    with h5py.File(rate, "w") as fh:
        fh.attrs["kind"] = "wilson_cowan"
    paths["rate"] = str(rate)
    argv = [a.format(**paths) for a in argv]
    before = {p: open(p, "rb").read() for p in paths.values()}
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and fragment.format(**paths) in err, err
    assert {p: open(p, "rb").read() for p in paths.values()} == before  # nothing touched


# ---------------------------------------------------------------- legacy files (no kind)


def _legacy_run(run_dir) -> None:
    """A run file as written before kind existed: no kind, no schema_version."""
    model = _model()
    weights = model.init_weights(jax.random.PRNGKey(1))
    os.makedirs(run_dir)
    with h5py.File(os.path.join(run_dir, "run.h5"), "w") as fh:
        for key, value in _run_attrs(model).items():
            fh.attrs[key] = "none" if value is None else value
        fh.attrs["status"] = "complete"
        for name in METRICS:
            fh.create_dataset(f"metrics/{name}", data=np.array([0.5]))
        for label in ("best", "last"):
            for name, value in weights._asdict().items():
                if value is not None:
                    fh.create_dataset(f"weights/{label}/{name}", data=np.asarray(value))
    return model, weights


def test_kind_less_run_file_loads_as_todays_layout(tmp_path):
    from ei_sim.training.stored import load_stored

    run_dir = str(tmp_path / "old")
    model, weights = _legacy_run(run_dir)
    path = os.path.join(run_dir, "run.h5")
    assert existing_kind(path) == "run"
    with open_kind(path, "run") as fh:
        assert kind_of(fh) == "run" and schema_version(fh) == 1 and "kind" not in fh.attrs
    attrs, metrics, best, last, _ = load_run(run_dir)
    np.testing.assert_array_equal(best.w_in, weights.w_in)
    assert metrics["test_accuracy"] == [0.5]
    assert model_from_attrs(attrs) == model
    stored_model, split, stored_weights, _ = load_stored(run_dir)
    assert stored_model == model and len(split.y_test) > 0
    np.testing.assert_array_equal(stored_weights.w_out, weights.w_out)


def test_kind_less_simulate_file_and_old_named_schema_are_read(tmp_path):
    from ei_sim.analysis.report import file_kind
    from ei_sim.store.spikes import write_spike_lists

    path = str(tmp_path / "old_sim.h5")
    raster = np.zeros((20, 1, 4), bool)
    raster[3, 0, 1] = True
    with h5py.File(path, "w") as fh:  # the simulate layout without kind
        write_spike_lists(fh.create_group("spikes/e"), raster, 0.1)
    assert file_kind(path) == "simulate" and existing_kind(path) == "simulate"
    store = str(tmp_path / "old_repro.h5")
    with h5py.File(store, "w") as fh:  # a reproduction store of the first release
        fh.attrs["kind"], fh.attrs["schema"] = "reproduce", 1
        fh.attrs["experiment"] = "coupling"
        fh.create_group("stages/baseline")
    from ei_sim.analysis.reproduce.store import open_or_create, save_stage

    assert open_or_create(store, {"experiment": "coupling"}) == {"baseline"}
    save_stage(store, "sweep", {"n": 1})  # the next stage stamps today's version
    with h5py.File(store, "r") as fh:
        assert fh.attrs["schema_version"] == 1 and set(fh["stages"]) == {"baseline", "sweep"}


def test_provenance_commit_says_when_the_tree_had_changes(tmp_path, monkeypatch):
    """``provenance.git_commit``: the commit, ``+dirty`` when tracked files differ from it
    (a run trained from modified code must not claim the commit's code), "unknown" outside a
    checkout."""
    import subprocess

    from ei_sim.store.attrs import git_commit

    def git(*args):
        who = ["-c", "user.name=t", "-c", "user.email=t@example.org"]
        subprocess.run(["git", "-C", str(tmp_path), *who, *args], check=True,
                       capture_output=True)  # fmt: skip

    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))  # no checkout above
    assert git_commit(str(tmp_path)) == "unknown"
    git("init", "-q")
    (tmp_path / "a.py").write_text("x = 1\n")
    git("add", "a.py")
    git("commit", "-q", "-m", "one")
    sha = subprocess.run(["git", "-C", str(tmp_path), "rev-parse", "HEAD"], check=True,
                         capture_output=True, text=True).stdout.strip()  # fmt: skip
    assert git_commit(str(tmp_path)) == sha
    (tmp_path / "notes.txt").write_text("untracked\n")  # untracked files are not the code
    assert git_commit(str(tmp_path)) == sha
    (tmp_path / "a.py").write_text("x = 2\n")
    assert git_commit(str(tmp_path)) == sha + "+dirty"
    from ei_sim.store import attrs

    first = git_commit()  # the source tree's: worked out once per process
    assert git_commit() == first and attrs._source_commit.cache_info().misses <= 1
