"""One row per score: files whose every line holds one measure of one assessment.

Electronic records and questionnaire systems often export scores one per line::

    Patient;Visit;Date;Instrument;Score
    P001;Baseline;03.02.2025;NRS;7
    P001;Baseline;03.02.2025;Oswestry;42
    P001;Week 2;17.02.2025;NRS;5

``[sources.measures]`` names the column saying what each line measured (``column``), the one
holding the score (``value``), and which canonical score each measure fills (``names``: ``NRS =
"nrs"``, matched ignoring case and spaces); ``ignore`` lists measures the study does not read
(their lines are not used). The lines of one patient and visit are merged into one assessment
row, the way a visit sheet merges a patient's lines (:mod:`.merge`): its ``source_line`` is the
first line and ``source_detail`` lists them all. Two lines giving one assessment different values
of one column (two NRS scores, two dates) quarantine it (``conflicting_values``). A measure that
is neither named nor ignored stops the run with one sentence naming it and its first line: it
may be a misspelling of one that is named.

Such a file gives the assessments only: the patients (and any sessions) come from other sources.
Scores are normalised after merging (decimal mark, units, ODI points over the sections answered),
the other columns line by line, as every adapter does (:mod:`.mapping`).
"""

from __future__ import annotations

from functools import partial

import numpy as np
import pandas as pd

from pipeline.config.source_columns import ODI_ANSWERED, same_column
from pipeline.config.sources import Source
from pipeline.errors import InputFileError
from pipeline.ingest.adapters.mapping import (
    Adapted,
    Piece,
    canonical_frame,
    expand,
    file_label,
    find_column,
    normalise,
    per_distinct,
    problems_frame,
    read_source_file,
    resolve_columns,
    source_file,
    undated_visits,
    visits_by_date,
)
from pipeline.ingest.adapters.merge import conflict_problems, merge_lines
from pipeline.ingest.readers import LINE, STR, TextTable
from pipeline.schemas.columns import PATIENT_ID
from pipeline.schemas.raw import column_names


def read(source: Source) -> Adapted:
    """Read every measurements file of a source into an assessments piece.

    Parameters
    ----------
    source : Source
        A ``kind = "measurements"`` source.

    Returns
    -------
    Adapted
        Per file: one assessments piece (one row per patient and visit).

    Raises
    ------
    InputFileError
        A file is missing or unreadable, lacks a mapped or required column, or names a measure
        that ``[sources.measures]`` neither names nor ignores.
    """
    spec = source.measures
    assert spec is not None  # (load_config requires [sources.measures] of this kind)
    scores = list(dict.fromkeys(spec.names.values()))
    own = [c for c in source.extra.get("assessments", {}) if c not in column_names("assessments")]
    details = [
        c
        for c in (*column_names("assessments"), *own, ODI_ANSWERED)
        if c != PATIENT_ID and c not in scores
    ]
    by_date = source.visits == "by_date"  # (then the visits are numbered from the dates)
    wanted = [PATIENT_ID, *(c for c in details if not (by_date and c == "visit"))]
    required = [PATIENT_ID, "assessment_date" if by_date else "visit"]
    pieces: list[Piece] = []
    files = []
    for path in expand(source, "data"):
        text = read_source_file(source, path)
        label = file_label(source, path)
        columns = resolve_columns(source, text, label, wanted, required)
        measure, value = (
            text.frame[find_column(source, text, label, role, clinic, "measures")]
            for role, clinic in (("the measure", spec.column), ("the score", spec.value))
        )
        target = _targets(source, text, label, measure, value)
        used = target.notna().to_numpy()
        lines = normalise(canonical_frame(text, columns, label), source).loc[used]
        if by_date:
            lines["visit"] = visits_by_date(lines)
        codes, found = pd.factorize(target.loc[used])
        cells = value.loc[used].astype(STR)
        for score in scores:
            which = codes == (found.get_loc(score) if score in found else -2)
            lines[score] = cells.where(which)
        merged_columns = [c for c in (*details, *scores) if c in lines]
        key = _keys(lines)
        row_word = "rows" if text.delimiter is None else "lines"
        merged = merge_lines(lines, key, merged_columns, row_word)
        frame = merged.frame
        read_after = [c for c in dict.fromkeys((*scores, ODI_ANSWERED)) if c in frame]
        normalised = normalise(frame[read_after], source)
        for score in scores:
            frame[score] = normalised[score]
        problems = conflict_problems(merged, row_word, partial(_assessment, frame))
        problems += undated_visits(frame) if by_date else []
        pieces.append(
            Piece(
                "assessments",
                frame,
                merged.lineage,
                problems_frame(problems),
                source.date_format,
            )
        )
        files.append((source_file(source, text, label), ("assessments",)))
    return Adapted(tuple(pieces), tuple(files))


def _targets(
    source: Source, text: TextTable, label: str, measure: pd.Series, value: pd.Series
) -> pd.Series:
    """Return the score each line fills (missing: an ignored measure, or a blank line).

    Raises
    ------
    InputFileError
        A line names a measure that is neither named nor ignored, or holds a score and no
        measure.
    """
    spec = source.measures
    assert spec is not None
    names = {same_column(m): target for m, target in spec.names.items()}
    ignored = {same_column(m) for m in spec.ignore}
    text_of = measure.astype(STR)
    folded = per_distinct(lambda t: t.map(same_column, na_action="ignore"), text_of)
    target = per_distinct(lambda t: t.map(names), folded)
    unknown = folded.notna() & target.isna() & ~folded.isin(ignored)
    unknown |= folded.isna() & value.notna()
    if unknown.any():
        first = int(unknown.to_numpy().argmax())
        line = text.frame[LINE].iloc[first]
        shown = measure.iloc[first]
        if pd.isna(shown):
            raise InputFileError(
                f"{label}: line {line} holds a score but no measure in its column "
                f"'{spec.column}'; write the measure, or remove the line"
            )
        count = int((folded == folded.iloc[first]).sum())
        raise InputFileError(
            f"{label}: line {line} has the measure '{shown}'"
            + (f" (so do {count - 1} more lines)" if count > 1 else "")
            + f", which {source.key('measures.names')} does not name; name it (e.g. "
            f'"{shown}" = "nrs") or list it under ignore'
        )
    return target


def _assessment(frame: pd.DataFrame, row: int) -> str:
    """Name a merged row in a reason: ``visit 0 of patient 'P2'``."""
    return f"visit {frame['visit'].iloc[row]} of patient '{frame[PATIENT_ID].iloc[row]}'"


def _keys(lines: pd.DataFrame) -> np.ndarray:
    """Return a number for each line's assessment: its patient and visit (else its own)."""
    patient, _ = pd.factorize(lines[PATIENT_ID])
    visit, visits = pd.factorize(lines["visit"])
    key = patient.astype(np.int64) * (len(visits) + 1) + visit
    lacking = (patient < 0) | (visit < 0)
    key[lacking] = -1 - np.flatnonzero(lacking)  # (negative: no patient and visit is one)
    return key
