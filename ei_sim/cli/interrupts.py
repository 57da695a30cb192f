"""Ctrl-C ends every command with exit status 130, at once and without a crash.

Two things stood in the way of that:

* **A segmentation fault at exit.** JAX compiles a program on the XLA client's thread pool
  while the main thread waits for it, and that wait gives way to Ctrl-C: the
  ``KeyboardInterrupt`` unwinds the command while the compilation runs on. Python's
  teardown then destroys the PjRt client (its devices first, then its thread pool, joining
  the compiling thread), and the compilation, still building its executable, reads a
  device that is gone (``SingleDeviceSharding::Create`` on a freed ``Device``): exit -11.
  It struck whenever the interrupt came during a compilation, which with a cold compile
  cache is much of a short run's first seconds. :func:`exit_after_interrupt` ends the
  process without destroying the client: it keeps a reference to it, runs the exit
  handlers (which flush and close everything that Python code opened; JAX's own only drops
  its caches then), flushes the standard streams and leaves with ``os._exit``. Every file
  is complete by then: results are written atomically inside ``with`` blocks that the
  interrupt has already unwound.
* **Errors of a full disk in destructors.** h5py objects freed after a write failed on a
  full disk report the failure again from their destructors ("Exception ignored in ...");
  the command reports the full disk once, in its one line, so :func:`guard_interrupts`'s
  hook drops those.
* **Interrupts that Python swallowed.** Python runs the SIGINT handler at the next bytecode
  of the main thread. When that bytecode belongs to a garbage-collector callback (JAX
  registers one that frees XLA buffers), a weak-reference callback or a destructor, the
  ``KeyboardInterrupt`` is "ignored" (printed as ``Exception ignored in ...`` and dropped)
  and the command ran on to its end with status 0. :func:`guard_interrupts` catches those
  (``sys.unraisablehook``) and delivers them again to the main thread a moment later,
  outside the callback.
* **Interrupts that a library swallowed without a trace** (code that catches every
  exception, or a C extension that clears the error it was handed): the command ran on, and
  a short training ended with status 0 (seen once in 20 interrupts during start-up with cold
  caches). ei-sim's own SIGINT handler notes every Ctrl-C before it raises
  ``KeyboardInterrupt``, and the commands call :func:`raise_if_interrupted` between their
  stages (``ei-sim train``, ``ei-sim grid``'s serial and vmap executors and ``ei-sim
  reproduce``: before training, before each stage and after every epoch's files are
  written; ``ei-sim simulate``: after each chunk), so an interrupt that was dropped is raised
  again there.
"""

from __future__ import annotations

import atexit
import os
import signal
import sys
import threading

REDELIVER_AFTER_S = 0.05

_previous_hook: list = []


def _redeliver() -> None:
    import _thread

    _thread.interrupt_main()


def _hook(unraisable) -> None:
    if unraisable.exc_type is not None and issubclass(unraisable.exc_type, KeyboardInterrupt):
        timer = threading.Timer(REDELIVER_AFTER_S, _redeliver)
        timer.daemon = True
        timer.start()
        return
    if _disk_full(unraisable.exc_value):  # HDF5 objects freed after a write failed: the
        return  # command reports the full disk in its one line
    _previous_hook[0](unraisable)


def _disk_full(err) -> bool:
    from ei_sim.store.atomic import is_disk_full

    return err is not None and is_disk_full(err)


_received = threading.Event()  # a Ctrl-C reached this process


def _on_sigint(signum, frame):
    _received.set()
    raise KeyboardInterrupt


def note_interrupts() -> None:
    """Replace Python's SIGINT handler by one that notes each Ctrl-C before it raises
    ``KeyboardInterrupt`` as Python's does (only in the main thread, and only where SIGINT
    has Python's handler: an ignored SIGINT, as under ``nohup``, stays ignored)."""
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, _on_sigint)


def raise_if_interrupted() -> None:
    """Raise ``KeyboardInterrupt`` if a Ctrl-C reached this process (one that something
    swallowed: the command is still running)."""
    if _received.is_set():
        raise KeyboardInterrupt


def guard_interrupts() -> None:
    """Install the hook that re-delivers swallowed interrupts (once per process) and the
    SIGINT handler that notes each interrupt (:func:`note_interrupts`); a command starts with
    no interrupt noted (an earlier command in the same process, e.g. a test's, had its own)."""
    _received.clear()
    if not _previous_hook:
        _previous_hook.append(sys.unraisablehook)
        sys.unraisablehook = _hook
    note_interrupts()


def _xla_clients() -> list:
    """The XLA clients this process started (none if JAX never ran anything)."""
    if "jax" not in sys.modules:
        return []
    try:
        from jax._src import xla_bridge  # the clients themselves are not public

        return list(getattr(xla_bridge, "_backends", {}).values())
    except Exception:  # noqa: BLE001 - JAX interrupted while importing: nothing started
        return []


def exit_after_interrupt(code: int) -> None:
    """End the process with ``code`` without destroying the XLA client (module docstring)."""
    clients = _xla_clients()  # held until the process ends: never destroyed under a compile
    try:
        atexit._run_exitfuncs()
    except BaseException:  # noqa: BLE001 - a second Ctrl-C while cleaning up: leave anyway
        pass
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    del clients
    os._exit(code)
