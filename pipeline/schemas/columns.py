"""Names shared by every stage: the patient key and the outcome instruments, declared once.

Every module that needs the patient identifier column or the list of outcomes reads it here
(the configuration, the raw-table contract, the derivation, the models, the descriptive tables
and the report), so an instrument is added or renamed in one place.
"""

from __future__ import annotations

from dataclasses import dataclass

PATIENT_ID = "patient_id"
"""Patient identifier column, in every raw table and in the analysis data set."""


@dataclass(frozen=True)
class Instrument:
    """One outcome instrument (SAP §2) and how it is named.

    Attributes
    ----------
    name : str
        Identifier in the configuration and in the ``outcome`` column of every table.
    column : str
        Score column in the raw assessments and the analysis data set.
    abbreviation : str
        Short name (``VAS``).
    short : str
        Short name with its unit, for table cells (``VAS (mm)``).
    title : str
        Name with its range or unit, for figure panels (``VAS pain (mm)``).
    words : str
        Name in a sentence (``VAS pain``).
    unit : str
        Unit of a difference (``mm``, ``points``).
    """

    name: str
    column: str
    abbreviation: str
    short: str
    title: str
    words: str
    unit: str


INSTRUMENTS: dict[str, Instrument] = {
    i.name: i
    for i in (
        Instrument("nrs", "nrs", "NRS", "NRS", "NRS pain (0–10)", "NRS pain", "points"),
        Instrument("vas", "vas_mm", "VAS", "VAS (mm)", "VAS pain (mm)", "VAS pain", "mm"),
        Instrument("odi", "odi", "ODI", "ODI (%)", "ODI (%)", "ODI disability", "points"),
    )
}
"""The outcome instruments, in reporting order."""

INSTRUMENT_COLUMNS = {name: i.column for name, i in INSTRUMENTS.items()}
"""Instrument -> score column (``vas`` -> ``vas_mm``)."""


def outcome_column(name: str) -> str:
    """Return the column of the outcome ``name`` (``vas`` -> ``vas_mm``, ``rmdq`` -> ``rmdq``).

    The built-in instruments keep their canonical column; a study's declared outcome
    (``[outcomes.NAME]``) is its name.
    """
    return INSTRUMENT_COLUMNS.get(name, name)
