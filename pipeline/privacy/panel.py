"""The individual-trajectory panel under disclosure control.

The panel draws a sample of up to ``per_group`` patients per group. A group with fewer patients
is drawn completely, and then the panel shows how many patients it has and how many were seen at
each visit: in a publication those counts must not be hidden in the tables, so such a group is
left out of the panel when any of them is.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping

import pandas as pd

from pipeline.privacy.audit import is_marker


def complete_groups(sample: pd.DataFrame, per_group: int) -> dict[str, int]:
    """Find the groups drawn completely (fewer than ``per_group`` patients) and their sizes."""
    if sample.empty:
        return {}
    sizes = sample.groupby("group")["patient"].nunique()
    return {str(g): int(n) for g, n in sizes.items() if n < per_group}


def _hidden(published: Mapping[str, pd.DataFrame], factor: str, level: str) -> bool:
    """Whether a count of the group is hidden in Table 1 or the means by visit."""
    t1 = published.get("table_one")
    if t1 is not None:
        rows = t1[(t1["factor"] == factor) & (t1["level"].astype(str) == level)]
        if rows["n"].map(is_marker).any():
            return True
    means = published.get("mean_by_visit")
    if means is not None and "factor" in means:
        rows = means[(means["factor"] == factor) & (means["group"].astype(str) == level)]
        if rows["n"].map(is_marker).any():
            return True
    return False


def publishable_sample(
    sample: pd.DataFrame,
    published: Mapping[str, pd.DataFrame],
    factor: str,
    per_group: int,
    audience: str,
) -> tuple[pd.DataFrame, list[str]]:
    """Drop the completely drawn groups whose counts the tables hide.

    Parameters
    ----------
    sample : pandas.DataFrame
        :func:`pipeline.describe.summaries.trajectory_sample` (``patient, group, ...``).
    published : mapping of str to pandas.DataFrame
        The published tables.
    factor : str
        The grouping drawn (``depth``).
    per_group : int
        Patients drawn per group.
    audience : str
        ``"internal"`` keeps every group.

    Returns
    -------
    sample : pandas.DataFrame
        The rows that may be drawn.
    dropped : list of str
        The groups left out.
    """
    if audience == "internal":
        return sample, []
    dropped = [g for g in complete_groups(sample, per_group) if _hidden(published, factor, g)]
    return sample[~sample["group"].astype(str).isin(dropped)], dropped


def panel_counts(sample: pd.DataFrame, factor: str, per_group: int) -> list[tuple[Hashable, float]]:
    """List the counts the panel shows exactly: the size of each complete group.

    Keys are cells of :func:`pipeline.privacy.cells.link_tables`, for
    :func:`pipeline.privacy.audit.audit_tables`.
    """
    return [(("group", factor, g), n) for g, n in complete_groups(sample, per_group).items()]


def dropped_note(dropped: list[str]) -> str:
    """Return the caption's sentence about groups left out (empty when none is)."""
    if not dropped:
        return ""
    return (
        f" Not drawn: {', '.join(dropped)} (so few patients that the panel would show counts "
        "the tables hide)."
    )
