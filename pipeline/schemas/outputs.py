"""Contracts of the output tables: which columns each published table holds.

Some tables carry typed identity columns in memory that the published CSV files do not hold
(``kind`` and ``within`` of a contrast, ``stage`` and ``detail`` of a flow step): code matches
on them, readers of ``reports/tables/`` read the labels. :func:`for_publication` drops them
when a table is written.
"""

from __future__ import annotations

import pandas as pd

UNPUBLISHED = {"contrasts": ("kind", "within"), "flow": ("stage", "detail")}
"""Typed columns kept in memory only, by table."""


def for_publication(name: str, frame: pd.DataFrame) -> pd.DataFrame:
    """Return the table as written to ``reports/tables/<name>.csv`` (typed columns dropped).

    Parameters
    ----------
    name : str
        Table name (file stem).
    frame : pandas.DataFrame
        The table as the pipeline holds it.

    Returns
    -------
    pandas.DataFrame
        ``frame`` without its in-memory-only columns (:data:`UNPUBLISHED`).
    """
    return frame.drop(columns=list(UNPUBLISHED.get(name, ())), errors="ignore")
