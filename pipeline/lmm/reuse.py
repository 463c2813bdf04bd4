"""Designs and data summaries shared between fits of the same rows, within a declared scope.

An analysis fits one model several times on the same rows: by REML for its estimates, then by
ML for its likelihood-ratio tests (the full model again, then each reduced model). The full
model's ML refit needs exactly the design (:func:`pipeline.lmm.data.prepare_data`: formula
evaluation, checks, rank test) and the per-group cross-products
(:class:`pipeline.lmm.deviance.GroupedCrossproducts`) the REML fit built: neither depends on
REML or ML. The same holds for an MMRM's prepared data (:func:`pipeline.lmm.patterns.prepare_mmrm`:
design, visit patterns and their cross-products) and its visit factorisation. A reduced model
of a test needs no new pass over the rows either when its terms are some of the full model's:
its design is the full design's columns (:func:`pipeline.lmm.data.design_within`) and its
cross-products a slice of the full model's (``GroupedCrossproducts.columns``; :func:`built`
finds them). Inside :func:`sharing_designs` they are built once and reused; outside it nothing
is kept and every fit builds its own, as before.

The reuse is keyed by the identity of the data frame passed to
:func:`pipeline.lmm.fit.fit_lmm` and by the model's specification (response, fixed effects,
group, random slope, site), so the caller vouches that the frame is not changed in place
within the scope (an analysis's rows are not). The scope holds its frames alive, so an
identity cannot be reused by another frame while it lasts; it is meant to span one analysis.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Hashable, Iterator
from contextvars import ContextVar
from typing import Any, TypeVar

__all__ = ["built", "shared", "sharing_designs"]

T = TypeVar("T")

_SHARED: ContextVar[dict[Hashable, tuple[Any, Any]] | None] = ContextVar(
    "pipeline_lmm_shared_designs", default=None
)


@contextlib.contextmanager
def sharing_designs() -> Iterator[None]:
    """Share designs and cross-products between the fits made inside this block.

    Yields
    ------
    None
        Within the block, :func:`shared` builds each keyed object once.
    """
    token = _SHARED.set({})
    try:
        yield
    finally:
        _SHARED.reset(token)


def shared(owner: object, key: Hashable, build: Callable[[], T]) -> T:
    """Return ``build()``, built once per ``(id(owner), key)`` inside :func:`sharing_designs`.

    Parameters
    ----------
    owner : object
        The object the result is derived from (a data frame, a prepared design); it is kept
        alive by the scope so that its identity stays its own.
    key : hashable
        What else the result depends on.
    build : callable
        Builds the result; outside a scope it is called every time.

    Returns
    -------
    object
        The result of ``build()``, the same object for the same owner and key within a scope.
    """
    store = _SHARED.get()
    if store is None:
        return build()
    full = (id(owner), key)
    if full in store and store[full][0] is owner:
        return store[full][1]
    value = build()
    store[full] = (owner, value)
    return value


def built(owner: object) -> list[tuple[Hashable, Any]]:
    """``(key, value)`` of everything built from ``owner`` in this scope so far (none outside).

    Parameters
    ----------
    owner : object
        The object the results were derived from.

    Returns
    -------
    list of (hashable, object)
        In the order they were built.
    """
    store = _SHARED.get() or {}
    return [(key, value) for (_, key), (kept, value) in store.items() if kept is owner]
