"""Nothing lost when two commands meet, the disk fills or a file is damaged (issue 27).

- one writer per output: a second writer is refused at once, naming the first; a lock whose
  holder was killed is taken over (findings 1 and 2);
- a full disk gives one line and exit status 2, never a signal or a traceback, and the
  previous file stays (finding 3): a small tmpfs mounted here when the tests run as root,
  an injected ENOSPC otherwise;
- damaged stores: a table of damages (flipped bytes, deleted groups, edited attributes,
  truncation) for every reader and every resume: a one-line refusal or a recomputation, the
  neighbours unchanged; ``ei-sim verify`` (finding 4);
- stale temporaries of every kind removed by the next writer; Ctrl-C on a Dask grid ends
  without Dask's tracebacks (finding 6).

The stores are copies of the golden files (data/golden), sealed with checksums where a test
needs a file of this release, and damaged in place: nothing is trained except in the
tests marked slow.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest
from golden_files import GRID_2X2, SCALE_SWEEP, SIMULATE, TINY_RUN, copy_of

from ei_sim.cli import main
from ei_sim.store import atomic, checksum
from ei_sim.store.lock import Busy, exclusive, holder_of, lock_path

IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
SIM_ARGS = ["simulate", "--model", "va_coba", "--no-progress"]
GRID_CELLS = ("wei0__wie0__seed42", "wei0__wie4__seed42", "wei2__wie0__seed42",
              "wei2__wie4__seed42")  # fmt: skip
# the flags that make `ei-sim grid` resume data/golden/grid_2x2.h5
GOLDEN_GRID = ["grid", "--executor", "serial", "--tier", "tiny", "--n-e", "32", "--t-ms", "50",
               "--samples", "120", "--batch-size", "40", "--epochs", "1", "--wei", "0,2",
               "--wie", "0,4", "--seeds", "42"]  # fmt: skip


# helpers ---------------------------------------------------------------------------------


def _ei_sim() -> list[str]:
    script = os.path.join(os.path.dirname(sys.executable), "ei-sim")
    return [script] if os.path.exists(script) else [sys.executable, "-m", "ei_sim.cli"]


def _digest(path) -> str:
    with open(path, "rb") as fh:
        return hashlib.sha256(fh.read()).hexdigest()


def _wait(predicate, timeout_s: float = 120.0, what: str = "") -> None:
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout_s:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


STATUS_LINE = re.compile(r"^ei-sim [a-z ]+: (?!error:)(.* \.\.\.|done in [0-9.]+ s)$")


def _one_line(capsys, code_expected: int, code: int) -> str:
    """The one line of stderr of a refused command (its status lines, ``ei-sim export:
    reading ... ...`` from :mod:`ei_sim.cli.status`, are not part of the refusal)."""
    err = [line for line in capsys.readouterr().err.splitlines()
           if line.strip() and not STATUS_LINE.match(line)]  # fmt: skip
    assert code == code_expected, err
    assert len(err) == 1, err
    assert "Traceback" not in err[0]
    return err[0]


def _start(argv, tmp_path, name):
    """A real ei-sim process (its own output files), SIGINT at its default."""
    out = open(tmp_path / f"{name}.out", "w")  # noqa: SIM115 - closed by the OS at exit
    return subprocess.Popen([*_ei_sim(), *argv], stdout=out, stderr=subprocess.STDOUT,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def _holding(path, proc) -> bool:
    holder = holder_of(str(path))
    return holder is not None and holder.pid == proc.pid


def _stop(proc) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=60)


DRIVER = r"""
import contextlib, io, json, os, re, sys
from ei_sim.cli import main
if "no-precheck" in sys.argv[2:]:  # the disk fills after every check of its free space
    import ei_sim.store.atomic as atomic
    import ei_sim.store.stream as stream
    stream.StreamWriter._check_room = lambda self, chunk: None
    atomic.check_free_space = lambda path, needed: None
    import ei_sim.analysis.export.common as common
    common.check_free_space = lambda path, needed: None
results = []
for argv in json.loads(sys.argv[1]):
    if argv[0] == "rm":  # not a command: remove a file between two commands
        os.unlink(argv[1])
        continue
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(argv)
    status = re.compile(sys.argv[-1])  # the status lines: not part of a refusal
    results.append([code, [line for line in err.getvalue().splitlines()
                           if line.strip() and not status.match(line)]])
print(json.dumps(results))
"""


def _in_process(calls, *flags, timeout_s: float = 600.0) -> list:
    """Run ``main(argv)`` for each argv in a fresh Python process; [(code, stderr lines)].
    The process itself must end normally (no signal, no crash)."""
    done = subprocess.run([sys.executable, "-c", DRIVER, json.dumps(calls), *flags,
                           STATUS_LINE.pattern],
                          capture_output=True, text=True, timeout=timeout_s)  # fmt: skip
    assert done.returncode == 0, (done.returncode, done.stderr[-3000:])
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture
def small_disk(tmp_path):
    """A 6 MB tmpfs mounted at ``tmp_path/disk`` (root only; None where it cannot be, or
    with EI_SIM_TEST_NO_TMPFS=1: the tests then inject ENOSPC instead)."""
    if not IS_ROOT or shutil.which("mount") is None or os.environ.get("EI_SIM_TEST_NO_TMPFS"):
        yield None
        return
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", str(mount_point)],
                          capture_output=True)  # fmt: skip
    if done.returncode != 0:
        yield None
        return
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], capture_output=True)


def _few_cells(path, n_cells: int = 12) -> str:
    """Keep the spikes of the first ``n_cells`` cells of each population of a simulate file
    written before checksums (an export to NIX takes about 80 ms per cell here)."""
    with h5py.File(path, "a") as fh:
        for pop in ("e", "i"):
            group = fh[f"spikes/{pop}"]
            keep = group["index"][()] < n_cells
            for name in list(group):
                values = group[name][()][keep]
                del group[name]
                group[name] = values
            group.attrs["n_cells"] = n_cells
        del fh["traces"]
    return path


def _fill(folder, leave_bytes: int) -> None:
    """Fill the file system of ``folder`` up to ``leave_bytes`` of free space."""
    free = shutil.disk_usage(folder).free
    with open(os.path.join(folder, "filler"), "wb") as fh:
        with contextlib.suppress(OSError):
            fh.write(b"\0" * max(0, free - leave_bytes))


def _no_space(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


# files of this release (sealed) and their damages ------------------------------------------


def _golden_grid_settings() -> dict:
    """The settings ``ei-sim grid`` GOLDEN_GRID writes into a store of this release."""
    from ei_sim.cli import build_parser
    from ei_sim.cli.grid import grid_spec

    parser, _ = build_parser()
    return grid_spec(parser.parse_args([*GOLDEN_GRID, "--out", "unused.h5"])).settings()


def _current(path) -> str:
    """Give the golden grid store (written by an earlier release, its settings kept as the
    flags that differed from the defaults) the settings of this release, so that
    GOLDEN_GRID resumes it; its cells stay unsealed, as before checksums existed."""
    with h5py.File(path, "a") as fh:
        if fh.attrs.get("kind") == "grid":
            fh.attrs.update(_golden_grid_settings())
    return path


def _seal_all(path) -> str:
    """Give a golden file (written before checksums) the settings (:func:`_current`) and
    the checksums of this release."""
    _current(path)
    with h5py.File(path, "a") as fh:
        kind = fh.attrs.get("kind")
        if kind == "grid":
            for name in fh["cells"]:
                checksum.seal(fh["cells"][name])
        else:
            checksum.seal(fh)
    return path


def _flip(path, dataset: str) -> None:
    """Flip one byte in the middle of the stored bytes of ``dataset``."""
    with h5py.File(path, "r") as fh:
        ds = fh[dataset]
        if ds.chunks is None:
            offset, size = ds.id.get_offset(), ds.id.get_storage_size()
        else:
            info = ds.id.get_chunk_info(0)
            offset, size = info.byte_offset, info.size
    with open(path, "r+b") as fh:
        fh.seek(offset + size // 2)
        byte = fh.read(1)
        fh.seek(offset + size // 2)
        fh.write(bytes([byte[0] ^ 0xFF]))


def _delete(path, item: str) -> None:
    with h5py.File(path, "a") as fh:
        del fh[item]


def _edit_attr(path, group: str, key: str, value) -> None:
    with h5py.File(path, "a") as fh:
        fh[group].attrs[key] = value


def _truncate(path) -> None:
    os.truncate(path, int(os.path.getsize(path) * 0.6))


CELL = "cells/wei2__wie4__seed42"
DAMAGES = {  # name -> (file, how to damage it, what the one line names)
    "grid-flipped-weights": (GRID_2X2, lambda p: _flip(p, f"{CELL}/weights/w_in"), CELL),
    "grid-flipped-metrics": (GRID_2X2, lambda p: _flip(p, f"{CELL}/metrics/test_accuracy"),
                             CELL),
    "grid-deleted-weights": (GRID_2X2, lambda p: _delete(p, f"{CELL}/weights"), CELL),
    "grid-deleted-metrics": (GRID_2X2, lambda p: _delete(p, f"{CELL}/metrics"), CELL),
    "grid-edited-rate": (GRID_2X2, lambda p: _edit_attr(p, CELL, "rate_e_Hz", 99.0), CELL),
    "grid-truncated": (GRID_2X2, _truncate, "unreadable"),
    "run-flipped-weights": (TINY_RUN, lambda p: _flip(p, "weights/best/w_in"), "damaged"),
    "run-flipped-metrics": (TINY_RUN, lambda p: _flip(p, "metrics/test_accuracy"), "damaged"),
    "run-deleted-best": (TINY_RUN, lambda p: _delete(p, "weights/best"),
                         ("without weights/best", "run.h5 is damaged")),
    "run-truncated": (TINY_RUN, _truncate, "unreadable"),
    "simulate-flipped-spikes": (SIMULATE, lambda p: _flip(p, "spikes/e/index"), "damaged"),
    "simulate-deleted-population": (SIMULATE, lambda p: _delete(p, "population/i"),
                                    "damaged"),
    "simulate-truncated": (SIMULATE, _truncate, "unreadable"),
    "sweep-flipped-accuracy": (SCALE_SWEEP, lambda p: _flip(p, "accuracy"), "damaged"),
    "sweep-truncated": (SCALE_SWEEP, _truncate, "unreadable"),
}  # fmt: skip
READERS = {  # kind of file -> the commands that read it ({} is the file); export's status
    # lines (what it reads and writes) silenced, so that its refusal is the only line
    "grid": [["analyze", "basins", "{}"], ["report", "{}", "--out", "{out}/r.html"],
             ["export", "{}", "--to", "xarray", "--out", "{out}/g.nc", "--quiet"]],
    "run": [["eval", "{}"], ["sweep", "scale", "{}", "--scales", "1", "--out", "{out}"],
            ["export", "{}", "--to", "nwb", "--out", "{out}/r.nwb", "--quiet"]],
    "simulate": [["analyze", "gamma", "{}"], ["report", "{}", "--out", "{out}/r.html"],
                 ["export", "{}", "--to", "nwb", "--out", "{out}/s.nwb", "--quiet"]],
    "sweep": [["analyze", "cliff", "{}"], ["report", "{}", "--out", "{out}/r.html"],
              ["export", "{}", "--to", "xarray", "--out", "{out}/s.nc", "--quiet"]],
}  # fmt: skip


def _damaged_copy(name: str, folder) -> str:
    source, damage, _ = DAMAGES[name]
    path = copy_of(source, folder)
    if source == TINY_RUN:  # a run directory
        os.replace(path, os.path.join(folder, "run.h5"))
        path = os.path.join(folder, "run.h5")
    _seal_all(path)
    damage(path)
    return path


def _reader_argv(argv, path, out) -> list[str]:
    target = os.path.dirname(path) if path.endswith("run.h5") else path
    return [a.replace("{}", target).replace("{out}", str(out)) for a in argv]


@pytest.mark.parametrize("name", sorted(DAMAGES))
def test_every_reader_refuses_a_damaged_file_in_one_line(name, tmp_path, capsys):
    """Each damaged file, given to every command that reads its kind: exit 2, one line
    naming the damaged part (or the unreadable file), no output written."""
    path = _damaged_copy(name, tmp_path / "in")
    out = tmp_path / "out"
    out.mkdir()
    fragments = DAMAGES[name][2]
    fragments = (fragments,) if isinstance(fragments, str) else fragments
    for argv in READERS[name.split("-")[0]]:
        line = _one_line(capsys, 2, main(_reader_argv(argv, path, out)))
        assert any(f in line for f in fragments), (argv, line)
    assert os.listdir(out) == []
    code = main(["verify", os.path.dirname(path) if path.endswith("run.h5") else path])
    report = capsys.readouterr().out
    assert code == 1 and "DAMAGED" in report, report


def test_sound_files_of_this_release_and_of_earlier_ones_are_read(tmp_path, capsys):
    """The same readers take the sealed copies, and the golden files as written before
    checksums existed (not verified, so said by verify)."""
    for source in (GRID_2X2, SIMULATE, SCALE_SWEEP):
        path = _seal_all(copy_of(source, tmp_path / "sealed"))
        assert main(["verify", path]) == 0
        assert "sound" in capsys.readouterr().out
        legacy = copy_of(source, tmp_path / "legacy")
        assert main(["verify", legacy]) == 0
        assert "readable, not verified" in capsys.readouterr().out
    sealed = _seal_all(copy_of(GRID_2X2, tmp_path / "again"))
    assert main(["analyze", "basins", sealed]) == 0
    assert main(["analyze", "basins", copy_of(GRID_2X2, tmp_path / "old")]) == 0


@pytest.mark.parametrize("damage", ["grid-flipped-weights", "grid-deleted-weights",
                                    "grid-edited-rate", "legacy-deleted-weights"])
def test_a_grid_resume_recomputes_a_damaged_cell_and_keeps_its_neighbours(
        damage, tmp_path, capsys, monkeypatch):  # fmt: skip
    """Re-running the grid: the damaged cell is named in one line and trained again, the
    three others are skipped and stay byte for byte (their arrays and checksums)."""
    import ei_sim.sweeps.grid as grid

    if damage == "legacy-deleted-weights":  # a store written before checksums
        store = _current(copy_of(GRID_2X2, tmp_path))
        _delete(store, f"{CELL}/weights")
    else:
        store = _damaged_copy(damage, tmp_path)
    with h5py.File(GRID_2X2) as fh:
        golden = fh[CELL]
        result = {"summary": {k: golden.attrs[k] for k in ("w_ei", "w_ie", "seed",
                  "best_accuracy", "final_accuracy", "best_epoch", "rate_e_Hz", "rate_i_Hz",
                  "gamma_peak_Hz")} | {"run_dir": "none"},
                  "metrics": {k: golden["metrics"][k][()] for k in golden["metrics"]},
                  "weights": {k: golden["weights"][k][()] for k in golden["weights"]}}  # fmt: skip
    trained = []

    def fake_train_cell(spec, w_ei, w_ie, seed, cell_dir, on_epoch=None, after_epoch=None):
        trained.append((w_ei, w_ie, seed))
        return result

    monkeypatch.setattr(grid, "train_cell", fake_train_cell)
    neighbours = {}
    with h5py.File(store) as fh:
        for name in GRID_CELLS:
            if f"cells/{name}" != CELL:
                group = fh["cells"][name]
                neighbours[name] = checksum.digest(group)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    assert main([*GOLDEN_GRID, "--out", store]) == 0
    captured = capsys.readouterr()
    notes = [line for line in captured.err.splitlines() if line.startswith("note:")]
    assert len(notes) == 1 and CELL in notes[0] and "computing it again" in notes[0], notes
    assert trained == [(2.0, 4.0, 42)]
    assert "skipped 3 finished cells" in captured.out
    with h5py.File(store) as fh:
        for name, value in neighbours.items():
            assert checksum.digest(fh["cells"][name]) == value
        assert checksum.verdict(fh[CELL]).status == checksum.SOUND
    assert main(["verify", store]) == 0


def test_a_reproduction_resume_recomputes_a_damaged_stage(tmp_path, capsys):
    from ei_sim.analysis.reproduce import store as rstore

    path = str(tmp_path / "r.h5")
    meta = {"experiment": "budgets", "scale": "quick"}
    assert rstore.open_or_create(path, meta) == set()
    rstore.save_stage(path, "a", {"x": 1.0}, {"curve": np.arange(50.0)})
    rstore.save_stage(path, "b", {"x": 2.0}, {"curve": np.arange(50.0) * 2})
    before = _digest(path)
    _flip(path, "stages/a/curve")
    assert _digest(path) != before
    assert rstore.open_or_create(path, meta) == {"b"}  # a is computed again
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "stages/a is damaged" in err[0]
    with pytest.raises(checksum.Damaged, match="stages/a is damaged"):
        rstore.load_stage(path, "a")
    np.testing.assert_array_equal(rstore.load_stage(path, "b")["curve"], np.arange(50.0) * 2)
    rstore.save_stage(path, "a", {"x": 1.0}, {"curve": np.arange(50.0)})  # recomputed
    assert sorted(rstore.load_stages(path)) == ["a", "b"]


@pytest.mark.parametrize("remove, fragment", [
    ("weights/best", "without weights/best"), ("optimizer", "without optimizer"),
])  # fmt: skip
def test_a_run_without_what_a_command_needs_is_refused_in_one_line(remove, fragment, tmp_path,
                                                                  capsys):  # fmt: skip
    """A run written before checksums that lacks a group: eval, both sweeps and train
    --resume each name the group in one line (no KeyError traceback)."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    path = shutil.copyfile(TINY_RUN, run_dir / "run.h5")
    _delete(path, remove)
    commands = [["train", "--tier", "tiny", "--n-e", "32", "--t-ms", "50", "--samples", "120",
                 "--batch-size", "40", "--epochs", "2", "--resume", "--out", str(run_dir)]]
    if remove == "weights/best":
        commands += [["eval", str(run_dir)], ["sweep", "scale", str(run_dir), "--scales", "1"],
                     ["sweep", "coupling", str(run_dir), "--wei-scale", "1", "--scales", "1"]]
    before = _digest(path)
    for argv in commands:
        line = _one_line(capsys, 2, main(argv))
        assert fragment in line, (argv, line)
    assert _digest(path) == before
    assert sorted(os.listdir(run_dir)) == ["run.h5"]


def test_train_resume_refuses_a_damaged_run_and_a_cell_run_is_trained_again(tmp_path, capsys):
    from ei_sim.training.spiking import discard_damaged_run

    path = _damaged_copy("run-flipped-weights", tmp_path / "run")
    before = _digest(path)
    line = _one_line(capsys, 2, main(["train", "--tier", "tiny", "--n-e", "32", "--t-ms", "50",
                                      "--samples", "120", "--batch-size", "40", "--epochs", "2",
                                      "--resume", "--out", str(tmp_path / "run")]))  # fmt: skip
    assert "is damaged" in line and "verify" in line
    assert _digest(path) == before  # never trained over
    sound = tmp_path / "cell_ok"
    sound.mkdir()
    _seal_all(shutil.copyfile(TINY_RUN, sound / "run.h5"))
    assert discard_damaged_run(str(sound)) is None and (sound / "run.h5").exists()
    lines = []
    assert "damaged" in discard_damaged_run(str(tmp_path / "run"), lines.append)
    assert not os.path.exists(path) and len(lines) == 1 and "training it again" in lines[0]


def test_damaged_snapshots_are_named_by_the_video_and_export(tmp_path, capsys):
    path = _run_with_snapshots(tmp_path / "run", n_epochs=2)
    _flip(path, "snapshots/epoch_0002/v_trace_mV")
    for argv in (["video", str(tmp_path / "run")],
                 ["export", str(tmp_path / "run"), "--to", "nwb"]):  # fmt: skip
        line = _one_line(capsys, 2, main(argv))
        assert "snapshots/epoch_0002 is damaged" in line
    assert sorted(os.listdir(tmp_path / "run")) == ["run.h5"]


# one writer per output ---------------------------------------------------------------------


def test_finding_1_a_second_simulate_on_the_same_out_leaves_the_first_alone(tmp_path, capsys):
    """The first simulate streams into s.h5.partial (paused mid-run); a second one on the same
    --out is refused at once, naming the first, and touches nothing; the first completes."""
    out = tmp_path / "s.h5"
    first = _start([*SIM_ARGS, "--t-ms", "3000", "--chunk-ms", "100", "--out", str(out)],
                   tmp_path, "first")  # fmt: skip
    try:
        _wait(lambda: _holding(out, first) and os.path.exists(f"{out}.partial")
              and os.path.getsize(f"{out}.partial") > 0, what="the first simulate's partial")
        first.send_signal(signal.SIGSTOP)  # paused inside its run
        partial = _digest(f"{out}.partial")
        start = time.monotonic()
        line = _one_line(capsys, 2, main([*SIM_ARGS, "--t-ms", "20", "--out", str(out)]))
        assert time.monotonic() - start < 10
        assert f"pid {first.pid}" in line and "is being written by another process" in line
        assert "ei-sim simulate" in line and "--t-ms 3000" in line
        assert _digest(f"{out}.partial") == partial and not out.exists()
        first.send_signal(signal.SIGCONT)
        assert first.wait(timeout=300) == 0, (tmp_path / "first.out").read_text()
    finally:
        with contextlib.suppress(ProcessLookupError):
            first.send_signal(signal.SIGCONT)
        _stop(first)
    assert main(["verify", str(out)]) == 0
    assert "sound (1 checksum verified)" in capsys.readouterr().out
    assert sorted(os.listdir(tmp_path)) == ["first.out", "s.h5"]  # no lock file left


def test_finding_2_a_second_train_resume_is_refused_and_the_run_is_kept(tmp_path, capsys):
    """The slow resume holds the run (paused in its work); a second resume is refused at
    once, in one line naming it, and can neither overwrite nor lose finished epochs."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    path = _seal_all(shutil.copyfile(TINY_RUN, run_dir / "run.h5"))
    before = _digest(path)
    flags = ["train", "--tier", "tiny", "--n-e", "32", "--t-ms", "50", "--samples", "120",
             "--batch-size", "40", "--resume", "--out", str(run_dir)]  # fmt: skip
    slow = _start([*flags, "--epochs", "3"], tmp_path, "slow")
    try:
        _wait(lambda: _holding(run_dir / "run.h5", slow), what="the first resume's lock")
        slow.send_signal(signal.SIGSTOP)
        start = time.monotonic()
        line = _one_line(capsys, 2, main([*flags, "--epochs", "6"]))
        assert time.monotonic() - start < 10
        assert f"pid {slow.pid}" in line and "--epochs 3" in line
        assert _digest(path) == before
    finally:
        _stop(slow)  # killed while it held the lock: the run stays as it was
    assert _digest(path) == before and holder_of(str(run_dir / "run.h5")) is None


def test_finding_2_a_second_grid_on_one_store_is_refused_at_once(tmp_path, capsys):
    store = _seal_all(copy_of(GRID_2X2, tmp_path))
    before = _digest(store)
    first = _start([*GOLDEN_GRID, "--out", store], tmp_path, "first")
    try:
        _wait(lambda: _holding(store, first), what="the first grid's lock")
        first.send_signal(signal.SIGSTOP)
        start = time.monotonic()
        line = _one_line(capsys, 2, main([*GOLDEN_GRID, "--out", store]))
        assert time.monotonic() - start < 10
        assert f"pid {first.pid}" in line and "ei-sim grid" in line and "--resume" not in line
    finally:
        _stop(first)
    assert _digest(store) == before


def test_a_lock_whose_holder_was_killed_is_taken_over(tmp_path, capsys):
    """SIGKILL the holder (a simulate, mid-run): its lock file stays behind, but the next
    writer of the same output proceeds at once and removes it."""
    out = tmp_path / "s.h5"
    holder = _start([*SIM_ARGS, "--t-ms", "3000", "--chunk-ms", "100", "--out", str(out)],
                    tmp_path, "holder")  # fmt: skip
    try:
        _wait(lambda: _holding(out, holder), what="the holder's lock")
        holder.send_signal(signal.SIGSTOP)
        assert isinstance(holder_of(str(out)).pid, int)
    finally:
        holder.kill()
        holder.wait(timeout=60)
    assert os.path.exists(lock_path(str(out)))  # left by the killed holder
    assert holder_of(str(out)) is None  # but not held: the kernel released it
    assert main([*SIM_ARGS, "--t-ms", "20", "--out", str(out)]) == 0
    capsys.readouterr()
    assert not os.path.exists(lock_path(str(out)))
    assert main(["verify", str(out)]) == 0


def test_locks_are_reentrant_and_exclusive_across_processes(tmp_path):
    out = str(tmp_path / "x.h5")
    with exclusive(out), exclusive(out):  # the same process: re-entrant
        assert holder_of(out).pid == os.getpid()
        script = ("import sys; from ei_sim.store.lock import exclusive\n"
                  f"with exclusive({out!r}): pass")  # fmt: skip
        other = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
        assert other.returncode == 1 and "Busy" in other.stderr
        assert f"pid {os.getpid()}" in other.stderr
    assert holder_of(out) is None and not os.path.exists(lock_path(out))
    assert issubclass(Busy, ValueError)  # one line at the command line


# a full disk ---------------------------------------------------------------------------------


def _run_with_snapshots(run_dir, n_epochs: int = 2) -> str:
    """A run directory whose run.h5 holds ``n_epochs`` small snapshots (for videos)."""
    from ei_sim.store.snapshot import Snapshot, weight_histograms, write_snapshot

    os.makedirs(run_dir, exist_ok=True)
    path = os.path.join(run_dir, "run.h5")
    rng = np.random.default_rng(0)
    with atomic.atomic_h5(path, kind="run", seal=False) as fh:
        fh.attrs["model.name"] = "ping"
        fh.create_dataset("weights/best/w_in", data=np.zeros((4, 4), np.float32))
        for epoch in range(1, n_epochs + 1):
            write_snapshot(fh, Snapshot(
                epoch=epoch, image=rng.random(784), label=3, dt_ms=0.1, drop_ms=20.0,
                spikes_e=rng.random((300, 32)) < 0.05, spikes_i=rng.random((300, 8)) < 0.05,
                v_trace_mV=rng.normal(-60, 5, 300), v_th_mV=-50.0, v_reset_mV=-60.0,
                weight_hists=weight_histograms({"w_in": rng.random((20, 20))}),
                accuracy=rng.random(epoch), rate_e_Hz=rng.random(epoch) * 10,
                rate_i_Hz=rng.random(epoch) * 10, model="ping", w_ei=1.0, w_ie=2.0,
                budget="off"))  # fmt: skip
    return path


def test_finding_3_video_on_a_full_disk_keeps_the_previous_video(small_disk, tmp_path,
                                                                 capsys, monkeypatch):  # fmt: skip
    folder = small_disk or tmp_path
    _run_with_snapshots(folder / "run")
    video = folder / "run" / "video.mp4"
    assert main(["video", str(folder / "run")]) == 0
    capsys.readouterr()
    good = _digest(video)
    if small_disk is not None:
        _fill(folder, 16 << 10)  # less than the video takes
    else:  # ffmpeg writes into /dev/full: "No space left on device" at its first write
        import ei_sim.analysis.video.encode as encode

        real = encode.ffmpeg_command
        monkeypatch.setattr(encode, "ffmpeg_command",
                            lambda size, fps, path: real(size, fps, "/dev/full"))
    line = _one_line(capsys, 2, main(["video", str(folder / "run")]))
    assert "no space left on device" in line and "ffmpeg" in line
    assert _digest(video) == good
    assert sorted(os.listdir(folder / "run")) == ["run.h5", "video.mp4"]


def test_a_video_that_ffmpeg_leaves_without_its_trailer_is_refused(tmp_path, capsys,
                                                                   monkeypatch):  # fmt: skip
    """ffmpeg exits 0 but the file lacks its index (moov): caught before the rename."""
    import ei_sim.analysis.video.encode as encode

    _run_with_snapshots(tmp_path / "run")
    real = encode._finish

    def cut(proc, log_file, broken, path):
        real(proc, log_file, broken, path)
        tmp = proc.args[-1]
        os.truncate(tmp, os.path.getsize(tmp) // 2)

    monkeypatch.setattr(encode, "_finish", cut)
    line = _one_line(capsys, 2, main(["video", str(tmp_path / "run")]))
    assert "video.mp4" in line and ("truncated" in line or "incomplete" in line)
    assert sorted(os.listdir(tmp_path / "run")) == ["run.h5"]


def test_finding_3_report_on_a_full_disk_keeps_the_previous_report(
        small_disk, tmp_path, capsys, monkeypatch):  # fmt: skip
    folder = small_disk or tmp_path
    sim = copy_of(SIMULATE, folder)
    html = folder / "simulate.html"
    assert main(["report", sim]) == 0
    capsys.readouterr()
    before = {name: _digest(folder / name) for name in os.listdir(folder)}
    assert "simulate.html" in before  # one self-contained page, its figures inside
    if small_disk is not None:
        _fill(folder, 8 << 10)
    else:
        monkeypatch.setattr("ei_sim.store.atomic._write_all", _no_space)
    line = _one_line(capsys, 2, main(["report", sim]))
    assert "no space left on device" in line
    after = {name: _digest(folder / name) for name in os.listdir(folder) if name != "filler"}
    assert after == before and html.exists()


@pytest.mark.slow
@pytest.mark.skipif(not IS_ROOT, reason="a full tmpfs needs root (see the injected cases)")
def test_finding_3_exports_and_simulate_on_a_full_disk_end_in_one_line(small_disk, tmp_path):
    """On a real full disk, in a fresh process that must not die of a signal: the exports
    (NWB, NIX, netCDF) and a simulate that fills the disk mid-run, with the free-space checks
    (refused before writing) and without them (the writers' own errors caught)."""
    if small_disk is None:
        pytest.skip("no tmpfs could be mounted")
    sim, grid = _few_cells(copy_of(SIMULATE, tmp_path)), copy_of(GRID_2X2, tmp_path)
    disk = str(small_disk)
    simulate = ["simulate", "--model", "ping", "--t-ms", "1000", "--chunk-ms", "50",
                "--record-v", "all", "--no-progress", "--out", f"{disk}/s.h5"]  # fmt: skip
    exports = [["export", sim, "--to", "nwb", "--out", f"{disk}/s.nwb"],
               ["export", sim, "--to", "neo", "--out", f"{disk}/s.nix"],
               ["export", grid, "--to", "xarray", "--out", f"{disk}/g.nc"]]  # fmt: skip
    for flags in ((), ("no-precheck",)):
        _fill(disk, 24 << 10)
        results = _in_process([*exports, ["rm", f"{disk}/filler"], simulate], *flags)
        for (code, err), argv in zip(results, [*exports, simulate], strict=True):
            assert code == 2 and len(err) == 1, (argv, err)
            assert "no space left on device" in err[0], err
        left = sorted(os.listdir(disk))
        sim_line = results[-1][1][0]
        if flags:  # the disk filled under HDF5: the partial file is removed
            assert left == [], left
        else:  # stopped before the chunk that would not fit: the finished ones are kept
            assert left in ([], ["s.h5.partial"]), left
            if left:
                assert "kept in" in sim_line and "s.h5.partial" in sim_line, sim_line
                with h5py.File(f"{disk}/s.h5.partial") as fh:
                    assert fh.attrs["status"] == "stopped" and not fh.attrs["complete"]
                    assert checksum.verdict(fh).status == checksum.SOUND
                os.unlink(f"{disk}/s.h5.partial")


def test_finding_3_injected_enospc_in_exports_leaves_nothing(tmp_path, capsys, monkeypatch):
    """Where no tmpfs can be mounted: every export's write fails with ENOSPC."""
    monkeypatch.setattr(atomic, "_write_all", _no_space)
    sim, grid = copy_of(SIMULATE, tmp_path / "in"), copy_of(GRID_2X2, tmp_path / "in")
    out = tmp_path / "out"
    out.mkdir()
    for argv in (["export", sim, "--to", "nwb", "--out", str(out / "s.nwb")],
                 ["export", grid, "--to", "xarray", "--out", str(out / "g.nc")]):  # fmt: skip
        line = _one_line(capsys, 2, main(argv))
        assert "no space left on device" in line
    assert os.listdir(out) == []


# stale temporaries ---------------------------------------------------------------------------


def _dead_pid() -> int:
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    return int(done.stdout)


def test_finding_6_stale_temporaries_of_every_kind_are_removed_by_the_next_writer(
        tmp_path, capsys):  # fmt: skip
    """Temporaries that killed writers left (an export to NIX, a video, a figure, a netCDF
    and an HDF5 file, a lock file) go when the next command writes in the folder; those of a
    live writer and other files stay."""
    host, dead = platform.node() or "host", _dead_pid()
    stale = [tmp_path / f".tmp-{host}-{dead}-ab12{suffix}"
             for suffix in (".nix", ".mp4", ".png", ".nc", ".h5", ".html")]  # fmt: skip
    stale.append(tmp_path / ".tmp-export-k3j4.nix")  # an older release's name: by its age
    live = tmp_path / f".tmp-{host}-{os.getpid()}-cd34.nix"
    mine = tmp_path / "notes.txt"
    for path in (*stale, live, mine):
        path.write_bytes(b"x" * 1000)
    old = time.time() - 2 * 86400
    os.utime(stale[-1], (old, old))
    killed = subprocess.Popen([sys.executable, "-c",
                               "import time; from ei_sim.store.lock import exclusive\n"
                               f"with exclusive({str(tmp_path / 'old.nwb')!r}): time.sleep(60)"])
    _wait(lambda: holder_of(str(tmp_path / "old.nwb")) is not None, what="the holder")
    killed.kill()
    killed.wait()
    stale.append(tmp_path / "old.nwb.lock")
    assert all(p.exists() for p in stale)
    sim = copy_of(SIMULATE, tmp_path)
    assert main(["export", sim, "--to", "nwb"]) == 0
    capsys.readouterr()
    assert not any(p.exists() for p in stale), [p.name for p in stale if p.exists()]
    assert live.exists() and mine.exists()
    assert sorted(os.listdir(tmp_path)) == sorted([live.name, "notes.txt", "simulate.h5",
                                                   "simulate.nwb"])  # fmt: skip


@pytest.mark.slow
def test_finding_6_ctrl_c_on_a_dask_grid_prints_no_traceback(tmp_path):
    """Interrupts of a Dask grid (one worker) at two moments: exit 130, the one line of what
    was kept, and no CommClosedError or other traceback."""
    for k, delay_s in enumerate((2.0, 8.0)):
        store = tmp_path / f"g{k}.h5"
        argv = ["grid", "--tier", "tiny", "--n-e", "16", "--t-ms", "30", "--samples", "100",
                "--batch-size", "20", "--epochs", "2000", "--wei", "0,1", "--wie", "0",
                "--workers", "1", "--out", str(store)]  # fmt: skip
        # 2000 epochs: still training when the second interrupt comes on any machine (30
        # epochs of both cells ended within 8 s on CI's; a grid that ignored the interrupt
        # would run past the wait below and fail it)
        proc = _start(argv, tmp_path, f"grid{k}")
        log = tmp_path / f"grid{k}.out"
        try:
            _wait(lambda log=log: "grid epochs" in log.read_text(), timeout_s=300,
                  what="the grid's progress bar")  # fmt: skip
            time.sleep(delay_s)
            proc.send_signal(signal.SIGINT)
            assert proc.wait(timeout=180) == 130
        finally:
            _stop(proc)
        text = log.read_text()
        assert "interrupted;" in text
        assert "Traceback" not in text and "CommClosedError" not in text, text[-3000:]
        assert not os.path.exists(lock_path(str(store)))


def test_records_of_closed_dask_connections_are_dropped():
    """What a worker logs when its grid stops under it (its heartbeat finds the scheduler
    gone) is dropped; other records of Dask's loggers are kept."""
    import io
    import logging

    from distributed.comm.core import CommClosedError

    from ei_sim.sweeps.quiet import drop_closed_connections

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    root = logging.getLogger("distributed")
    root.addHandler(handler)
    try:
        drop_closed_connections()
        logger = logging.getLogger("distributed.worker")
        try:
            raise CommClosedError("in <TCP (closed) ConnectionPool.heartbeat_worker>: closed")
        except CommClosedError:
            logger.exception("Failed to communicate with scheduler during heartbeat.")
        logger.error("a cell failed: a real problem")
    finally:
        root.removeHandler(handler)
    text = stream.getvalue()
    assert "a real problem" in text and "heartbeat" not in text and "Traceback" not in text
