"""The run's worker processes: started alike, given their work alike, never outliving the run.

Every pool of the run (the model fits, :mod:`pipeline.analyses.run`; the estimand beside them,
:mod:`pipeline.analyses.alongside`; the tables and report sections built after them,
:mod:`pipeline.analyses.side_by_side`) comes from :func:`worker_pool`:

* Workers are forked where the platform can (Linux), else spawned (:func:`forks`).
* Each asks the kernel to kill it when its parent dies (Linux ``prctl(PR_SET_PDEATHSIG)``, which
  covers SIGKILL and the out-of-memory killer) and watches its parent's pid as a second line;
  workers ignore Ctrl-C, and a parent that stops kills them first (:func:`kill_workers`).
* A wait for their results notices a worker that died without the pool noticing
  (:func:`wait_settled`).
* Their calls go through a :class:`Handover`: a forked worker reads each call (function and
  arguments) from its copy of this process and is sent only a number, so a model's rows or a
  whole data set are neither pickled nor copied through a pipe; a spawned worker gets the call
  pickled.
"""

from __future__ import annotations

import ctypes
import gc
import itertools
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any

__all__ = [
    "Handover",
    "cores",
    "forks",
    "in_worker",
    "kill_workers",
    "wait_settled",
    "worker_pool",
]

_IN_WORKER = False
"""Whether this process is a worker of a pool of :func:`worker_pool` (set as it starts)."""

_PR_SET_PDEATHSIG = 1
WATCH_SECONDS = 0.5
_POLL_SECONDS = 0.5
"""How often a wait for workers' results looks for a worker that died (wait_settled)."""


def _die_with_parent(parent: int) -> None:
    """Make this worker die when ``parent`` does, however the parent dies.

    On Linux the kernel sends SIGKILL to the worker when its parent thread ends
    (``prctl(PR_SET_PDEATHSIG)``); a daemon thread also exits the worker when its parent pid
    changes (the parent died before the request, or the platform has no prctl).
    """
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(WATCH_SECONDS)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, name="parent-watchdog", daemon=True).start()


def _worker_init(parent: int) -> None:
    """Initialise a worker: die with the parent; leave Ctrl-C and SIGTERM to the parent's care."""
    global _IN_WORKER
    _IN_WORKER = True
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the terminal's Ctrl-C reaches every worker
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # the parent's handler was inherited by fork
    _die_with_parent(parent)


def kill_workers(pool: ProcessPoolExecutor) -> None:
    """Kill the pool's workers at once (the parent is stopping) and wait for them."""
    processes = list((getattr(pool, "_processes", None) or {}).values())
    for process in processes:
        if process.is_alive():
            process.kill()
    for process in processes:
        process.join(timeout=5)
    # With every worker gone, this process holds the last writing end of the pool's result
    # pipe: closed, a manager thread waiting for the rest of a message that a killed worker
    # had begun (see wait_settled) reads its end and stops, instead of waiting for ever.
    writer = getattr(getattr(pool, "_result_queue", None), "_writer", None)
    if writer is not None and not writer.closed:
        writer.close()
    manager = getattr(pool, "_executor_manager_thread", None)
    pool.shutdown(wait=False, cancel_futures=True)
    if manager is not None:
        # Let the pool's manager thread finish closing its wake-up pipe now: on Python 3.11 the
        # interpreter's exit hook otherwise races it and writes to the closed pipe (a traceback
        # after the one-sentence message).
        manager.join(timeout=10)


def _pool_context() -> multiprocessing.context.BaseContext:
    """Fork the workers where the platform can (Linux), else spawn them.

    Forked workers start at once with the pipeline already imported, and the caller's
    ``__main__`` is not re-run (a script without an ``if __name__ == "__main__"`` guard still
    works); spawned workers (macOS, Windows) need that guard.
    """
    if sys.platform.startswith("linux"):
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("spawn")


def forks() -> bool:
    """Whether :func:`worker_pool` forks its workers (they start with a copy of this process).

    A pool forks all its workers at its first submission: what this process holds then is
    theirs without pickling.
    """
    return _pool_context().get_start_method() == "fork"


def worker_pool(workers: int) -> ProcessPoolExecutor:
    """Return a pool of ``workers`` processes started as the model workers are.

    Forked where the platform can (:func:`_pool_context`), each dies with this process and
    leaves Ctrl-C and SIGTERM to it (:func:`_worker_init`). The estimand beside the fits
    (:mod:`pipeline.analyses.alongside`) and the pieces built after them
    (:mod:`pipeline.analyses.side_by_side`) use the same; :class:`Handover` gives them their
    calls.
    """
    return ProcessPoolExecutor(
        max_workers=workers,
        mp_context=_pool_context(),
        initializer=_worker_init,
        initargs=(os.getpid(),),
    )


def wait_settled(
    pool: ProcessPoolExecutor, futures: Iterable[Future], return_when: str = FIRST_COMPLETED
) -> set[Future]:
    """Wait as :func:`concurrent.futures.wait` does, and notice a worker that died unnoticed.

    A worker killed while it writes its result (the out-of-memory killer, ``kill -9``) can
    leave the first part of a message in the pool's result pipe; the pool's manager thread then
    waits for the rest for ever and never marks the pool broken. The pool's workers live as
    long as the pool, so a worker that has exited means a broken pool: this raises
    :class:`~concurrent.futures.process.BrokenProcessPool` as the pool would have.

    Parameters
    ----------
    pool : ProcessPoolExecutor
        The pool running ``futures`` (from :func:`worker_pool`).
    futures : iterable of Future
        Futures of ``pool``.
    return_when : str, default FIRST_COMPLETED
        ``FIRST_COMPLETED`` or ``ALL_COMPLETED``.

    Returns
    -------
    set of Future
        The finished futures.

    Raises
    ------
    BrokenProcessPool
        A worker of ``pool`` has exited.
    """
    futures = list(futures)
    while True:
        done, waiting = wait(futures, timeout=_POLL_SECONDS, return_when=return_when)
        if not waiting or (done and return_when == FIRST_COMPLETED):
            return done
        processes = list((getattr(pool, "_processes", None) or {}).values())
        if any(process.exitcode is not None for process in processes):
            raise BrokenProcessPool("a worker process exited while its pool was working")


def in_worker() -> bool:
    """Whether this process is a worker of a :func:`worker_pool` pool (it starts no pool)."""
    return _IN_WORKER


def cores() -> int:
    """Count the cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


Call = tuple[Callable[..., Any], tuple[Any, ...]]
"""A function and its positional arguments."""

_INHERITED: dict[int, Call] = {}
"""The calls handed over to forked workers, which read them from their copy of this process."""
_KEYS = itertools.count()


def _call_inherited(key: int) -> Any:
    """Make the call handed over under ``key`` (in a forked worker)."""
    function, args = _INHERITED[key]
    return function(*args)


class Handover:
    """Calls for a pool's workers: inherited where they are forked, pickled where spawned.

    A pool forks all its workers at its first submission, and each worker's copy of this
    process holds the calls registered by then: create the handover before submitting anything
    to the pool, and release it (or leave its ``with`` block) once the results are in.

    Parameters
    ----------
    calls : sequence of (callable, tuple)
        Each call's function and positional arguments. Where workers are spawned, both are
        pickled (the function must then be defined at module level).

    Examples
    --------
    >>> import operator
    >>> pool = worker_pool(2)
    >>> with Handover([(operator.add, (1, 2)), (operator.mul, (3, 4))]) as calls:
    ...     futures = [calls.submit(pool, i) for i in range(2)]
    ...     results = [f.result() for f in futures]
    >>> pool.shutdown()
    >>> results
    [3, 12]
    """

    def __init__(self, calls: Sequence[Call]):
        self._calls = list(calls)
        self._keys: list[int] | None = None
        if forks():
            self._keys = [next(_KEYS) for _ in self._calls]
            _INHERITED.update(zip(self._keys, self._calls, strict=True))

    def submit(self, pool: ProcessPoolExecutor, position: int) -> Future:
        """Submit call ``position`` to ``pool``; only its number is sent to a forked worker.

        The pool's first submission forks its workers with this process's objects frozen
        (:func:`gc.freeze`): a worker's garbage collector then leaves the objects it inherited
        alone. Otherwise its first full collection walks every object of the run (at 100,000
        patients about 0.2 s) and writes to each, which copies their pages into the worker
        (about 70 MB each).
        """
        if self._keys is None:
            function, args = self._calls[position]
            return pool.submit(function, *args)
        if getattr(pool, "_processes", None):  # (its workers are running)
            return pool.submit(_call_inherited, self._keys[position])
        gc.freeze()
        try:
            return pool.submit(_call_inherited, self._keys[position])
        finally:
            gc.unfreeze()

    def release(self) -> None:
        """Forget the calls (this process no longer holds their arguments for the workers)."""
        for key in self._keys or ():
            _INHERITED.pop(key, None)
        self._keys = None

    def __enter__(self) -> Handover:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
