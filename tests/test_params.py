"""Any parameter from the command line: --set, --config, ei-sim params, study files; and the
options that mean one thing in every command."""

import os

import h5py
import pytest

from ei_sim.cli import main
from ei_sim.cli import params as P
from ei_sim.models import get_model
from ei_sim.training.config import TrainConfig

SMALL = ["--tier", "tiny", "--epochs", "1", "--samples", "60", "--batch-size", "12",
         "--n-e", "8", "--t-ms", "20", "--quiet"]  # fmt: skip


def _code(argv) -> int:
    try:
        return main(argv)
    except SystemExit as stop:  # refused by the parser itself
        return stop.code


def _files(root) -> list[str]:
    return sorted(os.path.relpath(os.path.join(d, f), root)
                  for d, _, names in os.walk(root) for f in names)  # fmt: skip


def test_set_reaches_nested_keys_and_is_recorded_in_the_run(tmp_path):
    out = tmp_path / "run"
    argv = ["train", *SMALL, "--set", "tau_gaba_ms=6", "--set", "cell_e.t_ref_ms=2",
            "--set", "train.budget=0.5", "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    with h5py.File(out / "run.h5") as fh:
        assert fh.attrs["model.config.tau_gaba_ms"] == 6.0
        assert fh.attrs["model.config.cell_e.t_ref_ms"] == 2.0
        assert fh.attrs["train.budget"] == 0.5
    # --resume with another value of a --set key is refused (the resume check compares them)
    assert main([*argv[:-2], "--set", "tau_gaba_ms=7", "--out", str(out), "--resume"]) == 2


@pytest.mark.parametrize("assignment, fragment", [
    ("tau_gaba=6", "did you mean tau_gaba_ms"),
    ("tau_gaba_ms=-1", "tau_gaba_ms must be a positive number"),
    ("tau_gaba_ms=abc", "expected a number"),
    ("epochs=1.5", "expected an integer"),
    ("n_e=0", "n_e must be a positive integer"),
    ("nonsense", "expected KEY=VALUE"),
    ("cell_e.t_ref_ms=nan", "finite number"),
    ("name=x", "unknown parameter"),
])  # fmt: skip
@pytest.mark.parametrize("command", ["train", "grid", "simulate"])
def test_bad_set_is_one_line_exit_2_and_creates_nothing(assignment, fragment, command, tmp_path,
                                                        capsys):  # fmt: skip
    if command == "simulate" and assignment.startswith("epochs"):
        fragment = "unknown parameter"  # simulate has no recipe
    out = {"train": str(tmp_path / "r"), "grid": str(tmp_path / "g.h5"),
           "simulate": str(tmp_path / "s.h5")}[command]  # fmt: skip
    extra = SMALL if command != "simulate" else ["--t-ms", "20", "--quiet"]
    assert main([command, *extra, "--set", assignment, "--out", out]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and fragment in err[0], err
    assert _files(tmp_path) == []


def test_config_file_sits_between_the_defaults_and_the_flags(tmp_path):
    cfg = tmp_path / "p.toml"
    cfg.write_text(
        'setting = "lab"\n[model]\ntau_gaba_ms = 6.0\n[model.cell_i]\n'
        "t_ref_ms = 1.0\n[train]\nbudget = 0.2\nlearning_rate = 1e-3\n"
    )
    out = tmp_path / "run"
    assert main(["train", *SMALL, "--config", str(cfg), "--learning-rate", "2e-3",
                 "--set", "tau_gaba_ms=7", "--out", str(out)]) == 0  # fmt: skip
    with h5py.File(out / "run.h5") as fh:
        assert fh.attrs["model.setting"] == "lab"  # from the file's top level
        assert fh.attrs["model.config.cell_i.t_ref_ms"] == 1.0  # the file
        assert fh.attrs["model.config.tau_gaba_ms"] == 7.0  # --set beats the file
        assert fh.attrs["train.learning_rate"] == 2e-3  # the flag beats the file
        assert fh.attrs["train.budget"] == 0.2


@pytest.mark.parametrize("text, fragment", [
    ("[model\n", "not valid TOML"),
    ("[modle]\ntau_gaba_ms = 6\n", "unknown entry 'modle'"),
    ("[model]\ntau_gaba = 6\n", "did you mean tau_gaba_ms"),
    ("[train]\nepochs = 0\n", "epochs must be an integer >= 1"),
])  # fmt: skip
def test_bad_config_file_is_one_line(text, fragment, tmp_path, capsys):
    cfg = tmp_path / "p.toml"
    cfg.write_text(text)
    assert main(["train", *SMALL, "--config", str(cfg), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and fragment in err[0], err
    assert _files(tmp_path) == ["p.toml"]


def test_params_lists_every_key_with_its_value(capsys):
    assert main(["params", "--model", "ping", "--tier", "tiny", "--set", "tau_gaba_ms=6"]) == 0
    out = capsys.readouterr().out
    assert "model.tau_gaba_ms = 6.0  (float)" in out and "model.cell_e.t_ref_ms = 3.0" in out
    assert "train.epochs = 4" in out and "model.n_e = 64" in out
    assert main(["params", "--model", "wilson_cowan"]) == 0
    assert "train.spectral_weight = 1.0" in capsys.readouterr().out
    keys = P.keys_of("model", get_model("ping"))
    assert {"tau_gaba_ms", "cell_e.t_ref_ms", "w_in_mean"} <= set(keys)
    assert "budget" in P.keys_of("train", TrainConfig())


def test_old_spellings_are_hidden_aliases(capsys):
    with pytest.raises(SystemExit):
        main(["grid", "--help"])
    help_text = capsys.readouterr().out
    assert "--w-ei" in help_text and "--wei" not in help_text.replace("--w-ei", "")
    assert "--learning-rate" in help_text and "--lr " not in help_text


STUDY = """
out = "{out}"

[[step]]
name = "base"
run = "train"
set = {{ tau_gaba_ms = 6.0 }}
[step.args]
tier = "tiny"
epochs = 1
samples = 60
batch-size = 12
n-e = 8
t-ms = 20
quiet = true

[[step]]
name = "ev"
run = "eval"
args = {{ run_dir = "{{base}}" }}
"""


def test_a_study_runs_in_order_and_skips_finished_steps(tmp_path, capsys):
    study = tmp_path / "s.toml"
    study.write_text(STUDY.format(out=tmp_path / "out"))
    assert main(["study", str(study)]) == 0
    first = capsys.readouterr().out
    assert "test accuracy" in first and "study finished: 2 steps" in first
    with h5py.File(tmp_path / "out" / "base" / "run.h5") as fh:
        assert fh.attrs["model.config.tau_gaba_ms"] == 6.0
    assert main(["study", str(study)]) == 0
    assert capsys.readouterr().out.count("finished earlier with the same command, skipped") == 2


@pytest.mark.parametrize("edit, fragment", [
    (lambda s: s.replace('run = "eval"', 'run = "evaluate"'), "unknown command 'evaluate'"),
    (lambda s: s.replace("{base}", "{nosuch}"), "{nosuch} names no earlier step"),
    (lambda s: s.replace("tau_gaba_ms = 6.0", "tau_gaba = 6.0"), "did you mean tau_gaba_ms"),
    (lambda s: s.replace("tau_gaba_ms = 6.0", "tau_gaba_ms = -6.0"), "must be a positive"),
    (lambda s: s.replace("epochs = 1", "epochz = 1"), "unrecognized arguments: --epochz"),
    (lambda s: s + "[[step\n", "not valid TOML"),
])  # fmt: skip
def test_a_bad_study_is_refused_before_anything_runs(edit, fragment, tmp_path, capsys):
    study = tmp_path / "s.toml"
    study.write_text(edit(STUDY.format(out=tmp_path / "out")))
    assert main(["study", str(study)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and fragment in err[0], err
    assert not (tmp_path / "out").exists()


def test_set_on_a_sweep_and_on_the_mean_field(tmp_path, capsys):
    import shutil

    run = tmp_path / "run"
    run.mkdir()
    golden = os.path.join(os.path.dirname(os.path.dirname(__file__)), "data", "golden")
    shutil.copy(os.path.join(golden, "tiny_run.h5"), run / "run.h5")
    outs = []
    for extra in ([], ["--set", "tau_gaba_ms=27"]):
        out = tmp_path / f"sweep{len(extra)}"
        out.mkdir()
        assert main(["sweep", "scale", str(run), "--scales", "1", "--out", str(out), *extra]) == 0
        with h5py.File(out / "scale_sweep.h5") as fh:
            outs.append(float(fh["rate_e_Hz"][0, 0]))
    assert outs[0] != outs[1]  # the trained weights in a slower-inhibition network
    assert main(["sweep", "scale", str(run), "--set", "n_e=7", "--out", str(tmp_path)]) == 2
    capsys.readouterr()
    assert main(["meanfield", "predict", "--set", "tau_gaba_ms=6"]) == 0
    assert "Hopf: 0.596" in capsys.readouterr().out
    assert main(["meanfield", "predict", "--set", "sigma_v=3"]) == 2
    assert "did you mean sigma_V_mV" in capsys.readouterr().err
