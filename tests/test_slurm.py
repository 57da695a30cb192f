"""Grids beyond one machine: ``ei-sim grid --cluster slurm`` against a running SLURM, and the
bounded wait for Dask workers on any deployment.

The SLURM tests need a SLURM that takes jobs on this machine (``sinfo`` answers and the
partition has a node up): as root, ``.ci/slurm.sh up`` installs Debian's slurm-wlm and munge
and starts a single-node one, as CI does. Without one they skip with the reason, unless
``EI_SIM_REQUIRE_SLURM=1`` (set by ``.ci/run``), where they fail. The job script preview,
the option checks and the bounded wait on a plain Dask scheduler need no SLURM.

The grid is the golden 2 x 2 tiny grid (32 E cells, 50 ms trials) with two epochs, so that a
job cancelled mid-cell shows its cell resuming from a completed epoch. The serial reference
runs with the Dask workers' single-threaded XLA (``WORKER_ENV``): with the same threading,
every number of every cell (summary, per-epoch metrics, weights) is equal bit for bit, the
epochs' wall-clock times excepted.
"""

from __future__ import annotations

import glob
import hashlib
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time

import h5py
import numpy as np
import pytest

from ei_sim.cli import main
from ei_sim.store.checksum import ATTR as CHECKSUM

REQUIRE_SLURM = os.environ.get("EI_SIM_REQUIRE_SLURM", "").strip() == "1"
GRID_ARGS = ["--wei", "0,2", "--wie", "0,4", "--tier", "tiny", "--epochs", "2", "--samples",
             "120", "--batch-size", "40", "--n-e", "32", "--t-ms", "50"]  # fmt: skip
WALL_CLOCK = ("epoch_wall_s",)  # metrics that time the run rather than compute it
START = re.compile(r"cell (\S+): (\d+) of (\d+) epochs done")
FINISH = re.compile(r"cell (\S+): finished")


def _slurm_problem() -> str | None:
    """Why SLURM cannot run jobs here (None when it can)."""
    for tool in ("sbatch", "squeue", "sinfo", "scancel"):
        if shutil.which(tool) is None:
            return f"SLURM's {tool} is not on PATH"
    try:
        out = subprocess.run(["sinfo", "-h", "-o", "%a %T"], capture_output=True, text=True,
                             timeout=20)  # fmt: skip
    except (OSError, subprocess.TimeoutExpired) as err:
        return f"sinfo failed: {err}"
    if out.returncode != 0:
        return f"sinfo failed: {(out.stderr or out.stdout).strip()[:200]}"
    usable = ("idle", "mixed", "allocated", "completing")
    up = [line for line in out.stdout.split("\n")
          if line.startswith("up ") and line.split()[1].rstrip("*~#") in usable]  # fmt: skip
    return None if up else f"no SLURM partition with a node up (sinfo: {out.stdout.strip()!r})"


@pytest.fixture(scope="module")
def slurm():
    """A SLURM that takes jobs, or a skip (a failure under EI_SIM_REQUIRE_SLURM=1)."""
    problem = _slurm_problem()
    if problem:
        reason = (f"{problem}; as root, .ci/slurm.sh up starts a single-node SLURM "
                  "(Debian's slurm-wlm and munge, via apt)")  # fmt: skip
        if REQUIRE_SLURM:
            pytest.fail(f"EI_SIM_REQUIRE_SLURM=1 but {reason}")
        pytest.skip(reason)


@pytest.fixture
def job_name(slurm):
    """A job name of this test's own (dask-jobqueue's configuration, as a user would set it);
    every job of that name left in the queue is cancelled afterwards."""
    import dask

    from ei_sim.sweeps.cluster import jobqueue

    jobqueue()  # its defaults first (a config.set() undoes what it added meanwhile)

    name = f"eisim-test-{os.getpid()}-{time.monotonic_ns() % 10**6}"
    with dask.config.set({"jobqueue.slurm.name": name}):
        yield name
    ids = _squeue(name)
    if ids:
        subprocess.run(["scancel", *ids], capture_output=True, timeout=30)


def _squeue(name: str, settle_s: float = 10.0) -> list[str]:
    """The ids of the jobs named ``name`` that are pending or running, once those cancelled
    a moment ago have left (within ``settle_s``)."""
    deadline = time.monotonic() + settle_s
    while True:
        out = subprocess.run(["squeue", "-h", "-n", name, "-t", "PENDING,RUNNING", "-o", "%i"],
                             capture_output=True, text=True, timeout=30)  # fmt: skip
        if not out.stdout.split() or time.monotonic() > deadline:
            return out.stdout.split()
        time.sleep(0.5)


def _grid(store, *extra) -> list[str]:
    return ["grid", *GRID_ARGS, "--out", str(store), *extra]


def _cells(store) -> dict:
    """Every cell's attributes and datasets, less its run_dir, the wall-clock metrics and the
    checksum (which covers both: the numbers are compared one by one instead)."""
    out = {}
    with h5py.File(store, "r") as fh:
        for name, group in fh["cells"].items():
            cell = {k: v for k, v in group.attrs.items() if k not in ("run_dir", CHECKSUM)}

            def keep(path, obj, cell=cell):
                if isinstance(obj, h5py.Dataset) and path.split("/")[-1] not in WALL_CLOCK:
                    cell[path] = obj[()]

            group.visititems(keep)
            out[name] = cell
    return out


def _assert_same_cells(got: dict, expected: dict) -> None:
    assert sorted(got) == sorted(expected)
    for name, cell in expected.items():
        assert sorted(got[name]) == sorted(cell), name
        for key, value in cell.items():
            a, b = np.asarray(got[name][key]), np.asarray(value)
            numeric = a.dtype.kind in "fc" and b.dtype.kind in "fc"  # NaN (no verdict) = NaN
            assert np.array_equal(a, b, equal_nan=numeric), (name, key)


@pytest.fixture(scope="module")
def serial_store(slurm, tmp_path_factory):
    """The grid on the serial executor, with the workers' single-threaded XLA."""
    from ei_sim.sweeps.grid import WORKER_ENV

    store = tmp_path_factory.mktemp("serial") / "serial.h5"
    done = subprocess.run([sys.executable, "-m", "ei_sim.cli", *_grid(store, "--executor",
                           "serial")], capture_output=True, text=True, timeout=600,
                          env={**os.environ, **WORKER_ENV})  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    return store


def _job_logs(store) -> dict[str, list[str]]:
    """``{job id: lines of its error file}`` of the grid's worker jobs."""
    out = {}
    for path in glob.glob(os.path.join(f"{store}.jobs", "*.err")):
        job_id = os.path.basename(path).rsplit("-", 1)[-1].split(".")[0]
        with open(path, encoding="utf-8", errors="replace") as fh:
            out[job_id] = fh.read().splitlines()
    return out


def _starts(logs: dict) -> dict[str, list[tuple[str, int]]]:
    """``{cell: [(job id, epochs it had done when it started), ...]}`` in the order of the
    log lines' times (each line starts with its time stamp)."""
    found = sorted((line[:23], job_id, START.search(line)) for job_id, lines in logs.items()
                   for line in lines if START.search(line))  # fmt: skip
    out: dict[str, list] = {}
    for _, job_id, m in found:
        out.setdefault(m.group(1), []).append((job_id, int(m.group(2))))
    return out


def _one_error_line(err: str) -> str:
    lines = [line for line in err.replace("\r", "\n").splitlines() if line.strip()]
    assert "Traceback" not in err, err[-3000:]
    errors = [line for line in lines if "error:" in line]
    assert len(errors) == 1, err[-3000:]
    assert lines[-1] == errors[0], err[-3000:]  # the error is the last thing said
    return errors[0]


# -- no SLURM needed -----------------------------------------------------------------------


def test_dry_run_prints_the_job_script_asked_for(tmp_path, capsys):
    import dask

    from ei_sim.sweeps.cluster import jobqueue

    jobqueue()  # its defaults first (a config.set() undoes what it added meanwhile)

    store = tmp_path / "g.h5"
    options = ["--cluster", "slurm", "--queue", "gpu", "--account", "lab", "--walltime",
               "01:30:00", "--cores", "2", "--memory", "3GiB", "--jobs", "3",
               "--sbatch=--qos=short", "--sbatch", "#SBATCH --constraint=avx2",
               "--dry-run"]  # fmt: skip
    assert main(_grid(store, *options)) == 0
    out, err = capsys.readouterr()
    assert out.startswith("#!")
    for line in ("#SBATCH -p gpu", "#SBATCH -A lab", "#SBATCH -t 01:30:00",
                 "#SBATCH --cpus-per-task=2", "#SBATCH --mem=3G", "#SBATCH --qos=short",
                 "#SBATCH --constraint=avx2", "#SBATCH -J ei-sim",
                 f"#SBATCH -e {tmp_path}/g.h5.jobs/ei-sim-%J.err"):  # fmt: skip
        assert line in out.splitlines(), (line, out)
    worker = [line for line in out.splitlines() if "distributed.cli.dask_worker" in line]
    assert len(worker) == 1 and sys.executable in worker[0]
    assert "--nworkers 2" in worker[0] and "--nthreads 1" in worker[0]
    assert "export XLA_FLAGS=" in out and "DASK_LOGGING__EI_SIM=info" in out
    assert "dry run: 3 SLURM jobs like this one for 4 cells" in err
    assert os.listdir(tmp_path) == []  # nothing written, no log folder made

    # defaults from dask-jobqueue's configuration; the memory from ei-sim's estimate
    config = {"jobqueue.slurm.walltime": "00:42:00", "jobqueue.slurm.queue": "short",
              "jobqueue.slurm.job-extra-directives": ["--exclusive"]}  # fmt: skip
    with dask.config.set(config):
        assert main(_grid(store, "--cluster", "slurm", "--dry-run")) == 0
    out, err = capsys.readouterr()
    for line in ("#SBATCH -p short", "#SBATCH -t 00:42:00", "#SBATCH --exclusive",
                 "#SBATCH --mem=2G", "#SBATCH --cpus-per-task=1"):  # fmt: skip
        assert line in out.splitlines(), (line, out)
    assert "dry run: 4 SLURM jobs" in err  # one per cell to train

    reproduce = ["reproduce", "diagonal", "--out", str(tmp_path), "--cluster", "slurm",
                 "--walltime", "2-00:00:00", "--dry-run"]  # fmt: skip
    assert main(reproduce) == 0
    out, err = capsys.readouterr()
    assert "#SBATCH -t 2-00:00:00" in out.splitlines()
    assert "diagonal_quick_lab.grid.h5.jobs" in out and "dry run:" in err
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("extra, fragment", [
    (["--queue", "gpu"], "--queue is a SLURM option; add --cluster slurm"),
    (["--dry-run"], "--dry-run is a SLURM option"),
    (["--cluster", "slurm", "--scheduler", "tcp://127.0.0.1:8786"], "drop --scheduler"),
    (["--cluster", "slurm", "--workers", "2"], "drop --workers"),
    (["--cluster", "slurm", "--executor", "serial"], "drop --executor serial"),
    (["--cluster", "slurm", "--walltime", "ten minutes"], "not a SLURM time"),
    (["--cluster", "slurm", "--memory", "lots"], "not an amount of memory"),
    (["--cluster", "slurm", "--cores", "0"], "--cores (per SLURM job) must be >= 1"),
    (["--cluster", "slurm", "--sbatch", "qos=short"], "expected an sbatch option"),
    (["--worker-timeout", "0"], "--worker-timeout must be > 0"),
])  # fmt: skip
def test_cluster_options_are_checked_in_one_line(tmp_path, capsys, extra, fragment):
    assert main(_grid(tmp_path / "g.h5", *extra)) == 2
    err = capsys.readouterr().err
    assert fragment in err and len(err.strip().splitlines()) == 1, err
    assert os.listdir(tmp_path) == []


def test_importing_dask_jobqueue_keeps_ctrl_c():
    """dask_jobqueue replaces the SIGINT handler with sys.exit() when imported (Ctrl-C would
    end a grid silently with status 0); ei-sim imports it through jobqueue(), which puts
    the handler back."""
    code = ("import signal\n"
            "from ei_sim.sweeps.cluster import jobqueue\n"
            "before = signal.getsignal(signal.SIGINT)\n"
            "jobqueue()\n"
            "after = signal.getsignal(signal.SIGINT)\n"
            "assert after is before, after\n")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]


class _Job:
    def __init__(self, job_id):
        self.job_id = job_id


class _FakeSlurm:
    """The parts of a dask-jobqueue ``SLURMCluster`` that :class:`SlurmWatch` reads, with jobs
    by name (``worker_spec``/``workers``) and connected workers named after their jobs."""

    def __init__(self, jobs: dict[str, str]):
        self.worker_spec = dict.fromkeys(jobs)
        self.workers = {name: _Job(job_id) for name, job_id in jobs.items()}
        self.connected = set(jobs)
        self.cancelled: list[str] = []

    @property
    def scheduler_info(self):
        return {"workers": {f"tcp://{n}": {"name": n, "nthreads": 1} for n in self.connected}}

    def scale(self, jobs):  # pragma: no cover - not reached in these tests
        raise AssertionError("no job should be submitted")

    def scale_down(self, names):
        for name in names:
            self.cancelled.append(name)
            self.worker_spec.pop(name, None)
            self.workers.pop(name, None)

    def sync(self, fn, *args):
        return fn(*args)


class _FakeClient:
    def processing(self):
        return {}


def test_a_job_whose_worker_left_is_reported_not_cancelled_unseen(monkeypatch):
    """Regression (CI, one run in three): a cancelled job's worker is gone while squeue still
    lists the job (completing), and fewer cells are left than jobs. The watch must not cancel
    that job as spare without a word: it reads squeue at once (and at every poll while the
    job is listed), waits for the job to leave the queue, and reports it; the grid's last
    read (``final_notes``) does the same. A job kept running without its worker is cancelled
    after LOST_GRACE_S, with a note; one that stays completing is not."""
    from ei_sim.sweeps import cluster as cl

    listed = {"1": ("RUNNING", "None"), "2": ("COMPLETING", "None")}
    reads = []

    def squeue(ids, user=None):
        reads.append(sorted(listed))
        return dict(listed)

    monkeypatch.setattr(cl, "squeue_states", squeue)
    now = [0.0]

    def two_jobs_one_lost(jobs: dict[str, str], kept: str):
        """Two jobs whose workers joined; then only ``kept``'s worker is left, 2 s later."""
        fake = _FakeSlurm(jobs)
        watch = cl.SlurmWatch(_FakeClient(), fake, max_jobs=2, clock=lambda: now[0])
        watch.poll(cells_left=2)
        assert set(watch.joined) == set(jobs)
        watch.notes.clear()  # "first worker joined"
        fake.connected = {kept}
        now[0] += 2  # under SQUEUE_EVERY_S since the last read
        return fake, watch

    fake, watch = two_jobs_one_lost({"a": "1", "b": "2"}, "a")  # b's worker is gone; squeue
    assert len(reads) == 1  # still lists b, completing
    watch.poll(cells_left=1)  # one cell left: one job is enough
    assert len(reads) == 2  # read at once
    assert fake.cancelled == [] and not watch.notes  # b is neither cancelled nor reported yet
    now[0] = 3.5
    watch.poll(cells_left=1)
    assert len(reads) == 3 and fake.cancelled == []  # read again while b is listed
    now[0] = 100.0  # completing for longer than LOST_GRACE_S: still kept, still unreported
    watch.poll(cells_left=1)
    assert fake.cancelled == [] and not watch.notes
    del listed["2"]  # b leaves the queue
    now[0] = 100.0 + cl.SQUEUE_EVERY_S  # past the grace period: squeue at its usual pace
    watch.poll(cells_left=1)
    assert fake.cancelled == ["b"]
    assert [x for x in watch.notes if "job 2 left the queue" in x], watch.notes

    # a job that SLURM keeps running after its worker vanished (a hung worker)
    listed.update({"5": ("RUNNING", "None"), "6": ("RUNNING", "None")})
    fake, watch = two_jobs_one_lost({"e": "5", "f": "6"}, "e")
    watch.poll(cells_left=1)
    assert fake.cancelled == []  # within the grace period
    before = len(reads)
    now[0] += cl.LOST_GRACE_S + 10
    watch.poll(cells_left=1)
    now[0] += 2
    watch.poll(cells_left=1)
    assert len(reads) == before + 1  # past the grace period: squeue only every few seconds
    assert fake.cancelled == ["f"]
    assert [x for x in watch.notes if "job 6 has had no worker" in x], watch.notes

    # the same loss as the grid ends: final_notes waits for squeue to drop the job
    listed.update({"3": ("RUNNING", "None"), "4": ("COMPLETING", "None")})
    fake, watch = two_jobs_one_lost({"c": "3", "d": "4"}, "c")
    answers = iter([{"3": listed["3"], "4": listed["4"]}, {"3": listed["3"]}, None])
    monkeypatch.setattr(cl, "squeue_states", lambda ids, user=None: next(answers))
    watch.final_notes(pause_s=0)
    assert fake.cancelled == ["d"]
    assert [x for x in watch.notes if "job 4 left the queue" in x], watch.notes


@pytest.fixture
def bare_scheduler():
    """A ``dask scheduler`` with no worker; its address."""
    proc = subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host",
                             "127.0.0.1", "--port", "0", "--no-dashboard"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)  # fmt: skip
    try:
        deadline, address = time.monotonic() + 60, None
        while address is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            m = re.search(r"Scheduler at:\s+(tcp://\S+)", line)
            address = m.group(1) if m else None
        assert address, "the dask scheduler did not start"
        drain = threading.Thread(target=proc.stdout.read, daemon=True)  # its output
        drain.start()
        yield address
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
        proc.stdout.close()


def test_scheduler_without_workers_stops_in_one_line(tmp_path, capsys, bare_scheduler):
    store = tmp_path / "g.h5"
    began = time.monotonic()
    code = main(_grid(store, "--scheduler", bare_scheduler, "--worker-timeout", "5"))
    elapsed = time.monotonic() - began
    line = _one_error_line(capsys.readouterr().err)
    assert code == 2
    assert line.startswith("ei-sim grid: error: no Dask worker joined the Dask scheduler at "
                           f"{bare_scheduler} within 5 s"), line  # fmt: skip
    assert 5 <= elapsed < 5 + 30, elapsed
    assert os.listdir(tmp_path) == []  # no store, no cells folder


# -- a running SLURM -----------------------------------------------------------------------


def test_slurm_grid_equals_serial(tmp_path, capsys, serial_store, job_name):
    store = tmp_path / "slurm.h5"
    began = time.monotonic()
    assert main(_grid(store, "--cluster", "slurm", "--jobs", "2")) == 0
    elapsed = time.monotonic() - began
    out, err = capsys.readouterr()
    _assert_same_cells(_cells(store), _cells(serial_store))
    starts = _starts(_job_logs(store))
    assert sorted(starts) == sorted(_cells(serial_store))
    assert all(len(s) == 1 and s[0][1] == 0 for s in starts.values()), starts  # once each
    assert len({job for s in starts.values() for job, _ in s}) == 2  # on two worker jobs
    status = re.findall(r"cells (\d)/4; jobs (\d) pending, (\d) running; workers (\d)", err)
    assert status, err[-2000:]  # the progress bar's postfix: cells, jobs and workers
    assert ("4", "0") == status[-1][:2] and any(w == "2" for *_, w in status), status
    joined = re.search(r"slurm: first worker joined ([\d.]+) s", out)
    assert joined, out[-2000:]
    print(f"2 x 2 grid through SLURM: {elapsed:.1f} s; first worker {joined.group(1)} s after "
          "the jobs were submitted")  # fmt: skip
    assert _squeue(job_name) == []  # the grid cancelled its jobs


def test_scancel_of_a_worker_job_mid_grid(tmp_path, capsys, serial_store, job_name):
    """A job is killed while its cell has one of its two epochs done: the cell resumes on
    another worker from its completed epochs (never from the start), no cell that was
    stored trains again, and every number equals the serial run's.

    A tiny epoch takes a fraction of a second, so the job is first frozen (SIGSTOP to all its
    processes) and looked at again: only a cell still between its epochs is killed
    (SIGKILL); otherwise the job goes on (SIGCONT) and the watcher waits for another cell."""
    from ei_sim.sweeps.grid import epochs_done
    from ei_sim.sweeps.store import read_cells

    store = tmp_path / "slurm.h5"
    killed: dict = {}
    stop = threading.Event()

    def finished():
        return {m.group(1) for lines in _job_logs(store).values() for x in lines
                if (m := FINISH.search(x))}  # fmt: skip

    def between_epochs(cell):
        return cell not in finished() and epochs_done(os.path.join(f"{store}.cells", cell)) == 1

    def signal_job(job_id, name):
        subprocess.run(["scancel", f"--signal={name}", "--full", job_id], check=True,
                       timeout=30)  # fmt: skip

    def cancel_mid_cell():
        while not stop.is_set() and not killed:
            for job_id, lines in _job_logs(store).items():
                started = [m.group(1) for x in lines if (m := START.search(x))]
                if not started or not between_epochs(started[-1]):
                    continue
                signal_job(job_id, "STOP")
                time.sleep(0.5)  # the signal delivered: the worker's files no longer change
                if not between_epochs(started[-1]):
                    signal_job(job_id, "CONT")  # the cell finished first: another one
                    continue
                stored = {c["name"] for c in read_cells(store)} if store.exists() else set()
                signal_job(job_id, "KILL")
                killed.update(job=job_id, cell=started[-1], stored=stored)
                return
            time.sleep(0.02)

    watcher = threading.Thread(target=cancel_mid_cell, daemon=True)
    watcher.start()
    try:
        code = main(_grid(store, "--cluster", "slurm", "--jobs", "2"))
    finally:
        stop.set()
        watcher.join(timeout=30)
    out, err = capsys.readouterr()
    assert code == 0, err[-3000:]
    assert killed, "no job was found between two epochs of a cell"
    _assert_same_cells(_cells(store), _cells(serial_store))
    starts = _starts(_job_logs(store))
    for cell in killed["stored"]:  # in the store before the kill: never started again
        assert len(starts[cell]) == 1, (cell, starts[cell])
    for cell, runs in starts.items():  # no completed epoch is ever trained again
        done = [d for _, d in runs]
        assert done[0] == 0 and done == sorted(done), (cell, runs)
    again = starts[killed["cell"]]
    assert len(again) == 2 and again[0] == (killed["job"], 0), again
    assert again[1][0] != killed["job"] and again[1][1] >= 1, again  # from its epochs done
    assert f"slurm: job {killed['job']} left the queue" in out


def _node_memory_mib() -> int:
    out = subprocess.run(["sinfo", "-h", "-o", "%m"], capture_output=True, text=True,
                         timeout=30)  # fmt: skip
    return max(int(re.sub(r"\D", "", x) or 0) for x in out.stdout.split())


def test_no_worker_can_start_more_memory_than_the_node(tmp_path, capsys, job_name):
    store = tmp_path / "g.h5"
    memory = f"{_node_memory_mib() // 1024 + 8}GiB"
    began = time.monotonic()
    code = main(_grid(store, "--cluster", "slurm", "--memory", memory, "--worker-timeout", "20"))
    elapsed = time.monotonic() - began
    line = _one_error_line(capsys.readouterr().err)
    assert code == 2
    assert line.startswith("ei-sim grid: error: no Dask worker can start: sbatch refused"), line
    assert "Memory specification can not be satisfied" in line, line
    assert elapsed < 20 + 15, elapsed
    assert os.listdir(tmp_path) == []  # the store untouched: not created, no folders
    assert _squeue(job_name) == []


def test_pending_jobs_are_reported_with_their_reason(tmp_path, capsys, serial_store, job_name):
    """Jobs that SLURM keeps pending (here: not before an hour from now) until the timeout:
    one line with the pending reason, exit 2, the jobs cancelled and the existing store
    left byte for byte as it was."""
    store = tmp_path / "g.h5"
    shutil.copyfile(serial_store, store)
    with h5py.File(store, "a") as fh:  # one cell left to train
        del fh["cells"][sorted(fh["cells"])[0]]
    with open(store, "rb") as fh:
        before = hashlib.sha256(fh.read()).hexdigest()
    began = time.monotonic()
    code = main(_grid(store, "--cluster", "slurm", "--sbatch=--begin=now+1hour",
                      "--worker-timeout", "6"))  # fmt: skip
    elapsed = time.monotonic() - began
    line = _one_error_line(capsys.readouterr().err)
    assert code == 2
    assert line == ("ei-sim grid: error: no Dask worker within 6 s (--worker-timeout): "
                    "1 SLURM job pending (BeginTime)"), line  # fmt: skip
    assert 6 <= elapsed < 6 + 20, elapsed
    with open(store, "rb") as fh:
        assert hashlib.sha256(fh.read()).hexdigest() == before
    assert os.listdir(tmp_path) == ["g.h5"]  # no cells or job folders left either
    assert _squeue(job_name) == []
