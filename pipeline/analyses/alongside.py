"""One analysis in a process of its own while the run goes on: the estimand block beside the fits.

The ``[estimand]`` block (:func:`pipeline.analyses.missing_data.missing_data_analysis`) needs
only the analysis data set and the configuration, and the plan's model fits keep the cores busy
only while there are models left: started before the fits, in one more process, it uses the
time the fit workers leave idle and the main process's own tables, instead of running after
them. :class:`Alongside` starts it the way the fit workers are started
(:mod:`pipeline.analyses.workers`: forked on Linux, dying with the run, Ctrl-C left to the
main process) and gives back its result or its exception as if it had been called in place.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Generic, TypeVar

from pipeline.analyses.workers import Handover, kill_workers, wait_settled, worker_pool
from pipeline.errors import UserError

__all__ = ["Alongside"]

T = TypeVar("T")


class Alongside(Generic[T]):
    """Call ``function(*args)`` in a process of its own; :meth:`result` waits for it.

    Parameters
    ----------
    function : callable
        A module-level function (it is called in the other process).
    *args
        Its arguments (a forked process inherits them; a spawned one gets them pickled, and
        the result is pickled back).
    what : str
        What it computes, for the message when its process is killed.
    """

    def __init__(self, function: Callable[..., T], *args: Any, what: str):
        self.what = what
        self._pool = worker_pool(1)
        self._call = Handover([(function, args)])  # forked: nothing pickled on the way in
        self._future = self._call.submit(self._pool, 0)

    def result(self) -> T:
        """Wait for the result; an exception raised by the function is raised here.

        Raises
        ------
        UserError
            When the process was killed from outside (most likely for lack of memory).
        """
        try:
            wait_settled(self._pool, [self._future])
            value = self._future.result()
        except BrokenProcessPool:
            self.cancel()
            raise UserError(
                f"the process computing {self.what} was killed from outside, most likely for "
                "lack of memory; set [engine] workers = 1 in the configuration (one model or "
                "analysis at a time), or give the run more memory"
            ) from None
        except BaseException:
            self.cancel()
            raise
        self._pool.shutdown(wait=True)
        self._call.release()
        return value

    def cancel(self) -> None:
        """Stop the process at once (the run is stopping)."""
        kill_workers(self._pool)
        self._call.release()
