"""``ei-sim rate train`` and ``ei-sim rate analyze`` through the CLI entry point: the run file
it writes, the analysis line it prints, and bad input as one line with exit status 2."""

import contextlib
import io
import re

import h5py
import numpy as np
import pytest

from ei_sim.cli import main

FLOAT = r"[-+]?\d+\.\d+"


@pytest.fixture(scope="module")
def rate_run(tmp_path_factory):
    """One epoch of the tiny tier (240 training samples), with a few non-default flags."""
    out = tmp_path_factory.mktemp("rate") / "rate.h5"
    argv = ["rate", "train", "--tier", "tiny", "--epochs", "1", "--steps-internal", "10",
            "--tau-e-ms", "15", "--seed", "3", "--out", str(out)]  # fmt: skip
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = main(argv)
    return out, code, printed.getvalue()


def test_rate_train_writes_a_run_file_with_its_flags(rate_run):
    from ei_sim.rate.store import load_rate_run

    out, code, printed = rate_run
    assert code == 0
    lines = printed.strip().splitlines()
    assert len(lines) == 2  # one line per epoch, then the summary
    assert lines[-1].endswith(f"(wrote {out})")
    config, params, attrs = load_rate_run(str(out))
    assert attrs["kind"] == "wilson_cowan" and attrs["tier"] == "tiny" and attrs["seed"] == 3
    assert config.steps_internal == 10 and config.tau_e_ms == 15.0 and config.tau_i_ms == 10.0
    assert params.w_ee.shape == (config.n_e, config.n_e) and params.w_in.shape == (784, 256)
    for block in (params.w_ee, params.w_ei, params.w_ie, params.w_ii):
        assert np.all(np.asarray(block) >= 0)  # Dale's law kept by the projection
    assert 0.0 <= attrs["best_accuracy"] <= 1.0
    assert attrs["best_epoch"] == 1 and "(epoch 1)" in lines[-1]  # counted from 1, as printed
    with h5py.File(out) as fh:
        assert fh.attrs["best_epoch"] == 1 and fh.attrs["schema_version"] == 2  # stored so
        assert set(fh) == {"history", "params", "final_params"}
        assert fh["history/accuracy"].shape == (1,)  # per epoch
        assert fh["history/accuracy"][0] == pytest.approx(attrs["best_accuracy"])
        assert fh["history/step_loss"].shape == (6,)  # 240 samples in batches of 40


def test_rate_run_files_of_schema_version_1_read_best_epoch_from_1(rate_run, tmp_path):
    """Version-1 rate files (and those without schema_version) stored best_epoch counting
    from 0; the reader shifts it, so it counts from 1 whatever the file's version."""
    import shutil

    from ei_sim.rate.store import load_rate_run

    out = rate_run[0]
    legacy = tmp_path / "legacy.h5"
    shutil.copyfile(out, legacy)
    with h5py.File(legacy, "a") as fh:
        fh.attrs["schema_version"] = 1
        fh.attrs["best_epoch"] = 0  # the first epoch, as version 1 wrote it
        del fh.attrs["checksum"]  # version 1 files were written before checksums
    assert load_rate_run(str(legacy))[2]["best_epoch"] == 1
    with h5py.File(legacy, "a") as fh:
        del fh.attrs["schema_version"]  # written before schema_version existed: version 1
    assert load_rate_run(str(legacy))[2]["best_epoch"] == 1
    with h5py.File(legacy, "a") as fh:
        fh.attrs["schema_version"] = 3
    with pytest.raises(ValueError, match="schema_version 3; this ei-sim reads up to 2"):
        load_rate_run(str(legacy))


def test_rate_analyze_of_the_run_prints_one_report(rate_run, capsys):
    out, code, _ = rate_run
    assert code == 0
    assert main(["rate", "analyze", str(out), "--max-scale", "2"]) == 0
    text = capsys.readouterr().out.strip()
    assert "\n" not in text and text.startswith(f"{out}: fixed point: E ")
    match = re.search(rf"rho_EE ({FLOAT}) \(bound 1\), rho_II ({FLOAT}) \(bound 19\)", text)
    assert match, text
    assert re.search(r"oscillation onset: (none|W_EI x \d+\.\d{3} at \d+\.\d Hz)$", text), text


def test_rate_analyze_untrained_reports_the_initial_coupling(capsys):
    """An untrained model: blocks gain / n_pre * U(0, 2), so rho_EE and rho_II start near
    their gains (0.5); the fixed point is stable, so no eigenvalue is in the right half."""
    assert main(["rate", "analyze", "--seed", "5", "--max-scale", "1"]) == 0
    text = capsys.readouterr().out.strip()
    assert text.startswith("untrained (seed 5): fixed point: E ")
    assert "(converged True)" in text
    rho_ee, rho_ii = (float(x) for x in re.findall(rf"rho_[EI]{{2}} ({FLOAT})", text))
    assert rho_ee == pytest.approx(0.5, abs=0.05) and rho_ii == pytest.approx(0.5, abs=0.05)
    lead = float(re.search(rf"leading eigenvalue ({FLOAT})", text).group(1))
    assert lead < 0


@pytest.mark.parametrize("argv, fragment", [
    (["rate"], "SUBCOMMAND"),
    (["rate", "fit"], "invalid choice"),
    (["rate", "train", "--activation", "tanh"], "unknown activation 'tanh'"),
    (["rate", "train", "--dt-ms", "25"], "forward Euler unstable"),
    (["rate", "train", "--tier", "huge"], "--tier"),
    (["rate", "train", "--steps-internal", "0"], "steps"),
    (["rate", "analyze", "--digit-index", "99999"], "--digit-index must lie in [0, "),
    (["rate", "analyze", "{missing}"], "does not exist"),
    (["rate", "analyze", "{other}"], "is not a rate-model run file"),
])  # fmt: skip
def test_rate_bad_input_is_one_line_and_exit_2(argv, fragment, tmp_path, capsys):
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as fh:
        fh.attrs["kind"] = "wilson_cowan_typo"
    paths = {"missing": str(tmp_path / "none.h5"), "other": str(other)}
    argv = [a.format(**paths) for a in argv]
    try:
        code = main(argv)
    except SystemExit as exit_:  # argparse errors leave through SystemExit
        code = exit_.code
    captured = capsys.readouterr()
    assert code == 2, captured
    err = captured.err.strip()
    assert "\n" not in err and err.startswith("ei-sim rate"), err
    assert fragment.format(**paths) in err, err
    assert captured.out == ""


def test_rate_analyze_refuses_a_bad_digit_index_before_any_work(tmp_path, monkeypatch, capsys):
    """The range is checked against the pool's known size: neither the pool nor the run file
    is loaded before the refusal."""
    import ei_sim.data.mnist
    import ei_sim.rate.store

    def must_not_run(*args, **kwargs):
        raise AssertionError("loaded before the bad --digit-index was refused")

    for module, name in ((ei_sim.data.mnist, "load_pool"), (ei_sim.data.mnist, "embedded_pool"),
                         (ei_sim.rate.store, "load_rate_run")):  # fmt: skip
        monkeypatch.setattr(module, name, must_not_run)
    run = tmp_path / "run.h5"
    run.write_bytes(b"")  # exists; never opened
    for argv in (["rate", "analyze", "--digit-index", "99999"],
                 ["rate", "analyze", str(run), "--digit-index", "-1"]):  # fmt: skip
        assert main(argv) == 2
        captured = capsys.readouterr()
        err = captured.err.strip()
        assert "\n" not in err and captured.out == "", captured
        assert f"--digit-index must lie in [0, {ei_sim.data.mnist.EMBEDDED_POOL_SIZE}), got" in err
