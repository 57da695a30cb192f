"""Where a grid's Dask workers come from, and how the grid watches them while cells train.

Three deployments serve the grid's Dask executor (:func:`ei_sim.sweeps.grid.run_grid`): an
in-process ``LocalCluster`` (the default), any running Dask scheduler by address, and Dask
workers started as SLURM jobs through dask-jobqueue (:class:`SlurmJobs`).

**Bounded wait, any deployment.** :class:`WorkerWatch` counts the cluster's workers every
poll of the grid; when the cluster has had no worker for ``timeout_s`` (at the start, or
after every worker left), it raises :class:`NoWorkers` with one line that says why, instead
of waiting forever.

**SLURM.** :class:`SlurmWatch` also keeps the jobs: a job that left the queue without a
live worker (scancel, walltime, node failure, a refused submission) is replaced, and when
fewer cells remain than workers, pending and then idle jobs are cancelled (a job whose
worker has just left is not: squeue is read at every poll for a while, and the job is
reported and replaced when it leaves the queue; one still running without its worker after
:data:`LOST_GRACE_S` is cancelled with a note). It reads
``squeue`` for the states of its jobs (the progress bar shows them) and for the reason a
job is pending, which :class:`NoWorkers` quotes. A cell whose worker died is rerun by Dask
on another worker; it resumes from its last completed epoch in its run directory
(:func:`ei_sim.sweeps.grid.train_cell`).

The job's defaults come from dask-jobqueue's configuration (``jobqueue.slurm.*`` in the
user's Dask configuration files) where it has them; the memory per job otherwise from
ei-sim's estimate of a cell's peak memory (:func:`job_memory_bytes`).
"""

from __future__ import annotations

import contextlib
import functools
import getpass
import math
import os
import re
import shlex
import shutil
import subprocess
import time
from dataclasses import dataclass

from ei_sim import validate

DEFAULT_WORKER_TIMEOUT_S = 300.0  # how long a grid waits for a first (or any) Dask worker
SQUEUE_EVERY_S = 5.0  # how often the SLURM watch reads squeue
RESUBMIT_EVERY_S = 10.0  # at most one round of replacement jobs this often
SQUEUE_TIMEOUT_S = 20.0
LOST_GRACE_S = 60.0  # a job whose worker left: squeue read at every poll, not cancelled
# as spare, for this long (and for as long as squeue says it is completing)
FINAL_SQUEUE_TRIES = 20  # squeue reads (0.5 s apart) as the grid ends, for a job still listed
ALLOWED_FAILURES = 10  # worker deaths a cell survives on SLURM (walltime kills included)
JOB_NAME = "ei-sim"  # the SLURM job name when the Dask configuration keeps its default
JOB_WORKER_BYTES = validate.GIB  # a worker process with JAX and its programs (0.8 GiB, tiny)
CELL_MEMORY_HEADROOM = 2.0  # per worker: JOB_WORKER_BYTES + this x a cell's estimated peak
# The workers' own memory limits are off (their tasks hold no Dask data to spill, and a
# paused or restarted worker only delays or repeats a cell); SLURM enforces --mem.
WORKER_MEMORY_CONFIG = {f"DASK_DISTRIBUTED__WORKER__MEMORY__{k}": "False"
                        for k in ("TARGET", "SPILL", "PAUSE", "TERMINATE")}  # fmt: skip
# SLURM's time formats: minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS
_WALLTIME = re.compile(r"^(\d+|\d+:\d+|\d+:\d+:\d+|\d+-\d+|\d+-\d+:\d+|\d+-\d+:\d+:\d+)$")
_ACTIVE = ("RUNNING", "CONFIGURING", "COMPLETING", "SUSPENDED")


class NoWorkers(TimeoutError):
    """No Dask worker within the stated time (an ``OSError``: the CLI's one line, exit 2)."""


@dataclass(frozen=True)
class SlurmJobs:
    """How the grid asks SLURM for its Dask workers; None takes dask-jobqueue's
    configuration (``jobqueue.slurm.*``), then ei-sim's default.

    Each job runs ``cores`` single-threaded worker processes (one cell each at a time) with
    ``memory`` in all. ``jobs``: how many jobs at most (None: one per ``cores`` unfinished
    cells). ``sbatch``: extra ``#SBATCH`` options (e.g. ``"--qos=short"``). ``log_dir``:
    where the jobs write their output (None: the configuration's, else ``<store>.jobs``).
    """

    queue: str | None = None
    account: str | None = None
    walltime: str | None = None
    cores: int | None = None
    memory: str | None = None
    jobs: int | None = None
    sbatch: tuple[str, ...] = ()
    log_dir: str | None = None

    def __post_init__(self):
        if self.cores is not None:
            validate.count("--cores (per SLURM job)", self.cores, 1, 1024)
        if self.jobs is not None:
            validate.count("--jobs (SLURM jobs)", self.jobs, 1, 10_000)
        if self.memory is not None:
            memory_bytes(self.memory)
        if self.walltime is not None and not _WALLTIME.match(str(self.walltime).strip()):
            raise ValueError(f"--walltime {self.walltime!r} is not a SLURM time; use minutes, "
                             "HH:MM:SS or D-HH:MM:SS (e.g. 02:00:00)")  # fmt: skip
        for name in ("queue", "account"):
            value = getattr(self, name)
            if value is not None and (not str(value).strip() or any(c.isspace() for c in value)):
                raise ValueError(f"--{name} {value!r}: expected one SLURM name without spaces")
        for line in self.sbatch:
            if not sbatch_option(line):
                raise ValueError(f"--sbatch {line!r}: expected an sbatch option, e.g. "
                                 "--qos=short")  # fmt: skip


def memory_bytes(text: str) -> int:
    """``"4GiB"``, ``"4 GB"``, ``"500MiB"`` -> bytes; ValueError (one line) otherwise."""
    from dask.utils import parse_bytes

    try:
        value = parse_bytes(str(text))
    except (ValueError, TypeError):
        value = None
    if not value or value <= 0:
        raise ValueError(f"--memory {text!r} is not an amount of memory; e.g. 4GiB or 500MB")
    return int(value)


def sbatch_option(line: str) -> str:
    """An extra ``#SBATCH`` line's option (``"#SBATCH --qos=x"`` and ``"--qos=x"`` -> the
    latter); "" when it is not an option."""
    text = str(line).strip()
    if text.startswith("#SBATCH"):
        text = text[len("#SBATCH") :].strip()
    return text if text.startswith("-") and "\n" not in text else ""


def job_memory_bytes(per_cell_bytes: float, processes: int) -> int:
    """ei-sim's default memory for a job of ``processes`` workers: per worker a Python
    process with JAX (:data:`JOB_WORKER_BYTES`) and :data:`CELL_MEMORY_HEADROOM` times a
    cell's estimated peak, rounded up to whole GiB."""
    per_worker = JOB_WORKER_BYTES + CELL_MEMORY_HEADROOM * max(0.0, per_cell_bytes)
    return int(math.ceil(processes * per_worker / validate.GIB) * validate.GIB)


def default_jobs(n_cells: int, processes: int) -> int:
    """One job per ``processes`` cells to train (at least one)."""
    return max(1, math.ceil(n_cells / max(1, processes)))


def worker_exports(env: dict) -> list[str]:
    """Job-script lines that set ``env`` for the workers, turn off their own memory limits
    (:data:`WORKER_MEMORY_CONFIG`) and let them log which cell they train (the ``ei_sim``
    loggers at INFO, into the job's error file)."""
    env = {**env, **WORKER_MEMORY_CONFIG}
    lines = [f"export {k}={shlex.quote(str(v))}" for k, v in env.items()]
    return [*lines, "export DASK_LOGGING__EI_SIM=info"]


def slurm_job_kwargs(jobs: SlurmJobs, per_cell_bytes: float, log_dir: str, env: dict) -> dict:
    """The keywords of dask-jobqueue's ``SLURMCluster`` (its job part) for ``jobs``: what is
    given, else the Dask configuration's ``jobqueue.slurm.*``, else ei-sim's defaults (one
    core, memory from :func:`job_memory_bytes`, output in ``log_dir``). One worker process
    per core, one thread each, whatever the configuration says of processes."""
    import dask

    jobqueue()  # its defaults into the Dask configuration

    def config(key):
        return dask.config.get(f"jobqueue.slurm.{key}", None)

    cores = jobs.cores or config("cores") or 1
    memory = jobs.memory or config("memory")
    if memory is None:
        memory = f"{job_memory_bytes(per_cell_bytes, cores) // validate.GIB}GiB"
    name = config("name")
    kwargs = {
        "cores": int(cores), "processes": int(cores), "memory": str(memory),
        "job_name": JOB_NAME if name in (None, "dask-worker") else name,
        "job_script_prologue": [*(config("job-script-prologue") or []), *worker_exports(env)],
        "job_extra_directives": [*(config("job-extra-directives") or []),
                                 *(sbatch_option(x) for x in jobs.sbatch)],
        "log_directory": os.path.abspath(jobs.log_dir or config("log-directory") or log_dir),
    }  # fmt: skip
    for key in ("queue", "account", "walltime"):
        if getattr(jobs, key) is not None:
            kwargs[key] = str(getattr(jobs, key)).strip()
    return kwargs


def jobqueue():
    """The ``dask_jobqueue`` module, imported without its side effect on this process: on
    import it replaces the SIGINT handler with ``sys.exit()`` (for its runners), which
    would turn Ctrl-C into a silent exit with status 0; the handler is put back."""
    import importlib
    import signal
    import sys
    import threading

    if "dask_jobqueue" in sys.modules:
        return sys.modules["dask_jobqueue"]
    if threading.current_thread() is not threading.main_thread():
        raise RuntimeError("import dask_jobqueue from the main thread (it sets a signal handler)")
    previous = signal.getsignal(signal.SIGINT)
    try:
        module = importlib.import_module("dask_jobqueue")
        importlib.import_module("dask_jobqueue.slurm")
    finally:
        signal.signal(signal.SIGINT, previous if previous is not None else signal.SIG_DFL)
    return module


def job_script(kwargs: dict) -> str:
    """The job script one worker job would run (the scheduler's address left as a
    placeholder); submits nothing, and leaves no log folder behind."""
    SLURMJob = jobqueue().slurm.SLURMJob
    folder = kwargs.get("log_directory")
    made = folder is not None and not os.path.exists(folder)
    try:
        job = SLURMJob("tcp://SCHEDULER-ADDRESS:PORT", name=f"{kwargs['job_name']}-0", **kwargs)
        return job.job_script()
    finally:
        if made:
            with contextlib.suppress(OSError):
                os.rmdir(folder)


@functools.cache
def _job_class():
    """dask-jobqueue's SLURM job, which keeps sbatch's refusal instead of raising it inside
    the cluster's event loop (where it would be logged, not seen): :class:`SlurmWatch`
    reads it, replaces the job and quotes the reason. Closed, it says so."""
    from distributed.core import Status

    class EiSimSlurmJob(jobqueue().slurm.SLURMJob):
        submit_error = None

        async def start(self):
            try:
                await super().start()
            except (RuntimeError, ValueError, OSError) as err:
                self.submit_error = sbatch_reason(str(err))
                self.status = Status.running  # no job id: nothing to cancel when closed

        async def close(self):
            await super().close()
            self.status = Status.closed  # (dask-jobqueue leaves it running: a cluster
            # closing while a job object is still referenced would fail its own check)

    return EiSimSlurmJob


def sbatch_reason(text: str) -> str:
    """The ``sbatch: error:`` lines of a failed submission (dask-jobqueue's error text), on
    one line; the text's last line when there are none."""
    errors = [line.split("error:", 1)[1].strip() for line in text.splitlines()
              if line.startswith("sbatch:") and "error:" in line]  # fmt: skip
    if errors:
        return "; ".join(errors)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "sbatch failed"


def start_slurm_cluster(kwargs: dict, n_jobs: int):
    """A dask-jobqueue ``SLURMCluster`` (its scheduler in this process) asked for ``n_jobs``
    worker jobs, and a client of it. ValueError when sbatch is not on this machine."""
    import dask

    if shutil.which("sbatch") is None or shutil.which("squeue") is None:
        raise ValueError("--cluster slurm needs SLURM's sbatch and squeue on this machine "
                         "(the submit host); none found on PATH")  # fmt: skip
    from dask.distributed import Client

    SLURMCluster = jobqueue().SLURMCluster

    failures = max(ALLOWED_FAILURES, dask.config.get("distributed.scheduler.allowed-failures"))
    with dask.config.set({"distributed.scheduler.allowed-failures": failures}):
        cluster = SLURMCluster(job_cls=_job_class(), silence_logs="error", **kwargs)
    try:
        cluster.scale(jobs=n_jobs)
        return Client(cluster), cluster
    except BaseException:
        cluster.close()
        raise


def squeue_states(job_ids, user: str | None = None) -> dict[str, tuple[str, str]] | None:
    """``{job id: (state, reason)}`` of those of ``job_ids`` that SLURM still lists
    (pending or running); None when squeue does not answer."""
    wanted = {str(j) for j in job_ids if j}
    if not wanted:
        return {}
    argv = ["squeue", "-h", "-u", user or getpass.getuser(), "-o", "%i|%T|%r"]
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=SQUEUE_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        return None
    states = {}
    for line in out.stdout.splitlines():
        parts = line.strip().split("|")
        if len(parts) == 3 and parts[0] in wanted:
            states[parts[0]] = (parts[1], parts[2])
    return states


class WorkerWatch:
    """Counts the workers of ``client``'s cluster at each :meth:`poll`; raises
    :class:`NoWorkers` once the cluster has had none for ``timeout_s`` seconds."""

    def __init__(self, client, timeout_s: float = DEFAULT_WORKER_TIMEOUT_S,
                 clock=time.monotonic):  # fmt: skip
        validate.positive("--worker-timeout", timeout_s)
        self.client, self.timeout_s, self.clock = client, float(timeout_s), clock
        self.started = clock()
        self.last_seen: float | None = None
        self.first_worker_s: float | None = None  # seconds from the start to the first worker
        self.threads = 0
        self.notes: list[str] = []  # lines for the user (taken by the caller)

    def workers(self) -> dict:
        """``{address: {"name", "nthreads", ...}}`` of the connected workers."""
        try:
            info = self.client.scheduler_info(n_workers=-1)  # all of them (distributed 2025+)
        except TypeError:
            info = self.client.scheduler_info()
        return info.get("workers", {})

    def poll(self, cells_left: int, cells_waiting: int = 0) -> str:
        """Look at the workers now; return the progress bar's status text. ``cells_left``:
        the cells not finished; ``cells_waiting``: those of them not yet handed to Dask."""
        workers = self.workers()
        self._note_workers(workers)
        return f"workers {len(workers)}"

    def _note_workers(self, workers: dict) -> None:
        now = self.clock()
        self.threads = sum(int(w.get("nthreads", 1)) for w in workers.values())
        if workers:
            if self.first_worker_s is None:
                self.first_worker_s = now - self.started
            self.last_seen = now
        elif now - (self.last_seen if self.last_seen is not None else self.started) > (
            self.timeout_s
        ):
            raise NoWorkers(self.no_workers_line())

    def no_workers_line(self) -> str:
        where = f"the Dask scheduler at {self.client.scheduler.address}"
        if self.last_seen is None:
            return f"no Dask worker joined {where} within {self.timeout_s:g} s (--worker-timeout)"
        return (f"{where} has had no worker for {self.timeout_s:g} s (--worker-timeout); all "
                "of them left")  # fmt: skip


class SlurmWatch(WorkerWatch):
    """:class:`WorkerWatch` for a ``SLURMCluster`` that also keeps its jobs (see the module
    docstring): at most ``max_jobs``, fewer when fewer cells are left."""

    def __init__(self, client, cluster, max_jobs: int, processes: int = 1,
                 timeout_s=DEFAULT_WORKER_TIMEOUT_S, log_dir: str | None = None,
                 clock=time.monotonic):  # fmt: skip
        super().__init__(client, timeout_s, clock)
        self.cluster, self.max_jobs, self.log_dir = cluster, int(max_jobs), log_dir
        self.processes = max(1, int(processes))
        self.states: dict[str, tuple[str, str]] = {}
        self.squeue_at = -math.inf  # when the states were read
        self.rescaled_at = -math.inf
        self.noticed: dict[str, float] = {}  # job id -> when this watch first saw it
        self.submit_error: str | None = None
        self.ended_unjoined = 0  # jobs that left the queue before their worker joined
        self.joined: dict[str, float] = {}  # job name -> when its first worker joined
        self.lost: dict[str, float] = {}  # job name -> when its joined workers were seen gone

    def workers(self) -> dict:
        return dict(dict(self.cluster.scheduler_info).get("workers", {}))

    def poll(self, cells_left: int, cells_waiting: int = 0) -> str:
        now = self.clock()
        workers = self.workers()
        connected = self._connected_jobs(workers)
        for name in connected - set(self.joined):
            self.joined[name] = now
        jobs = dict(self.cluster.workers)
        for job in jobs.values():
            if job.job_id and job.job_id not in self.noticed:
                self.noticed[job.job_id] = now
        self._note_lost(jobs, connected, now)
        # a job whose worker has just left: squeue at every poll (at most once a second) until
        # the job has left the queue, for at most LOST_GRACE_S
        lost = any(t > self.squeue_at or (jobs[n].job_id in self.states
                                           and now - t < LOST_GRACE_S)
                   for n, t in self.lost.items())  # fmt: skip
        if now - self.squeue_at >= (1.0 if lost else SQUEUE_EVERY_S):
            states = squeue_states(self.noticed)
            if states is not None:
                self.states, self.squeue_at = states, now
        self._replace_ended(jobs, connected, now)
        self._fit_jobs(cells_left, cells_waiting, connected, now)
        first = self.first_worker_s
        self._note_workers(workers)
        if first is None and self.first_worker_s is not None:
            self.notes.append(f"slurm: first worker joined {self.first_worker_s:.1f} s after "
                              "the jobs were submitted")  # fmt: skip
        self._refused_at_once(workers)
        jobs = {n: j for n, j in dict(self.cluster.workers).items()
                if not getattr(j, "submit_error", None)}  # fmt: skip
        running = {n for n, j in jobs.items()
                   if n in connected or self.states.get(j.job_id, ("",))[0] in _ACTIVE}  # fmt: skip
        pending = len(jobs) - len(running)
        return f"jobs {pending} pending, {len(running)} running; workers {len(workers)}"

    def final_notes(self, pause_s: float = 0.5) -> None:
        """Before the cluster closes: read ``squeue`` again, so that a job that left the
        queue while the last cells finished is still reported (:attr:`notes`). A job whose
        worker left but that squeue still lists (completing) is waited for, at most
        :data:`FINAL_SQUEUE_TRIES` reads ``pause_s`` apart."""
        connected = self._connected_jobs(self.workers())
        read = False
        for tries_left in reversed(range(FINAL_SQUEUE_TRIES)):
            states = squeue_states(self.noticed)
            if states is None:
                break  # squeue did not answer: the last good read (if any) is used
            self.states, self.squeue_at, read = states, self.clock(), True
            jobs = dict(self.cluster.workers)
            self._note_lost(jobs, connected, self.squeue_at)
            if not tries_left or not any(jobs[n].job_id in states for n in self.lost):
                break
            time.sleep(pause_s)
        if read:
            self._replace_ended(dict(self.cluster.workers), connected, self.squeue_at)

    def _held(self, name: str, now: float) -> bool:
        """Whether the job ``name``, whose worker left, is kept (not cancelled as spare):
        for :data:`LOST_GRACE_S`, and while squeue says it is completing."""
        if name not in self.lost:
            return False
        job = dict(self.cluster.workers).get(name)
        completing = job is not None and self.states.get(job.job_id, ("",))[0] == "COMPLETING"
        return completing or now - self.lost[name] < LOST_GRACE_S

    def _note_lost(self, jobs: dict, connected: set[str], now: float) -> None:
        """Keep :attr:`lost`: the jobs still held whose workers had joined and are gone."""
        for name in set(self.joined) - connected:
            if name in jobs:
                self.lost.setdefault(name, now)
        for name in [n for n in self.lost if n in connected or n not in jobs]:
            del self.lost[name]

    def _my_states(self):
        ids = {j.job_id for j in dict(self.cluster.workers).values() if j.job_id}
        return [state for job_id, state in self.states.items() if job_id in ids]

    def _connected_jobs(self, workers: dict) -> set[str]:
        """The names of the jobs with at least one connected worker (a job of several
        processes names its workers ``<job>-<i>``)."""
        specs = set(list(self.cluster.worker_spec)) | set(dict(self.cluster.workers))
        out = set()
        for info in workers.values():
            name = str(info.get("name"))
            if name in specs:
                out.add(name)
            elif name.rpartition("-")[0] in specs:
                out.add(name.rpartition("-")[0])
        return out

    def _replace_ended(self, jobs: dict, connected: set[str], now: float) -> None:
        """Drop the jobs that sbatch refused or that left the queue without a connected
        worker; :meth:`_fit_jobs` submits their replacements."""
        ended = []
        for name, job in jobs.items():
            error = getattr(job, "submit_error", None)
            if error:
                self.submit_error = error
                ended.append(name)
            elif (job.job_id and job.job_id not in self.states and name not in connected
                  and self.noticed.get(job.job_id, math.inf) < self.squeue_at):  # fmt: skip
                ended.append(name)
                if name not in self.joined:
                    self.ended_unjoined += 1
                self.notes.append(f"slurm: job {job.job_id} left the queue; its cells go to "
                                  "other workers, and a new job replaces it while cells "
                                  "remain")  # fmt: skip
        if ended:
            self.cluster.sync(self.cluster.scale_down, ended)

    def _fit_jobs(self, cells_left: int, cells_waiting: int, connected: set[str],
                  now: float) -> None:  # fmt: skip
        """Submit jobs up to the target (at most every :data:`RESUBMIT_EVERY_S`), or cancel
        pending jobs above it, then idle ones (the latest to join first), these only while
        every unfinished cell is on a worker (none about to be handed out)."""
        target = min(self.max_jobs, default_jobs(cells_left, self.processes))
        specs = list(self.cluster.worker_spec)
        missing = len(specs) < target or set(specs) - set(dict(self.cluster.workers))
        if missing and len(specs) <= target and now - self.rescaled_at >= RESUBMIT_EVERY_S:
            self.cluster.scale(jobs=max(target, len(specs)))
            self.rescaled_at = now
        elif len(specs) > target:
            # a job whose worker has just left is about to leave the queue: it is counted as
            # gone, and left for _replace_ended to report, not cancelled here unseen
            held = {n for n in specs if n not in connected and self._held(n, now)}
            excess = len(specs) - len(held) - target
            spare = [n for n in specs if n not in connected and n not in held]
            if not cells_waiting and len(spare) < excess:
                idle = self._idle_jobs(connected, cells_left)
                spare += sorted(idle, key=lambda n: -self.joined.get(n, now))
            drop = spare[: max(0, excess)]
            workers = dict(self.cluster.workers)
            for name in drop:
                if name in self.lost and name in workers:  # still running, its worker gone
                    self.notes.append(f"slurm: job {workers[name].job_id} has had no worker "
                                      f"for {now - self.lost[name]:.0f} s; cancelled")  # fmt: skip
            if drop:
                self.cluster.sync(self.cluster.scale_down, drop)

    def _idle_jobs(self, connected: set[str], cells_left: int) -> set[str]:
        """Connected jobs none of whose workers is processing a task; none while fewer
        tasks are on workers than ``cells_left`` (one is between the client and a worker)."""
        busy, placed = set(), 0
        info = self.workers()
        for address, keys in self.client.processing().items():
            placed += len(keys)
            if keys and address in info:
                name = str(info[address].get("name"))
                busy.add(name if name in connected else name.rpartition("-")[0])
        return connected - busy if placed >= cells_left else set()

    def _refused_at_once(self, workers: dict) -> None:
        """No worker, no job accepted and a refusal from sbatch: no point waiting."""
        accepted = any(j.job_id for j in dict(self.cluster.workers).values()) or self.noticed
        if self.submit_error and not workers and not accepted and self.last_seen is None:
            raise NoWorkers(f"no Dask worker can start: sbatch refused the worker job: "
                            f"{self.submit_error}")  # fmt: skip

    def no_workers_line(self) -> str:
        when = (f"within {self.timeout_s:g} s (--worker-timeout)" if self.last_seen is None
                else f"for {self.timeout_s:g} s (--worker-timeout; all workers left)")  # fmt: skip
        pending = [r for s, r in self._my_states() if s == "PENDING"]
        if pending:
            reasons = ", ".join(sorted(set(pending)))
            why = f"{len(pending)} SLURM job{'s' if len(pending) != 1 else ''} pending ({reasons})"
        elif self.submit_error:
            why = f"sbatch refused the worker job: {self.submit_error}"
        elif self.ended_unjoined:
            why = (f"{self.ended_unjoined} worker job(s) ended before their worker joined; "
                   f"see their output in {self.log_dir}")  # fmt: skip
        else:
            why = "no worker job in the queue"
        return f"no Dask worker {when}: {why}"


def remove_if_empty(folder: str | None) -> None:
    """Remove ``folder`` when it exists and holds nothing."""
    if folder:
        with contextlib.suppress(OSError):
            os.rmdir(folder)
