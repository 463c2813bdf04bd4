"""Independent pieces of a run built side by side in processes forked from it, after the fits.

Once the models are fitted, the run makes the clinic's tables (SAP §4b: a handful of
independent questions) and the report's sections (each made from the published tables alone:
its sentences, tables and figures, whose drawing is most of the time), while the other cores
are idle. :func:`built_side_by_side` calls such builders in helper processes forked from this
one (one per core; they die with the run and leave Ctrl-C to it, as the model workers do) and
returns what each built, in order: a table or a section with its figures encoded is little to
send back. A forked helper has everything the builders read (the data, the tables, the
configuration) without copying or pickling it, and runs the same code on the same data, so the
results are those of building them in a single process. Where processes are not forked (macOS,
Windows), with one core, or with ``[engine] workers = 1`` (one process at a time, to save
memory), the builders are called here, one after another.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ALL_COMPLETED
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from pipeline.analyses.workers import (
    Handover,
    cores,
    forks,
    in_worker,
    kill_workers,
    wait_settled,
    worker_pool,
)
from pipeline.errors import UserError

__all__ = ["built_side_by_side"]


def built_side_by_side(
    builders: Sequence[Callable[[], Any]],
    workers: int | None = None,
    start: Sequence[int] | None = None,
) -> list:
    """Call every builder, side by side in forked helpers where possible; results in order.

    Parameters
    ----------
    builders : sequence of callable
        Functions of no argument (closures over what they read); each result must be picklable
        (tables, a report section: text, table cells, PNG bytes).
    workers : int, optional
        ``[engine] workers``: 1 calls the builders here, one after another; otherwise (0 or
        None: the default) up to one helper per core.
    start : sequence of int, optional
        Positions of the builders in the order the helpers take them up (default: as given);
        the longest first keeps the helpers busy to the end.

    Returns
    -------
    list
        ``[builder() for builder in builders]``.

    Raises
    ------
    UserError
        A helper was killed from outside (most likely for lack of memory).
    """
    helpers = min(len(builders), cores(), workers or len(builders))
    if helpers < 2 or not forks() or in_worker():
        return [build() for build in builders]  # (a builder calling this again runs in place)
    order = list(range(len(builders))) if start is None else list(start)
    if sorted(order) != list(range(len(builders))):
        raise ValueError(f"start {order} is not an order of the {len(builders)} builders")
    pool = worker_pool(helpers)
    calls = Handover([(builder, ()) for builder in builders])
    try:
        futures = {position: calls.submit(pool, position) for position in order}
        wait_settled(pool, futures.values(), ALL_COMPLETED)
        results = [futures[position].result() for position in range(len(builders))]
    except BrokenProcessPool:
        kill_workers(pool)
        raise UserError(
            "a process building the report was killed from outside, most likely for lack of "
            "memory; set [engine] workers = 1 in the configuration (one process at a time), "
            "or give the run more memory"
        ) from None
    except BaseException:
        kill_workers(pool)
        raise
    finally:
        calls.release()
    pool.shutdown(wait=True)
    return results
