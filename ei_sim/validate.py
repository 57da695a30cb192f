"""Checks of user input, shared by the command line and the Python API.

Every check raises ``ValueError`` with one line that names the option (``--t-ms``) or the
parameter and says what would be accepted. The CLI runs them before any work starts or any
file is created; the library functions run the same ones, so both speak with one voice.

Numbers must be finite, of the right sign and below sane upper bounds; a request whose
memory need (estimated from its sizes) exceeds the machine's memory is refused up front
instead of failing with a traceback after minutes of work.
"""

from __future__ import annotations

import math
import numbers
import os

# JAX keys are built from 32 bits without x64: seeds 2**32 and 0 would give the same network.
SEED_MAX = 2**32 - 1
GIB = 1 << 30
# What a Dask worker process with JAX and one training costs at least (tiny tier).
WORKER_BYTES = 512 << 20


def _real(option: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{option} must be a number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{option} must be a finite number, got {value}")
    return value


def finite(option: str, value) -> float:
    """``value`` as a float; ValueError unless it is a finite number."""
    return _real(option, value)


def positive(option: str, value, high: float | None = None, hint: str = "") -> float:
    """A finite number > 0 (and <= ``high`` when given)."""
    v = _real(option, value)
    if not v > 0:
        raise ValueError(f"{option} must be > 0, got {v:g}{_hint(hint)}")
    if high is not None and v > high:
        raise ValueError(f"{option} must be at most {high:g}, got {v:g}{_hint(hint)}")
    return v


def non_negative(option: str, value, high: float | None = None, hint: str = "") -> float:
    """A finite number >= 0 (and <= ``high`` when given)."""
    v = _real(option, value)
    if v < 0:
        raise ValueError(f"{option} must be >= 0, got {v:g}{_hint(hint)}")
    if high is not None and v > high:
        raise ValueError(f"{option} must be at most {high:g}, got {v:g}{_hint(hint)}")
    return v


def between(option: str, value, low: float, high: float, hint: str = "") -> float:
    """A finite number in the closed interval [low, high]."""
    v = _real(option, value)
    if not low <= v <= high:
        raise ValueError(f"{option} must lie in [{low:g}, {high:g}], got {v:g}{_hint(hint)}")
    return v


def count(option: str, value, low: int = 1, high: int | None = None, hint: str = "") -> int:
    """An integer >= ``low`` (and <= ``high`` when given)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{option} must be an integer, got {value!r}")
    v = int(value)
    if v < low:
        raise ValueError(f"{option} must be >= {low}, got {v}{_hint(hint)}")
    if high is not None and v > high:
        raise ValueError(f"{option} must be at most {high}, got {v}{_hint(hint)}")
    return v


def seed(option: str, value) -> int:
    """A seed: an integer in [0, 2**32 - 1] (larger ones would repeat smaller ones' keys)."""
    return count(option, value, 0, SEED_MAX, "seeds are 32-bit: 0 to 4294967295")


def _hint(hint: str) -> str:
    return f"; {hint}" if hint else ""


def format_bytes(n: float) -> str:
    """1536 -> '1.54 kB'; powers of 1000 up to exabytes."""
    for unit in ("B", "kB", "MB", "GB", "TB", "PB", "EB"):
        if abs(n) < 1000:
            return f"{n:.3g} {unit}"
        n /= 1000.0
    return f"{n * 1000:.3g} EB"


def machine_memory_bytes() -> int:
    """Physical memory of this machine, or the cgroup limit of this process where lower."""
    total = 0
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        total = 0
    limit = _cgroup_limit()
    if limit and (not total or limit < total):
        total = limit
    return total or 1 << 62


def available_memory_bytes() -> int:
    """Memory this process may still take: the kernel's ``MemAvailable`` (free plus
    reclaimable), or the cgroup's limit less its usage where lower; the machine's memory
    (:func:`machine_memory_bytes`) where neither can be read."""
    have = []
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    have.append(int(line.split()[1]) * 1024)
    except (OSError, ValueError, IndexError):
        pass
    limit = _cgroup_limit()
    if limit:
        for path in ("/sys/fs/cgroup/memory.current",
                     "/sys/fs/cgroup/memory/memory.usage_in_bytes"):  # fmt: skip
            try:
                with open(path) as fh:
                    have.append(max(0, limit - int(fh.read().strip())))
                break
            except (OSError, ValueError):
                continue
    return min(have) if have else machine_memory_bytes()


def _cgroup_limit() -> int:
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            with open(path) as fh:
                text = fh.read().strip()
        except OSError:
            continue
        if text.isdigit() and int(text) < 1 << 60:
            return int(text)
    return 0


def check_memory(what: str, needed_bytes: float, hint: str) -> None:
    """ValueError when ``needed_bytes`` exceed the machine's memory; ``what`` names the
    request (e.g. '--t-ms 1e+12 at --dt-ms 0.1'), ``hint`` the fix."""
    have = machine_memory_bytes()
    if needed_bytes > have:
        raise ValueError(
            f"{what} needs about {format_bytes(needed_bytes)} of memory, more than this "
            f"machine's {format_bytes(have)}; {hint}"
        )


def _events_per_step(lam: float) -> int:
    """Width of the per-step input event lists for ``lam`` expected events per step."""
    width = lam + 6.0 * math.sqrt(lam) + 8.0
    return 8 * math.ceil(width / 8.0)


def simulate_bytes(n_steps: float, n_in: int, batch: int, p_per_step: float) -> float:
    """Memory one simulation needs beyond its network: per step, the input event lists and
    their prefix sums, the geometric spike times of every input channel, and the spike
    counts and population activity kept for the rates and the gamma peak."""
    per_step = 16.0 * batch
    if n_in > 0:
        lam = batch * n_in * p_per_step
        per_step += 8.0 * _events_per_step(lam) + 24.0 + 16.0 * lam
    return n_steps * per_step


def train_bytes(n_steps: float, n_in: int, n_e: int, n_i: int, n_out: int, batch: int,
                p_per_step: float, checkpoint_every: int) -> float:  # fmt: skip
    """Memory one training needs (order of magnitude): weights with their gradients and Adam
    moments, the batch's input events, the states stored at every checkpoint and the steps
    of one chunk recomputed by the backward pass."""
    cells = n_e + n_i
    weights = 4.0 * (n_in * n_e + 2 * n_e * n_i + n_e * n_out) * 6
    lam = batch * n_in * p_per_step * 0.5  # MNIST pixels average well below half intensity
    events = n_steps * (8.0 * max(64, _events_per_step(lam)) + 24.0 + 16.0 * lam)
    checkpoints = (n_steps / max(1, checkpoint_every)) * batch * cells * 4.0 * 5
    chunk = min(n_steps, checkpoint_every) * batch * cells * 4.0 * 12
    return weights + events + checkpoints + chunk


def axis_length(option: str, text: str, points: int) -> int:
    """How many values the axis ``text`` (``A..B``, ``A..B:N`` or a comma list) holds,
    without building it; ValueError for empty list items."""
    text = str(text).strip()
    if ".." in text:
        span, _, n = text.partition(":")
        low, _, high = span.partition("..")
        if n.strip():
            return int(n) if n.strip().isdigit() else 1
        return 1 if low.strip() == high.strip() else points
    items = text.split(",")
    if any(not item.strip() for item in items) and text:
        raise ValueError(f"{option} {text!r} has an empty value between commas; e.g. 0,0.5,1")
    return len(items)
