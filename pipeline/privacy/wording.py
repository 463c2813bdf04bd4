"""What the report says about disclosure control, in plain words (one place for the wording)."""

from __future__ import annotations


def banner(audience: str, threshold: int) -> str | None:
    """Return the warning at the top of an internal report, or None for a publication.

    Parameters
    ----------
    audience : str
        ``"publication"`` or ``"internal"`` (``[privacy] audience``).
    threshold : int
        ``[privacy] small_cell_threshold``.
    """
    if audience != "internal":
        return None
    small = f" (including counts below {threshold})" if threshold > 1 else ""
    return (
        "FOR INTERNAL USE ONLY. Every count in this report is exact" + small + ", so it can "
        "identify patients: do not publish it or share it outside the study team. Run with "
        '[privacy] audience = "publication" for a report that can be shared.'
    )


def explanation(audience: str, threshold: int) -> str:
    """Return the one sentence that explains ``<k`` and ``[c]`` (empty when nothing is hidden)."""
    if audience == "internal" or threshold <= 1:
        return ""
    return (
        f"To protect patients, a count of 1 to {threshold - 1} patients with a characteristic, "
        f"outcome or event is shown as <{threshold}; [c] marks a number hidden so that such a "
        "count cannot be worked out from the other numbers (and a percentage, rate or estimate "
        "that would give it away). Totals of patients and rows of the data files are always "
        "shown."
    )


def table_note(audience: str, threshold: int) -> str:
    """Return the short reference under each table with counts."""
    if audience == "internal" or threshold <= 1:
        return ""
    return f"<{threshold} and [c]: hidden counts, see the note at the top of the report."


def methods_sentence(audience: str, threshold: int) -> str:
    """Return how counts were protected, for the Methods."""
    if audience == "internal" or threshold <= 1:
        return "Counts are exact (internal report, no suppression)."
    return (
        f"Counts of 1 to {threshold - 1} patients by a characteristic, outcome or event are "
        "suppressed, with complementary suppression checked by an exact integer audit across "
        "all tables and figures (README, Privacy)."
    )
