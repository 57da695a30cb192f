"""The lab-scale campaign's machinery (issue: run the grid, the diagonal and the budget table
to the end): continuing a store to more epochs, stores of other settings, results as data,
labels that say how settled they are, and the quick miniature."""

import functools
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from stores import store_numbers

from ei_sim.analysis.reproduce import results as R
from ei_sim.analysis.trends import settled_label, trend
from ei_sim.cli import main
from ei_sim.sweeps.grid import GridSpec, run_grid

TINY = {"n_e": 16, "n_i": 4, "t_ms": 30.0}
RECIPE = {"n_samples": 100, "batch_size": 20}


def _spec(epochs):
    return GridSpec.build((0.0, 1.0), (2.0,), tier="tiny", model=TINY,
                          train={**RECIPE, "epochs": epochs})  # fmt: skip


@pytest.mark.slow
def test_a_grid_continued_to_more_epochs_equals_one_trained_to_them(tmp_path):
    longer, direct = str(tmp_path / "longer.h5"), str(tmp_path / "direct.h5")
    run_grid(_spec(2), longer, executor="serial", progress=False)
    outcome = run_grid(_spec(3), longer, executor="serial", progress=False)
    assert sorted(outcome["done"]) == ["wei0__wie2__seed42", "wei1__wie2__seed42"]
    run_grid(_spec(3), direct, executor="serial", progress=False)
    a, b = store_numbers(longer), store_numbers(direct)
    assert a.keys() == b.keys() and a["wei1__wie2__seed42/epochs"] == 3.0
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    # the same command with fewer epochs has nothing left to do
    assert run_grid(_spec(2), longer, executor="serial", progress=False)["done"] == []


def test_a_serial_grid_calls_after_epoch_and_an_interrupt_there_stops_it(tmp_path):
    """run_grid's after_epoch runs after each epoch of a cell trained in this process (where
    ei-sim grid checks for a Ctrl-C a library swallowed); an interrupt raised there stops the
    grid with the epochs done kept, and the same grid then resumes from them."""
    store = str(tmp_path / "g.h5")
    calls = []

    def stop_at_third(done):
        calls.append(done)
        if len(calls) == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_grid(_spec(2), store, executor="serial", progress=False, after_epoch=stop_at_third)
    assert calls == [1, 2, 1]  # the first cell's two epochs, the second cell's first
    outcome = run_grid(_spec(2), store, executor="serial", progress=False)
    assert outcome["done"] == ["wei1__wie2__seed42"] and outcome["skipped"] == [
        "wei0__wie2__seed42"]


def test_a_grid_store_of_another_setting_is_refused_in_one_line(tmp_path, capsys):
    store = tmp_path / "g.h5"
    args = ["grid", "--tier", "tiny", "--w-ei", "1", "--w-ie", "2", "--epochs", "1",
            "--samples", "60", "--batch-size", "12", "--n-e", "8", "--t-ms", "20",
            "--executor", "serial", "--quiet", "--out", str(store)]  # fmt: skip
    assert main(args) == 0
    before = store.read_bytes()
    capsys.readouterr()
    assert main([*args, "--setting", "lab"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "different settings" in err[0] and "--force" in err[0]
    assert "grid.model.config.cell_e.t_ref_ms" in err[0]
    assert store.read_bytes() == before
    assert main([*args, "--set", "tau_gaba_ms=6"]) == 2  # any parameter is a setting
    assert main([*args, "--epochs", "2"]) == 0  # the epoch count is not: continued


def _write(tmp_path, **changes):
    base = {"experiment": "grid", "scale": "full", "setting": "lab", "epochs": 30,
            "plan_attrs": {"plan.tier": "'medium'"}, "stages": {"grid__x": {
                "attrs": {"epochs": 30}, "w_ei": np.array([0.0, 2.0])}},
            "rows": [], "verdicts": [], "statements": []}  # fmt: skip
    base.update(changes)
    path = R.results_path(str(tmp_path), "grid", "full", "lab", 30)
    R.write_results(path, **base)
    return path


def test_results_round_trip_and_refusals(tmp_path):
    path = _write(tmp_path)
    data = R.read_results(path, experiment="grid", setting="lab",
                          plan_attrs={"plan.tier": "'medium'"})  # fmt: skip
    np.testing.assert_array_equal(data["stages"]["grid__x"]["arrays"]["w_ei"], [0.0, 2.0])
    assert data["provenance"]["git_commit"] and data["provenance"]["machine"]
    assert R.available(str(tmp_path), "grid", "full", "lab") == [30]
    with pytest.raises(ValueError, match="another recipe"):
        R.read_results(path, experiment="grid", setting="lab",
                       plan_attrs={"plan.tier": "'tiny'"})  # fmt: skip
    with pytest.raises(ValueError, match="not grid with canonical"):
        R.read_results(path, experiment="grid", setting="canonical",
                       plan_attrs={"plan.tier": "'medium'"})  # fmt: skip
    doc = json.load(open(path))
    doc["layout"] = R.LAYOUT + 1
    json.dump(doc, open(path, "w"))
    with pytest.raises(ValueError, match="layout"):
        R.read_results(path, experiment="grid", setting="lab",
                       plan_attrs={"plan.tier": "'medium'"})  # fmt: skip


@pytest.mark.parametrize("history, expected", [
    ([3.0, 2.0, 1.5, 1.0, 0.8], "falling"),
    ([0.0, 0.0, 0.0, 0.0, 0.0], None),
    ([20.1, 20.3, 19.9, 20.2, 20.0], None),  # noise around a level: settled
    ([0.1, 0.5, 1.2, 2.0, 3.1], "rising"),
    ([5.0, 4.0], None),  # too short to say
    ([9.0, 9.0, 9.0, 0.30, 0.29, 0.28, 0.27, 0.26], None),  # settled after a fall: last 5 only
])  # fmt: skip
def test_trend_of_a_metric_history(history, expected):
    assert trend(history) == expected
    label = settled_label("PING", history)
    assert label == ("PING" if expected is None else f"PING (I {expected})")


def test_summary_says_not_yet_run_and_reads_shipped_verdicts(tmp_path, monkeypatch, capsys):
    from ei_sim.analysis.reproduce.experiment import Verdict

    monkeypatch.setenv(R.ENV_ROOT, str(tmp_path))
    _write(tmp_path, verdicts=[Verdict("two basins", "partly", "evidence", 30)])
    assert main(["reproduce", "summary"]) == 0
    out = capsys.readouterr().out
    assert "grid (30 epochs):" in out and "two basins: partly" in out
    assert "budgets (not yet run):" in out and os.environ[R.ENV_ROOT] == str(tmp_path)



def test_summary_says_how_far_a_grid_campaign_has_got(tmp_path, monkeypatch, capsys):
    """Without a results file, the summary of a grid experiment counts its recorded cells
    (the diagonal counts the grid's cells that lie on it)."""
    from ei_sim.analysis.reproduce import cell_records as C

    monkeypatch.setenv(R.ENV_ROOT, str(tmp_path))
    cell = {"w_ei": 0.5, "w_ie": 1.0, "seed": 42, "provenance": {},
            "metrics": {k: [0.5] * 30 for k in C.METRICS}}  # fmt: skip
    C.write_cell_records(C.cells_path(str(tmp_path), "grid", "full", "lab"), experiment="grid",
                         scale="full", setting="lab", settings=_lab_grid_settings(),
                         cells={"wei0p5__wie1__seed42": cell, "wei2__wie0__seed42":
                                {**cell, "w_ei": 2.0, "w_ie": 0.0}})  # fmt: skip
    assert main(["reproduce", "summary"]) == 0
    out = capsys.readouterr().out
    assert "campaign in progress: 2 of 25 cells recorded, with 30 epochs" in out
    assert "(the page so far: ei-sim reproduce grid --scale full --epochs 30 --records-only)" in out
    assert "campaign in progress: 1 of 30 cells recorded" in out  # (0.5, 1) is on the diagonal
    assert "budgets (not yet run):" in out and "its trainings have not been run" in out


def _lab_grid_settings(experiment="grid"):
    """The shared settings of the cells of the lab-scale grid (or diagonal)."""
    from ei_sim.analysis.reproduce.experiment import experiments
    from ei_sim.analysis.reproduce.grids import grid_spec
    from ei_sim.analysis.reproduce.plans import get_plan
    from ei_sim.sweeps.grid import shared_settings

    spec = grid_spec(get_plan(experiments()[experiment], "full", None, 30), "lab",
                     experiment == "diagonal")  # fmt: skip
    return shared_settings(spec.model, spec.train)


def test_differences_beyond_the_seed_spread_are_explained_or_said_unexplained():
    from ei_sim.analysis.reproduce.reference import load_reference
    from ei_sim.analysis.reproduce.table import Row, compare

    ref = load_reference()  # grid (2, 0.5): best accuracy 84.25 %, I 22.179 Hz
    rows = [Row("acc", "grid.2.0.5.best_accuracy", 84.0, "%"),
            Row("acc far", "grid.2.0.5.best_accuracy", 80.0, "%"),
            Row("I far", "grid.2.0.5.rate_i", 30.0, "Hz")]  # fmt: skip
    short = compare(rows, ref, epochs=30, lab_epochs=100)
    assert short[0]["assessment"] == "within the seed spread"
    assert "trained 30 of the lab's 100 epochs" in short[1]["assessment"]
    full = compare(rows, ref, epochs=100, lab_epochs=100)
    assert [r["assessment"] for r in full[1:]] == ["unexplained", "unexplained"]


def _records_stage(tmp_path, sub, records, monkeypatch, trained, stop_after=None):
    """The grid stage of a 2 x 2 tiny grid in a fresh folder ``sub``, with ``records``; the
    names of the cells it trains are appended to ``trained``; with ``stop_after``, a Ctrl-C
    comes when that many cells have trained."""
    import ei_sim.sweeps.grid as G
    from ei_sim.analysis.reproduce import store as rstore
    from ei_sim.analysis.reproduce.grids import grid_stage
    from ei_sim.analysis.reproduce.plans import Plan
    from ei_sim.analysis.reproduce.stages import Campaign

    real = getattr(G.train_cell, "real", G.train_cell)  # patched once per test

    def counted(spec, w_ei, w_ie, seed, cell_dir, *args, **kwargs):
        if stop_after is not None and len(trained) == stop_after:
            raise KeyboardInterrupt
        trained.append(os.path.basename(cell_dir))
        return real(spec, w_ei, w_ie, seed, cell_dir, *args, **kwargs)

    counted.real = real
    monkeypatch.setattr(G, "train_cell", counted)
    out = tmp_path / sub
    out.mkdir(exist_ok=True)
    path = str(out / "grid_quick_lab_1ep.h5")
    rstore.open_or_create(path, {"experiment": "grid"}, False)
    checks = []
    camp = Campaign(out_dir=str(out), store_path=path, setting="lab", progress=False,
                    grid_options={"executor": "serial"}, cell_records=records,
                    check=lambda: checks.append(1))  # fmt: skip
    plan = Plan(tier="tiny", epochs=1, n_e=8, t_ms=20.0, samples=60, values=(0.0, 1.0))
    stage = grid_stage(camp, plan, diagonal=False)
    camp.checks = checks
    return stage, camp, plan


@pytest.mark.slow
def test_grid_cells_recorded_on_one_machine_are_not_trained_again_on_another(
        tmp_path, monkeypatch):  # fmt: skip
    """A campaign that outlives its machine: each cell is recorded (no weights) as soon as it
    is stored, so a campaign killed mid-grid keeps the records of its finished cells; a
    reproduction in another folder reads them back and trains only the cells missing from
    them, and its grid stage equals the first one's to the bit."""
    from ei_sim.analysis.reproduce.cell_records import CellRecords, read_cell_records

    rec = str(tmp_path / "records.json")

    def records(read=True):
        return CellRecords("grid", "quick", "lab", {}, (rec,) if read else (), rec)

    trained = []
    first, camp, plan = _records_stage(tmp_path, "a", None, monkeypatch, trained)
    assert len(trained) == 4 and first["attrs"]["cells_from_records"] == 0
    assert len(camp.checks) >= 1 + 4  # before the stage, and after each cell's epoch
    # killed after three cells: their records are written
    trained.clear()
    with pytest.raises(KeyboardInterrupt):
        _records_stage(tmp_path, "b", records(read=False), monkeypatch, trained, stop_after=3)
    doc = json.load(open(rec))
    assert sorted(doc["cells"]) == sorted(trained) and len(trained) == 3
    settings = doc["settings"]
    saved = read_cell_records(rec, setting="lab", settings=settings)
    assert all(c["epochs"] == 1 and c["provenance"]["run_git_commit"] for c in saved.values())
    # another machine: no grid store, no runs; the fourth cell missing from the records
    trained.clear()
    third, camp, _ = _records_stage(tmp_path, "c", records(), monkeypatch, trained)
    assert len(trained) == 1 and third["attrs"]["cells_from_records"] == 3
    assert any("3 of 4 cells read from their records" in line for line in camp.log)
    assert len(read_cell_records(rec, setting="lab", settings=settings)) == 4  # recorded too
    for key in first:
        if key not in ("attrs", "epoch_wall_s"):  # wall times differ run to run
            np.testing.assert_array_equal(third[key], first[key], err_msg=key)
    # records of cells trained with other settings are not used, nor written over
    doc = json.load(open(rec))
    doc["settings"]["train.n_samples"] = "61"
    json.dump(doc, open(rec, "w"))
    before = open(rec).read()
    trained.clear()
    _, camp, _ = _records_stage(tmp_path, "d", records(), monkeypatch, trained)
    assert len(trained) == 4 and open(rec).read() == before
    assert any(line.startswith("cell records not used:") and "other settings" in line
               and "train.n_samples" in line for line in camp.log)  # fmt: skip
    assert any(line.startswith("cells not recorded:") for line in camp.log)


def test_cell_records_keep_the_longer_record_and_refuse_what_does_not_match(tmp_path):
    from ei_sim.analysis.reproduce import cell_records as C

    path = C.cells_path(str(tmp_path), "grid", "full", "lab")
    settings = {"model.config.n_e": 1024, "train.n_samples": 2000}

    def cell(n_epochs):
        metrics = {k: np.linspace(0.1, 0.5, n_epochs) for k in C.METRICS}
        return {"w_ei": 0.5, "w_ie": 2.0, "seed": 42, "metrics": metrics,
                "provenance": {"run_git_commit": f"c{n_epochs}"}}  # fmt: skip

    write = functools.partial(C.write_cell_records, path, experiment="grid", scale="full",
                              setting="lab", settings=settings)  # fmt: skip
    write(cells={"x": cell(3)})
    write(cells={"x": cell(2)})  # fewer epochs: the record is kept
    got = C.read_cell_records(path, setting="lab", settings=settings)
    assert got["x"]["epochs"] == 3 and got["x"]["provenance"]["run_git_commit"] == "c3"
    np.testing.assert_array_equal(got["x"]["metrics"]["test_accuracy"], np.linspace(0.1, 0.5, 3))
    write(cells={"x": cell(5)})
    records = C.CellRecords("grid", "full", "lab", settings, (path,))
    assert records.finished(4, ["x", "y"])["x"]["metrics"]["test_accuracy"].size == 4
    assert records.finished(6, ["x"]) == {}
    assert R.available(str(tmp_path), "grid", "full", "lab") == []  # not a results file
    # the diagonal reads the grid's records (its axes and seeds differ, its cells' settings not)
    diagonal = C.CellRecords.under("diagonal", "full", "lab", str(tmp_path), settings=settings)
    assert diagonal.read_paths[0] == C.cells_path(str(tmp_path), "diagonal", "full", "lab")
    assert diagonal.finished(5, ["x"])["x"]["source"] == path
    lines = []
    other = C.CellRecords.under("diagonal", "full", "lab", str(tmp_path),
                                settings={**settings, "model.config.n_e": 64})  # fmt: skip
    assert other.finished(1, ["x"], lines.append) == {} and "model.config.n_e" in lines[0]
    with pytest.raises(ValueError, match="other settings"):  # not written over
        C.write_cell_records(path, experiment="grid", scale="full", setting="lab",
                             settings={**settings, "model.config.n_e": 64}, cells={})  # fmt: skip
    doc = json.load(open(path))
    for broken in ({**doc, "layout": C.LAYOUT + 1}, [1, 2],
                   {**doc, "cells": {"x": {**doc["cells"]["x"], "epochs": 9}}},
                   {**doc, "cells": {"x": {"epochs": 5}}}):  # fmt: skip
        json.dump(broken, open(path, "w"))
        lines = []
        assert records.finished(1, ["x"], lines.append) == {}
        assert len(lines) == 1 and lines[0].startswith("cell records not used:")


def test_the_shipped_cell_records_match_the_lab_grid_settings():
    """The grid cells the campaign shipped are read by ``ei-sim reproduce grid --scale full``
    (the same settings of their cells), each with at least 30 epochs and the commit it
    trained with; the diagonal reads them too."""
    from ei_sim.analysis.reproduce import cell_records as C

    assert _lab_grid_settings("diagonal") == _lab_grid_settings("grid")
    path = C.cells_path(R.shipped_root(), "grid", "full", "lab")
    cells = C.read_cell_records(path, setting="lab", settings=_lab_grid_settings())
    assert len(cells) >= 7
    for cell in cells.values():
        assert cell["epochs"] >= 30 and cell["provenance"]["run_git_commit"]
        assert cell["metrics"]["test_accuracy"].shape == (cell["epochs"],)


def test_an_interim_page_reads_the_records_trains_nothing_and_names_what_is_missing(
    tmp_path, monkeypatch, capsys
):
    """``--records-only``: the grid page from three recorded cells (the other 22 named as not
    yet run, the verdict "not yet run" with the interim evidence), beside a campaign holding
    the store's lock; nothing trained, no store written; the diagonal takes the recorded cell
    on it; an experiment without a grid, or a grid without a record, is refused in one line."""
    from ei_sim.analysis.reproduce import cell_records as C
    from ei_sim.analysis.reproduce.runner import store_path

    shipped, out = tmp_path / "shipped", tmp_path / "out"
    out.mkdir()
    monkeypatch.setenv(R.ENV_ROOT, str(shipped))

    def cell(a, b, i_hz):
        metrics = {k: np.full(30, 0.5) for k in C.METRICS}
        metrics["test_accuracy"] = np.linspace(0.6, 0.8, 30)
        metrics["test_rate_e_Hz"] = np.full(30, 2.5)
        metrics["test_rate_i_Hz"] = np.asarray(i_hz, float) * np.ones(30)
        return {"w_ei": a, "w_ie": b, "seed": 42, "metrics": metrics,
                "provenance": {"run_git_commit": "abc1234"}}  # fmt: skip

    C.write_cell_records(C.cells_path(str(shipped), "grid", "full", "lab"), experiment="grid",
                         scale="full", setting="lab", settings=_lab_grid_settings(), cells={
                             "wei0p25__wie0p5__seed42": cell(0.25, 0.5, 0.0),
                             "wei2__wie1__seed42": cell(2.0, 1.0, 20.0),
                             "wei1__wie0p25__seed42": cell(1.0, 0.25, np.linspace(12, 1, 30)),
                         })  # fmt: skip
    argv = ["reproduce", "grid", "--scale", "full", "--epochs", "30", "--records-only",
            "--out", str(out)]  # fmt: skip
    held = store_path(str(out), "grid", "full", "lab", 30)  # by a campaign, in another process
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time\n"
                               "from ei_sim.store.lock import exclusive\n"
                               f"with exclusive({held!r}):\n"
                               "    print('held', flush=True); time.sleep(120)"],
                              stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "held"
        assert main(argv) == 0
    finally:
        holder.kill()
        holder.wait(timeout=60)
    text = capsys.readouterr().out
    assert "Interim page from the cell records: 3 of 25 cells, each at 30 epochs" in text
    assert "not yet run: (0, 0), (0, 0.25)" in text and "(2, 2)" in text
    assert ("**not yet run** (30 epochs): interim, 3 of 25 cells: PING corner 1/1 recorded (of "
            "4) cells PING, stretched-COBA corner 1/1 recorded (of 8) cells with silent I") in text
    assert "W_EI 1, W_IE 0.25: best accuracy" in text and "label PING (I falling)" in text
    assert "W_EI 0, W_IE 0: best accuracy" not in text
    written = [f for f in os.listdir(out) if not f.endswith(".lock")]  # (the campaign's lock)
    assert sorted(written) == ["grid_full_lab_30ep_interim.html", "grid_full_lab_30ep_interim.md",
                               "grid_full_lab_30ep_interim_basins.png"], written  # fmt: skip
    assert main(argv[:1] + ["diagonal"] + argv[2:]) == 0  # (0.25, 0.5) is on the diagonal
    assert ("Interim page from the cell records: 1 of 30 cells, each at 30 epochs; not yet run: "
            "seed 42: W_EI 0, 0.1, 0.4, 0.5, 0.6, 0.75, 1, 1.5, 2; seed 43: every W_EI; seed 44: "
            "every W_EI") in capsys.readouterr().out  # fmt: skip
    # records under --save-results DIR too: another seed of one diagonal point, and a grid cell
    mine = tmp_path / "mine"
    C.write_cell_records(C.cells_path(str(mine), "diagonal", "full", "lab"),
                         experiment="diagonal", scale="full", setting="lab",
                         settings=_lab_grid_settings("diagonal"), cells={
                             "wei0p25__wie0p5__seed43": {**cell(0.25, 0.5, 0.0), "seed": 43},
                             "wei0p5__wie1__seed42": cell(0.5, 1.0, 0.2),
                         })  # fmt: skip
    assert main(argv[:1] + ["diagonal"] + argv[2:] + ["--save-results", str(mine)]) == 0
    text = capsys.readouterr().out
    assert "3 of 30 cells" in text and "W_EI 0.25: accuracy, mean over seeds [42, 43]" in text
    assert "W_EI 0.5: accuracy, mean over seeds [42]" in text
    assert "not every point has every seed" in text
    assert not os.path.exists(C.cells_path(str(mine), "grid", "full", "lab"))  # nothing recorded
    for bad, why in ((["budgets"], "has none (use grid or diagonal)"),
                     (["grid", "--setting", "canonical"], "no cell of this grid is recorded"),
                     (["grid", "--dry-run"], "--dry-run does not go with it"),
                     (["summary"], "summary does not go with it")):
        assert main(["reproduce", *bad, *argv[2:]]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and why in err[0] and "Traceback" not in err[0], err


def test_an_interim_page_of_every_cell_gives_the_full_verdict(tmp_path, monkeypatch, capsys):
    """Every cell of the lab's grid recorded: the page names none as not yet run and gives
    the verdict itself (here: both corners as the lab's, every label the lab's)."""
    from ei_sim.analysis.reproduce import cell_records as C
    from ei_sim.analysis.reproduce.reference import load_reference
    from ei_sim.sweeps.store import cell_name

    monkeypatch.setenv(R.ENV_ROOT, str(tmp_path))
    reference, cells = load_reference(None), {}
    for a in (0.0, 0.25, 0.5, 1.0, 2.0):
        for b in (0.0, 0.25, 0.5, 1.0, 2.0):
            lab_i = reference.get(f"grid.{a:g}.{b:g}.rate_i").value  # the lab's rates
            metrics = {k: np.full(30, 0.5) for k in C.METRICS}
            metrics["test_rate_e_Hz"] = np.full(30, reference.get(f"grid.{a:g}.{b:g}.rate_e").value)
            metrics["test_rate_i_Hz"] = np.full(30, lab_i)
            cells[cell_name(a, b, 42)] = {"w_ei": a, "w_ie": b, "seed": 42, "metrics": metrics,
                                          "provenance": {"run_git_commit": "abc1234"}}  # fmt: skip
    C.write_cell_records(C.cells_path(str(tmp_path), "grid", "full", "lab"), experiment="grid",
                         scale="full", setting="lab", settings=_lab_grid_settings(), cells=cells)
    out = tmp_path / "out"
    out.mkdir()
    assert main(["reproduce", "grid", "--scale", "full", "--epochs", "30", "--records-only",
                 "--out", str(out)]) == 0  # fmt: skip
    text = capsys.readouterr().out
    assert "25 of 25 cells, each at 30 epochs; not yet run: none" in text
    assert "label agreement with the lab's stored cells: 25 of 25" in text
    assert "**reproduced** (30 epochs): PING corner 4/4 cells PING" in text and "interim" not in (
        text.split("## Verdicts")[1].split("|")[0])  # fmt: skip
