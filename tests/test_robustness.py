"""Failures that must not pass for success, files that must not be lost or left behind, and
Ctrl-C that must end every command with status 130."""

import os
import shutil
import signal
import subprocess
import sys
import time
from types import SimpleNamespace

import h5py
import numpy as np
import pytest

from ei_sim.cli import main

TINY_TRAIN = ["train", "--tier", "tiny", "--n-e", "16", "--t-ms", "30", "--samples", "100",
              "--batch-size", "20"]  # fmt: skip


def test_a_run_whose_weights_turn_nan_is_marked_failed(tmp_path, monkeypatch, capsys):
    import optax

    from ei_sim.models import get_model
    from ei_sim.training.config import TrainConfig
    from ei_sim.training.loop import TrainingFailed
    from ei_sim.training.spiking import tier_model, train

    # every update NaN: the gradients stay finite (no step is skipped), the weights do not
    monkeypatch.setattr("ei_sim.training.spiking.adam_with_dale",
                        lambda lr, clip: optax.scale(np.nan))  # fmt: skip
    run_dir = str(tmp_path / "nan")
    assert main([*TINY_TRAIN, "--epochs", "3", "--out", run_dir]) == 1
    err = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert len(err) == 1 and "non-finite in epoch 1" in err[0] and "--lr" in err[0]
    with h5py.File(os.path.join(run_dir, "run.h5")) as fh:
        assert fh.attrs["status"] == "failed" and fh.attrs["epochs_done"] == 1
        assert "lower --lr" in fh.attrs["failure"]
    assert main(["eval", run_dir]) == 2
    assert "is a failed run" in capsys.readouterr().err
    assert main(["sweep", "scale", run_dir]) == 2
    model = tier_model(get_model("ping"), "tiny", 16, 30.0)
    cfg = TrainConfig.for_tier("tiny", n_samples=100, batch_size=20, epochs=3)
    with pytest.raises(ValueError, match="failed run"):
        train(model, cfg, run_dir, resume=True, progress=False)
    with pytest.raises(TrainingFailed):
        train(model, cfg, str(tmp_path / "api"), progress=False)


@pytest.mark.slow
def test_ties_keep_the_first_best_epoch_in_trainer_and_vmapped_grid(tmp_path, monkeypatch):
    """Every epoch ties (accuracy forced to 0.5): best_epoch, the best weights and the best
    rates all stay with epoch 1, in :func:`ei_sim.training.spiking.train` and in the vmapped
    grid."""
    import ei_sim.sweeps.vmapped as vmapped
    import ei_sim.training.spiking as trainer
    from ei_sim.models import get_model
    from ei_sim.store.run import load_run
    from ei_sim.sweeps.grid import GridSpec
    from ei_sim.training.config import TrainConfig

    def flat(real, seen):
        def evaluate(weights, *args, **kwargs):
            seen.append(np.asarray(weights.w_out).copy())
            return real(weights, *args, **kwargs)._replace(accuracy=0.5)

        return evaluate

    seen, seen_v, real = [], [], trainer.evaluate
    monkeypatch.setattr(trainer, "evaluate", flat(real, seen))
    model = trainer.tier_model(get_model("ping"), "tiny", 16, 30.0)
    cfg = TrainConfig.for_tier("tiny", n_samples=100, batch_size=20, epochs=3)
    result = trainer.train(model, cfg, str(tmp_path / "run"), progress=False)
    attrs, metrics, best, last, _ = load_run(str(tmp_path / "run"))
    assert result.best_epoch == attrs["best_epoch"] == 1
    np.testing.assert_array_equal(np.asarray(best.w_out), seen[0])
    assert not np.array_equal(np.asarray(last.w_out), seen[0])
    # the vmapped grid trains and evaluates through the same trainer (ei_sim.training.spiking)
    monkeypatch.setattr(trainer, "evaluate", flat(real, seen_v))
    spec = GridSpec.build((1.0,), (2.0,), tier="tiny", model={"n_e": 16, "n_i": 4, "t_ms": 30.0},
                          train={"n_samples": 100, "batch_size": 20, "epochs": 3})  # fmt: skip
    (cell,) = vmapped.train_cells_vmapped(spec, [(1.0, 2.0, 42)])
    assert cell["summary"]["best_epoch"] == 1
    assert cell["summary"]["rate_e_Hz"] == cell["metrics"]["test_rate_e_Hz"][0]
    np.testing.assert_array_equal(cell["weights"]["w_out"], seen_v[0])


def test_non_finite_hyperparameters_are_refused_by_the_api():
    from ei_sim.training.config import TrainConfig

    for bad in ({"learning_rate": np.nan}, {"learning_rate": np.inf}, {"clip_norm": 0.0},
                {"budget": np.nan}, {"test_fraction": 1.0}, {"seed": -1}):  # fmt: skip
        with pytest.raises(ValueError, match=next(iter(bad)).split("_")[0]):
            TrainConfig(**bad)


def test_a_failed_training_leaves_no_empty_run_folder(tmp_path):
    run_dir = tmp_path / "a" / "b"
    assert main([*TINY_TRAIN, "--data", "embedded", "--samples", "5001",
                 "--out", str(run_dir)]) == 2  # fmt: skip
    assert not (tmp_path / "a").exists()


def test_stale_temporaries_are_removed_and_files_readable_as_the_umask_allows(tmp_path):
    import platform

    from ei_sim.store.atomic import atomic_h5, readable_mode

    host = platform.node() or "host"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    stale = [tmp_path / f".tmp-{host}-{dead}-abcd.h5", tmp_path / ".tmp-k3j4h5.h5"]
    live = tmp_path / f".tmp-{host}-{os.getpid()}-efgh.h5"
    for path in (*stale, live):
        path.write_bytes(b"")
    two_hours_ago = time.time() - 7200
    os.utime(stale[1], (two_hours_ago, two_hours_ago))
    with atomic_h5(str(tmp_path / "out.h5")) as fh:
        fh.attrs["x"] = 1
    assert not any(p.exists() for p in stale) and live.exists()
    assert os.stat(tmp_path / "out.h5").st_mode & 0o777 == readable_mode()
    mask = os.umask(0o022)
    os.umask(mask)
    assert readable_mode() == 0o666 & ~mask


def test_output_kinds_are_told_apart(tmp_path):
    from ei_sim.cli.outputs import check_output_file, existing_kind

    grid = tmp_path / "grid.h5"
    with h5py.File(grid, "w") as fh:
        fh.attrs["kind"] = "grid"
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "empty.h5").write_bytes(b"")
    assert existing_kind(str(grid)) == "grid"
    assert existing_kind(str(tmp_path / "notes.txt")) == "other"
    assert existing_kind(str(tmp_path / "empty.h5")) == "empty"
    assert existing_kind(str(tmp_path)) == "folder"
    assert existing_kind(str(tmp_path / "none")) is None
    check_output_file("--out", str(grid), "grid", replace=True)
    with pytest.raises(ValueError, match="--force"):
        check_output_file("--out", str(grid), "grid")
    check_output_file("--out", str(grid), "grid", force=True)
    with pytest.raises(ValueError, match="never replaces"):
        check_output_file("--out", str(grid), "simulate", replace=True, force=True)


def test_an_interrupted_grid_leaves_no_stub_store(tmp_path, monkeypatch):
    from ei_sim.sweeps import grid

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(grid, "train_cell", interrupted)
    spec = grid.GridSpec.build((0.0,), (1.0,), tier="tiny")
    store = str(tmp_path / "g.h5")
    with pytest.raises(KeyboardInterrupt):
        grid.run_grid(spec, store, executor="serial", progress=False)
    assert os.listdir(tmp_path) == []


def test_the_grid_reads_the_epochs_of_cells_in_training(tmp_path):
    from ei_sim.sweeps.grid import epochs_done

    assert epochs_done(str(tmp_path)) == 0
    with h5py.File(tmp_path / "run.h5", "w") as fh:
        fh.attrs["epochs_done"] = 3
    assert epochs_done(str(tmp_path)) == 3


def test_devices_that_do_not_divide_the_batch_are_reported(capsys):
    from ei_sim.cli.checks import devices_note

    devices_note(3, 32, 2, 2)
    err = capsys.readouterr().err
    assert "--devices 3" in err and "2 devices" in err and "2 cores" in err
    devices_note(0, 32, 2, 2)
    devices_note(2, 32, 2, 2)
    assert capsys.readouterr().err == ""


def test_a_swallowed_interrupt_is_delivered_again():
    from ei_sim.cli import interrupts

    # Python's own SIGINT handler for the test: a library imported earlier in the session
    # (brian2) may have wrapped a non-callable previous handler
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        interrupts.guard_interrupts()
        interrupts._hook(SimpleNamespace(exc_type=KeyboardInterrupt))  # as from a gc callback
        with pytest.raises(KeyboardInterrupt):
            time.sleep(5)
    finally:
        signal.signal(signal.SIGINT, previous)
        interrupts._received.clear()  # the redelivered interrupt, noted by ei-sim's handler


def _ei_sim() -> list[str]:
    script = os.path.join(os.path.dirname(sys.executable), "ei-sim")
    return [script] if os.path.exists(script) else [sys.executable, "-m", "ei_sim.cli"]


def _cold_cache(folder) -> dict:
    """An empty compile cache holding only the already built native kernels, so that the
    run compiles its programs (where an interrupt used to crash the process at exit)."""
    from ei_sim.sim import native

    built = native.library_path()
    if built.exists():
        os.makedirs(folder / "native", exist_ok=True)
        shutil.copy(built, folder / "native" / built.name)
    return {**os.environ, "EI_SIM_CACHE_DIR": str(folder)}


def _default_sigint():
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # also when pytest runs in the background


def test_a_swallowed_ctrl_c_is_raised_again():
    """ei-sim's SIGINT handler raises KeyboardInterrupt as Python's does and notes it, so that
    an interrupt some library caught and dropped is raised again by raise_if_interrupted;
    without a Ctrl-C it does nothing."""
    from ei_sim.cli import interrupts

    before = signal.getsignal(signal.SIGINT)
    interrupts._received.clear()
    try:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        interrupts.note_interrupts()
        assert signal.getsignal(signal.SIGINT) is interrupts._on_sigint
        interrupts.raise_if_interrupted()  # no Ctrl-C yet: nothing
        swallowed = False
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(1.0)  # the handler runs at the next bytecode
        except KeyboardInterrupt:  # as a library that catches everything would
            swallowed = True
        assert swallowed
        with pytest.raises(KeyboardInterrupt):
            interrupts.raise_if_interrupted()
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # an ignored SIGINT stays ignored
        interrupts.note_interrupts()
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, before)
        interrupts._received.clear()



def test_reproduce_and_simulate_check_for_a_swallowed_ctrl_c(tmp_path, monkeypatch):
    """ei-sim reproduce checks before each stage it computes and after each epoch of its
    trainings (the Campaign's check, which the CLI sets to raise_if_interrupted); ei-sim
    simulate after each chunk: a noted Ctrl-C stops them there, and a finished stage is read
    back without a check."""
    from types import SimpleNamespace

    import ei_sim.training.spiking as spiking
    from ei_sim.analysis.reproduce import stages
    from ei_sim.analysis.reproduce import store as rstore
    from ei_sim.cli import interrupts
    from ei_sim.cli.simulate import _Progress

    path = str(tmp_path / "r.h5")
    rstore.open_or_create(path, {"experiment": "x"}, False)
    computed = []
    camp = stages.Campaign(out_dir=str(tmp_path), store_path=path, progress=False,
                           check=interrupts.raise_if_interrupted)  # fmt: skip

    def compute():
        computed.append(1)
        return {"n": 1}, {"a": [1.0]}

    interrupts._received.clear()
    try:
        camp.stage("first", compute)  # no Ctrl-C: computed and stored
        interrupts._received.set()  # a Ctrl-C that something swallowed
        camp.stage("first", compute)  # finished: read back, nothing to stop
        with pytest.raises(KeyboardInterrupt):
            camp.stage("second", compute)
        assert computed == [1] and camp.done == {"first"}
        seen = {}

        def fake_train(*args, **kwargs):
            seen.update(kwargs)
            interrupts._received.set()  # swallowed during the first epoch
            kwargs["after_epoch"](1)
            raise AssertionError("after_epoch did not stop the training")

        monkeypatch.setattr(spiking, "train", fake_train)
        monkeypatch.setattr(spiking, "discard_damaged_run", lambda *a: None)
        monkeypatch.setattr(stages, "build_model", lambda *a, **k: None)
        camp.check = None
        camp.done.clear()
        with pytest.raises(AssertionError):  # no check: the training is not stopped
            stages.train_stage(camp, "ping", 0.2, 42, SimpleNamespace(
                epochs=1, tier="tiny", n_e=None, t_ms=None, samples=None))
        camp.check = interrupts.raise_if_interrupted
        interrupts._received.clear()  # the stage starts; the Ctrl-C comes in its training
        with pytest.raises(KeyboardInterrupt):
            stages.train_stage(camp, "ping", 0.2, 42, SimpleNamespace(
                epochs=1, tier="tiny", n_e=None, t_ms=None, samples=None))
        assert "after_epoch" in seen
        import ei_sim.analysis.reproduce.runner as runner
        from ei_sim.cli import main

        passed = {}
        page = tmp_path / "page.md"
        page.write_text("table")

        def fake_reproduce(*args, **kwargs):
            passed.update(kwargs)
            return {"markdown": str(page), "store": "s", "html": "h"}

        monkeypatch.setattr(runner, "reproduce", fake_reproduce)
        assert main(["reproduce", "budgets", "--out", str(tmp_path)]) == 0
        assert passed["check"] is interrupts.raise_if_interrupted  # the CLI's check
        interrupts._received.set()
        progress = _Progress(10.0, 0.1, False)
        with pytest.raises(KeyboardInterrupt):
            progress(SimpleNamespace(start_step=0, n_steps=50))
        progress.close()
    finally:
        interrupts._received.clear()

@pytest.mark.slow
def test_ctrl_c_exits_130_every_time(tmp_path):
    """20 interrupts of a tiny training: half after its first epoch line, half at spread
    delays into a run with a cold compile cache (during its compilations)."""
    codes = []
    for k in range(20):
        run_dir = tmp_path / f"run{k}"
        cold = k % 2 == 1
        env = _cold_cache(tmp_path / f"cache{k}") if cold else dict(os.environ)
        with open(tmp_path / f"err{k}.txt", "w") as err:
            p = subprocess.Popen([*_ei_sim(), *TINY_TRAIN, "--epochs", "200", "--out",
                                  str(run_dir)], stdout=subprocess.PIPE, stderr=err, text=True,
                                 env=env, preexec_fn=_default_sigint)  # fmt: skip
            if cold:
                time.sleep(1.0 + 0.5 * (k // 2))  # 1 to 5.5 s: imports, compilations, epochs
            else:
                for line in p.stdout:
                    if line.startswith("epoch 1:"):
                        break
            p.send_signal(signal.SIGINT)
            p.communicate(timeout=120)
        text = (tmp_path / f"err{k}.txt").read_text()
        codes.append(p.returncode)
        assert "Traceback" not in text and "Exception ignored" not in text, text[-2000:]
        shutil.rmtree(tmp_path / f"cache{k}", ignore_errors=True)
    assert codes == [130] * 20
