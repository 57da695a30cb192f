"""The command line: outputs, provenance, and one-line errors with exit status 2."""

import h5py
import pytest

from ei_sim.cli import main


def test_simulate_writes_hdf5_with_provenance(tmp_path, capsys):
    out = tmp_path / "run.h5"
    assert main(["simulate", "--model", "ping", "--t-ms", "50", "--out", str(out)]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith("ping: E ") and "gamma peak" in line
    with h5py.File(out) as fh:
        for key in ("provenance.git_commit", "provenance.jax_version", "provenance.seed",
                    "model.config.tau_gaba_ms", "rate_e_Hz"):  # fmt: skip
            assert key in fh.attrs
        assert fh["population/e"].shape == (500, 1)
        n_spikes = len(fh["spikes/e/time_ms"])
        assert n_spikes == pytest.approx(fh.attrs["rate_e_Hz"] * 1024 * 0.05, abs=1)
    assert not list(tmp_path.glob(".tmp-*"))


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["simulate", "--model", "hodgkin"], "invalid choice: 'hodgkin'"),
        (["simulate", "--dt-ms", "5"], "refractory"),
        (["simulate", "--t-ms", "0"], "must be > 0"),
        (["simulate", "--out", "/no/such/dir/x.h5"], "does not exist"),
        (["simulate", "--digit", "12"], "digit"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(argv, fragment, capsys):
    with pytest.raises(SystemExit) as exit_info:
        code = main(argv)
        raise SystemExit(code)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert fragment in err[-1] and "Traceback" not in "\n".join(err)


def test_simulate_does_not_leave_partial_files(tmp_path):
    out = tmp_path / "x.h5"
    with pytest.raises(SystemExit) as exit_info:  # refused by the parser
        main(["simulate", "--model", "hodgkin", "--out", str(out)])
    assert exit_info.value.code == 2
    assert main(["simulate", "--t-ms", "0.05", "--out", str(out)]) == 2  # refused by the model
    assert not out.exists() and not list(tmp_path.iterdir())
