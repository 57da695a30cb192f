"""``ei-sim reproduce``: the lab's numbers as data, the lab setting, the mean-field table, and
resumable reproductions that say what they could not compare."""

import json
import os
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest

from ei_sim.analysis import meanfield as mf
from ei_sim.analysis.basins import label_cells
from ei_sim.analysis.reproduce.meanfield import lab_grid_hopf
from ei_sim.analysis.reproduce.reference import DEFAULT_PATH, load_reference
from ei_sim.analysis.reproduce.runner import reproduce
from ei_sim.analysis.reproduce.table import Row, compare, markdown
from ei_sim.cli import main
from ei_sim.models import get_model
from ei_sim.sim.spectrum import spectral_peak
from ei_sim.store.run import config_differences
from ei_sim.training.loop import is_new_best

REF = load_reference()


# ---------------------------------------------------------------- the lab's numbers as data
def test_reference_file_holds_sourced_numbers():
    entry = REF.get("meanfield.hopf_drive")
    assert entry.value == 0.59 and entry.unit == "nA" and "nb033" in entry.source
    assert "@" in entry.source  # path @ commit
    assert REF.get("budgets.e100.ping.off.eval_gamma").value == pytest.approx(34.84)
    assert REF.get("meanfield.predicted_alpha") is None  # the lab never computed it


@pytest.mark.parametrize("bad_value", ["0.59", None, float("nan"), True])
def test_reference_with_non_numeric_value_is_refused(tmp_path, bad_value):
    doc = json.load(open(DEFAULT_PATH))
    doc["values"]["meanfield.hopf_drive"]["value"] = bad_value
    path = tmp_path / "ref.json"
    path.write_text(json.dumps(doc).replace("NaN", "NaN"))
    with pytest.raises(ValueError, match="meanfield.hopf_drive"):
        load_reference(str(path))


def test_missing_lab_value_is_said_not_invented():
    unpublished = Row("a quantity the lab never published", None, 1.5, "Hz")
    not_run = Row("Hopf drive", "meanfield.hopf_drive", None, "nA", "not run")
    rows = compare([unpublished, not_run], REF)
    assert rows[0]["lab"] is None and rows[0]["source"] == "no lab value"
    assert rows[1]["ours"] is None and rows[1]["difference"] is None
    text = markdown("t", [], rows, [])
    assert "no lab value" in text and "not measured" in text


# ---------------------------------------------------------------- the lab setting
def test_lab_setting_has_the_effective_refractory_periods():
    lab, canonical = get_model("ping", setting="lab"), get_model("ping")
    assert (lab.config.cell_e.t_ref_ms, lab.config.cell_i.t_ref_ms) == (1.2, 0.6)
    assert lab.config.refractory_steps(lab.config.cell_e) == 12  # the lab's step counts
    assert lab.config.refractory_steps(lab.config.cell_i) == 6
    assert (canonical.config.cell_e.t_ref_ms, canonical.config.cell_i.t_ref_ms) == (3.0, 1.5)
    assert lab.setting == "lab" and lab.replace(w_in_mean=0.6).setting == "lab"
    assert get_model("coba", setting="lab").config.cell_e.t_ref_ms == 1.2
    with pytest.raises(ValueError, match="setting"):
        get_model("va_coba", setting="lab")
    with pytest.raises(ValueError, match="unknown setting"):
        get_model("ping", setting="nominal")


def test_run_files_without_a_setting_resume_as_canonical():
    requested = {"model.setting": "canonical", "model.w_in_mean": 1.2}
    assert config_differences({"model.w_in_mean": 1.2}, requested) == []
    assert config_differences({"model.w_in_mean": 1.2}, {**requested, "model.setting": "lab"})


def test_best_epoch_ties_go_to_the_first_epoch():
    acc = []
    flags = []
    for a in (0.80, 0.855, 0.855, 0.84, 0.855):
        acc.append(a)
        flags.append(is_new_best(acc))
    assert flags == [True, True, False, False, False]
    assert int(np.argmax(acc)) == 1


# ---------------------------------------------------------------- mean field
@pytest.mark.parametrize("tau", [4.5, 6.0, 9.0, 12.0, 18.0, 27.0])
def test_meanfield_default_reproduces_the_lab_hopf_table(tau):
    h = mf.hopf(mf.MeanFieldParams(tau_gaba_ms=tau))
    t = f"{tau:g}"
    assert h.frequency_Hz == pytest.approx(REF.get(f"meanfield.tau{t}.frequency").value, rel=0.02)
    assert h.drive_nA == pytest.approx(REF.get(f"meanfield.tau{t}.drive").value, rel=0.02)


def test_lab_grid_search_gives_the_lab_hopf_point_and_the_other_convention_differs():
    p = mf.MeanFieldParams()
    drive, freq = lab_grid_hopf(p)
    assert drive == pytest.approx(0.59, abs=1e-9) and freq == pytest.approx(24.50, abs=0.01)
    x = mf.fixed_point(drive, p)
    assert 1e3 * x[0] == pytest.approx(3.82, abs=0.01) and 1e3 * x[1] == pytest.approx(
        0.47, abs=0.01
    )
    sd = mf.hopf(p.replace(sigma_convention="membrane_sd"))
    assert sd.drive_nA == pytest.approx(0.695, abs=0.005)  # sigma_V as the membrane SD
    with pytest.raises(ValueError, match="sigma_convention"):
        mf.MeanFieldParams(sigma_convention="brunel")


# ---------------------------------------------------------------- gamma and labels
def test_parabola_offset_is_clamped_to_half_a_bin():
    freqs = np.arange(0.0, 200.0, 5.0)
    power = np.full(freqs.shape, 1.0)
    power[8], power[9] = 10.0, 10.0 - 1e-9  # two equal bins: the vertex lies half a bin away
    peak = spectral_peak(freqs, power)
    assert peak.frequency_Hz == pytest.approx(42.5, abs=1e-6)
    power[9] = 9.99
    assert 40.0 <= spectral_peak(freqs, power).frequency_Hz <= 42.5
    assert spectral_peak(freqs, np.ones_like(freqs)) is None  # flat: no peak
    assert spectral_peak(freqs, np.zeros_like(freqs)) is None  # silent


def test_zero_coupling_cells_are_no_loop_whatever_their_rates():
    rate_e, rate_i = [2.0, 9.0, 3.0, 2.2, 3.1], [96.0, 0.0, 15.0, 0.0, 11.1]
    w_ei, w_ie = [1.0, 0.0, 2.0, 0.5, 1.0], [0.0, 2.0, 0.0, 1.0, 2.0]
    labels = label_cells(rate_e, rate_i, w_ei, w_ie)
    assert list(labels) == ["no-loop", "no-loop", "no-loop", "stretched-COBA", "PING"]
    with pytest.raises(ValueError, match="i_active_Hz"):
        label_cells(rate_e, rate_i, w_ei, w_ie, i_active_Hz=float("nan"))


# ---------------------------------------------------------------- bad input at the CLI
@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["reproduce", "nb099"], "unknown experiment"),
        (["reproduce", "coupling", "--scale", "huge"], "invalid choice: 'huge'"),
        (["reproduce", "coupling", "--setting", "nominal"], "invalid choice: 'nominal'"),
        (["reproduce", "coupling", "--epochs", "0"], "--epochs"),
        (["reproduce", "coupling", "--out", "/no/such/folder"], "does not exist"),
        (["reproduce", "coupling", "--out", os.__file__], "is a file, not a folder"),
    ],
)
def test_reproduce_bad_input_is_one_line_exit_2(argv, fragment, capsys, tmp_path):
    try:
        code = main(argv)
    except SystemExit as stop:  # refused by the parser (a choice)
        code = stop.code
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and fragment in err[0]


def test_reproduce_refuses_a_bad_reference_and_another_experiments_store(tmp_path, capsys):
    doc = json.load(open(DEFAULT_PATH))
    doc["values"]["coupling.alpha_all"]["value"] = "about 0.4"
    bad = tmp_path / "ref.json"
    bad.write_text(json.dumps(doc))
    out = tmp_path / "campaign"
    out.mkdir()
    assert main(["reproduce", "coupling", "--out", str(out), "--reference", str(bad)]) == 2
    assert "coupling.alpha_all" in capsys.readouterr().err
    assert os.listdir(out) == []  # nothing written
    # a store made by another experiment or scale under this name is refused, untouched
    store = out / "coupling_quick_lab_5ep.h5"
    with h5py.File(store, "w") as fh:
        fh.attrs["kind"] = "reproduce"
        fh.attrs["experiment"] = "budgets"
        fh.create_group("stages")
    before = store.read_bytes()
    assert main(["reproduce", "coupling", "--out", str(out)]) == 2
    assert "another experiment" in capsys.readouterr().err
    assert store.read_bytes() == before
    grid = out / "coupling_quick_canonical_5ep.h5"
    with h5py.File(grid, "w") as fh:
        fh.attrs["kind"] = "grid"
    assert main(["reproduce", "coupling", "--setting", "canonical", "--out", str(out)]) == 2
    assert "not a reproduction store" in capsys.readouterr().err


# ---------------------------------------------------------------- a whole reproduction, killed
TINY = ["--tier", "tiny", "--epochs", "1"]


def _cli(out, *extra):
    return [sys.executable, "-m", "ei_sim.cli", "reproduce", "coupling", *TINY, "--out", str(out),
            *extra]  # fmt: skip


def _stages(path) -> int:
    try:
        with h5py.File(path, "r") as fh:
            return len(fh["stages"])
    except (OSError, KeyError):
        return 0


@pytest.mark.slow
def test_reproduce_killed_mid_way_resumes_to_the_same_table(tmp_path):
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    whole.mkdir()
    killed.mkdir()
    env = {**os.environ, "MPLBACKEND": "Agg"}
    subprocess.run(_cli(whole), check=True, capture_output=True, env=env, timeout=600)
    proc = subprocess.Popen(_cli(killed), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=env)  # fmt: skip
    store = killed / "coupling_quick_lab_1ep.h5"
    deadline = time.time() + 600
    while _stages(store) < 2 and proc.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    proc.kill()
    proc.wait()
    n_before = _stages(store)
    assert 1 <= n_before < 3  # killed with the training and one sweep stored, one sweep left
    again = subprocess.run(_cli(killed), check=True, capture_output=True, text=True, env=env,
                           timeout=600)  # fmt: skip
    assert again.stdout.count("already finished, not recomputed") == n_before
    table = (whole / "coupling_quick_lab_1ep.md").read_text()
    assert (killed / "coupling_quick_lab_1ep.md").read_text() == table
    assert "f* with W_EI x 0.25" in table and "Verdicts on the lab's claims" in table
    # a miniature: no per-number difference with the lab's medium-tier, 100-epoch values
    assert "A quick miniature" in table and "exp036" not in table
    assert "not compared (miniature)" in table
    assert (killed / "coupling_quick_lab_1ep_coupling_sweeps.png").exists()
    assert not list(killed.glob(".tmp-*")) and not list(killed.glob("*.tmp"))


@pytest.mark.slow
def test_reproduce_meanfield_rate_model_rows(tmp_path):
    out = reproduce("meanfield", "quick", str(tmp_path), "lab", tier="tiny", epochs=1,
                    progress=False)  # fmt: skip
    rows = {r["quantity"]: r for r in out["rows"]}
    hopf = rows["Hopf drive, tau_GABA 9 ms"]
    assert hopf["lab"] == 0.59 and abs(hopf["relative"]) < 0.02
    spiking = rows["spiking gamma (trained PING), tau_GABA 9 ms"]
    # a miniature's trained networks are not compared with the lab's 100-epoch ones
    assert spiking["lab"] is None and spiking["ours"] is not None
    assert spiking["source"] == "not compared (miniature)"
    assert os.path.exists(out["html"]) and out["figures"]
