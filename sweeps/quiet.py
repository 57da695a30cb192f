"""A Dask grid stopped by Ctrl-C ends in its one line, without the tracebacks of Dask's
shutdown.

When a grid is interrupted, the client, the scheduler and the workers are closed while
messages are still in flight; Dask's and Tornado's loggers (and asyncio's, for tasks whose
connection closed under them) then report ``CommClosedError`` and ``StreamClosedError``
with full tracebacks: in this process, during the close and again at exit, and in the
workers, whose heartbeat finds the scheduler gone (a worker's output is this terminal's). None
of that is news to the user, who asked for the stop:

- :func:`quiet_after_interrupt` silences those loggers of this process for the rest of its
  life once an interrupt ends the grid (the command prints what the grid kept);
- :func:`drop_closed_connections` (called in this process, and in every worker as it joins:
  :func:`quiet_workers`) drops the records of a connection found closed, whatever logger
  reports them.

Other errors of a grid reach the user as before: a failed cell is raised from its future.
"""

from __future__ import annotations

import functools
import logging

NOISY = ("distributed", "tornado", "asyncio")


def _noisy_loggers() -> list[logging.Logger]:
    names = [n for n in logging.root.manager.loggerDict
             if any(n == p or n.startswith(p + ".") for p in NOISY)]  # fmt: skip
    return [logging.getLogger(n) for n in (*NOISY, *names)]


CLOSED = ("CommClosedError", "StreamClosedError")


class _ClosedConnections(logging.Filter):
    """Drops the records of a connection found closed (Dask's shutdown)."""

    def filter(self, record: logging.LogRecord) -> bool:
        kind = record.exc_info[0].__name__ if record.exc_info and record.exc_info[0] else ""
        if kind in CLOSED:
            return False
        try:
            text = record.getMessage()
        except Exception:  # noqa: BLE001 - a record whose message cannot be formatted
            return True
        return not any(name in text for name in CLOSED)


_FILTER = _ClosedConnections()


def drop_closed_connections() -> None:
    """Drop, in this process, every log record of a Dask connection found closed (on the
    handlers of the root and of Dask's loggers; idempotent)."""
    for logger in (logging.getLogger(), *(logging.getLogger(n) for n in NOISY)):
        for handler in logger.handlers:
            if _FILTER not in handler.filters:
                handler.addFilter(_FILTER)
    if _FILTER not in logging.lastResort.filters:
        logging.lastResort.addFilter(_FILTER)


PLUGIN_NAME = "ei-sim-quiet-shutdown"


def _install_in_worker(worker=None) -> None:
    drop_closed_connections()


def quiet_workers(client) -> None:
    """Have every worker of ``client``'s cluster, now and as it joins later, drop the records
    of closed connections (:func:`drop_closed_connections`; also a worker still importing
    when the grid stops); a cluster that refuses worker plugins is left as it is."""
    from distributed.diagnostics.plugin import WorkerPlugin

    class QuietWorker(WorkerPlugin):
        idempotent = True

        def setup(self, worker) -> None:
            _install_in_worker(worker)

    try:
        client.register_plugin(QuietWorker(), name=PLUGIN_NAME)
    except Exception:  # noqa: BLE001 - an older or locked-down cluster: only the noise stays
        pass


def silence_shutdown() -> None:
    """Silence Dask's, Tornado's and asyncio's loggers in this process from now on."""
    for logger in _noisy_loggers():
        logger.disabled = True


def quiet_after_interrupt(fn):
    """Run ``fn`` (a grid's run); when Ctrl-C stops it, silence the shutdown's loggers before
    its clean-up runs (``fn``'s own ``finally`` closes the cluster) and for the rest of the
    process."""

    @functools.wraps(fn)
    def run(*args, **kwargs):
        import signal
        import threading

        if threading.current_thread() is not threading.main_thread():
            return fn(*args, **kwargs)
        previous = signal.getsignal(signal.SIGINT)

        def on_interrupt(signum, frame):
            silence_shutdown()
            if callable(previous):
                previous(signum, frame)
            else:
                raise KeyboardInterrupt

        drop_closed_connections()
        # Python's handler, or one that raises KeyboardInterrupt in its turn (ei-sim's CLI
        # notes each interrupt first); an ignored or default SIGINT is left as it is
        installed = callable(previous)
        if installed:
            signal.signal(signal.SIGINT, on_interrupt)
        try:
            return fn(*args, **kwargs)
        finally:
            if installed and signal.getsignal(signal.SIGINT) is on_interrupt:
                signal.signal(signal.SIGINT, previous)

    return run
