"""Where the partitions are processed: in this process (Polars backend) or on a Dask cluster.

An :class:`Executor` maps a function over partitions and keeps per-partition objects (a
partition's model cross products) where they were built, so that a model fit sends only
``theta`` and a few small matrices per evaluation. :class:`LocalExecutor` runs everything in
this process, one partition at a time (the model evaluations' sums on ``[engine] workers``
threads, one per core by default); :class:`DaskExecutor` runs on a
``dask.distributed`` cluster: a ``LocalCluster`` of worker processes with a memory limit
(``[engine] scheduler = "local"``), or an existing scheduler (``"tcp://host:8786"``).

A worker lost mid-run is Dask's to handle: its tasks and the objects it held are recomputed on
the other workers from their inputs (every task here is a pure function of its partition and
writes its files atomically). When the cluster cannot finish (every worker lost, the scheduler
gone), :func:`executor` raises :class:`ClusterError`, a user error of one sentence.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from pipeline.config.options import EngineSettings
from pipeline.errors import UserError


class ClusterError(UserError):
    """The cluster could not finish the run (one sentence)."""


class LocalExecutor:
    """Run every task in this process, in order.

    The kept partitions' per-evaluation sums (:meth:`on_kept`, numpy work that releases the
    GIL) run on ``threads`` threads; their results come back in partition order, so the
    driver adds them up in the same order whatever the number of threads.

    Parameters
    ----------
    threads : int, default 1
        Threads for :meth:`on_kept`.
    """

    name = "polars (this process)"
    n_workers = 1

    def __init__(self, threads: int = 1) -> None:
        self.threads = max(1, int(threads))
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None

    def close(self) -> None:
        """Stop the threads of :meth:`on_kept`, if any were started."""
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    def map(
        self,
        function: Callable[..., Any],
        items: Sequence[Any],
        *args: Any,
        progress: Callable[[int, int], None] | None = None,
    ) -> list[Any]:
        """Return ``[function(item, *args) for item in items]``; ``progress(done, total)``."""
        out = []
        for item in items:
            out.append(function(item, *args))
            if progress:
                progress(len(out), len(items))
        return out

    def keep(self, function: Callable[..., Any], items: Sequence[Any], *args: Any) -> list[Any]:
        """Build one object per item and keep it (here: in memory); return handles to them."""
        return self.map(function, items, *args)

    def on_kept(self, function: Callable[..., Any], kept: Sequence[Any], *args: Any) -> list[Any]:
        """Apply ``function(object, *args)`` to every kept object; return the results."""
        if self.threads == 1 or len(kept) < 2:
            return [function(obj, *args) for obj in kept]
        if self._pool is None:
            self._pool = concurrent.futures.ThreadPoolExecutor(self.threads)
        return list(self._pool.map(lambda obj: function(obj, *args), kept))

    def release(self, kept: Sequence[Any]) -> None:
        """Forget kept objects."""


class DaskExecutor:
    """Run tasks on a ``dask.distributed`` cluster through a ``Client``."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.name = f"dask ({client.scheduler.address})"

    @property
    def n_workers(self) -> int:
        """Workers connected now."""
        return len(self.client.scheduler_info(n_workers=-1)["workers"])

    def _gather(self, futures: list[Any]) -> list[Any]:
        from distributed import CancelledError
        from distributed.scheduler import KilledWorker

        try:
            return self.client.gather(futures)
        except KilledWorker as exc:
            raise ClusterError(
                f"the Dask cluster lost the workers running one task too often ({exc.task}); "
                "nothing was written to the reports folder: check the workers' memory "
                "([engine] worker_memory) and run again"
            ) from None
        except (CancelledError, OSError, TimeoutError) as exc:
            raise ClusterError(
                f"the Dask cluster stopped during the run ({type(exc).__name__}); nothing was "
                "written to the reports folder: run again"
            ) from None

    def map(
        self,
        function: Callable[..., Any],
        items: Sequence[Any],
        *args: Any,
        progress: Callable[[int, int], None] | None = None,
    ) -> list[Any]:
        """Run ``function(item, *args)`` for every item on the cluster; return the results.

        ``progress(done, total)`` is called as tasks finish.
        """
        from distributed import as_completed

        futures = self.keep(function, items, *args)
        if progress:
            for done, _ in enumerate(as_completed(futures), start=1):
                progress(done, len(futures))
        return self._gather(futures)

    def keep(self, function: Callable[..., Any], items: Sequence[Any], *args: Any) -> list[Any]:
        """Build one object per item on the workers and keep it there; return the futures."""
        return self.client.map(function, list(items), *[[a] * len(items) for a in args], pure=False)

    def on_kept(self, function: Callable[..., Any], kept: Sequence[Any], *args: Any) -> list[Any]:
        """Apply ``function(object, *args)`` where each kept object lives; gather the results."""
        futures = self.client.map(
            function, list(kept), *[[a] * len(kept) for a in args], pure=False
        )
        return self._gather(futures)

    def release(self, kept: Sequence[Any]) -> None:
        """Let the cluster drop the kept objects."""
        for future in kept:
            future.release()


def local_cluster(n_workers: int, memory_limit: str) -> Any:
    """Start a ``LocalCluster`` of single-threaded worker processes with a memory limit."""
    from distributed import LocalCluster

    return LocalCluster(
        n_workers=n_workers,
        threads_per_worker=1,
        processes=True,
        memory_limit=memory_limit,
        dashboard_address=None,
        silence_logs=40,
    )


@contextlib.contextmanager
def executor(engine: EngineSettings) -> Iterator[LocalExecutor | DaskExecutor]:
    """Yield the executor of ``[engine]``; a local Dask cluster lives as long as the block.

    Raises
    ------
    ClusterError
        The scheduler of ``[engine] scheduler`` cannot be reached.
    """
    if engine.backend != "dask":
        local = LocalExecutor(threads=engine.workers or os.cpu_count() or 1)
        try:
            yield local
        finally:
            local.close()
        return
    from distributed import Client

    with contextlib.ExitStack() as stack:
        if engine.scheduler == "local":
            workers = engine.workers or os.cpu_count() or 1
            cluster = stack.enter_context(local_cluster(workers, engine.worker_memory))
            client = stack.enter_context(Client(cluster))
        else:
            try:
                client = stack.enter_context(Client(engine.scheduler, timeout="20s"))
            except (OSError, TimeoutError):
                raise ClusterError(
                    f"no Dask scheduler answers at {engine.scheduler} ([engine] scheduler); "
                    "start one with `dask scheduler` and workers with `dask worker "
                    f'{engine.scheduler}`, or set scheduler = "local"'
                ) from None
        from distributed import CancelledError

        try:
            yield DaskExecutor(client)
        except (CancelledError, OSError, TimeoutError) as exc:
            raise ClusterError(
                f"the Dask cluster stopped during the run ({type(exc).__name__}); nothing was "
                "written to the reports folder: run again once the scheduler and workers are up"
            ) from None
