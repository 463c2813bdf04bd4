"""Files of one score per line: the column naming the measure, the one holding the score.

A column whose cells are mostly names of scores (``NRS``, ``Oswestry (%)``, ``ODI item 3``,
``RMDQ``) names each line's measure; the score is the one other column of numbers no name
claims (or one named like ``Score``, ``Wert``, ``valeur``). The rest of the file is mapped as an
assessments table (patient, visit, date, ODI version, ...); the scores come from the measures.
"""

from __future__ import annotations

from dataclasses import replace

from pipeline.ingest.draft import columns as cols
from pipeline.ingest.draft.flat import VISITS_BY_DATE, flat_columns
from pipeline.ingest.draft.guess import (
    HIGH,
    MEDIUM,
    assign,
    file_settings,
    unit,
    unmapped_note,
    values_settings,
)
from pipeline.ingest.draft.model import Export, Guess, Layout, MeasuresDraft, SourceDraft
from pipeline.ingest.draft.words import MEASURE_WORDS, SCORE_WORDS, base_name


def find_measures(export: Export) -> tuple[str, str, dict[str, str], list[str]] | None:
    """Find the measure and score columns of a file of one score per line (``None``: not one).

    Returns
    -------
    tuple or None
        The measure column, the score column, ``{measure as written: score}`` and the measures
        seen that name no score.
    """
    found = []
    for column in export.columns:
        values = cols.values_of(export.frame[column])
        distinct = list(dict.fromkeys(values))
        if values.empty or len(distinct) > 60:
            continue
        names = {v: s for v in distinct if (s := cols.score_of(v)) is not None}
        share = float(values.isin(list(names)).mean()) if names else 0.0
        if share >= 0.5:
            found.append((share, column, names, [v for v in distinct if v not in names]))
    if not found:
        return None
    _, column, names, unknown = max(found, key=lambda f: f[0])
    _, unmatched = assign(export, [c for c in export.columns if c != column])
    numeric = [
        c
        for c in unmatched
        if not (values := cols.values_of(export.frame[c])).empty
        and float(cols.as_numbers(values).notna().mean()) >= 0.9
    ]
    named = [c for c in numeric if base_name(c) in SCORE_WORDS]
    value = named[0] if named else numeric[0] if len(numeric) == 1 else None
    if value is None:
        return None
    return column, value, names, unknown


def measurements_source(
    export: Export, found: tuple[str, str, dict[str, str], list[str]]
) -> tuple[SourceDraft, list[Guess]]:
    """Draft a measurements source; return it with the study's own outcomes it fills (rmdq)."""
    column, value, names, unknown = found
    rest = tuple(c for c in export.columns if c not in (column, value))
    others = replace(export, frame=export.frame[list(rest)], columns=rest)
    guesses, left = flat_columns(others, ("assessments",))
    guesses = [g for g in guesses if g.key not in names.values()]
    shown = ", ".join(list(names)[:4])
    measure_why = (
        f"'{column}' is a name of the measure; its cells name scores ({shown})"
        if base_name(column) in MEASURE_WORDS
        else f"its cells name scores ({shown})"
    )
    share = float(cols.as_numbers(cols.values_of(export.frame[value])).notna().mean())
    block = MeasuresDraft(
        column=Guess("column", column, HIGH, measure_why),
        value=Guess(
            "value",
            value,
            HIGH if base_name(value) in SCORE_WORDS else MEDIUM,
            f"{share:.0%} of the cells are numbers"
            + ("" if base_name(value) in SCORE_WORDS else ", the one such column no name claims"),
        ),
        names=[
            Guess(measure, target, HIGH, f"'{measure}' is a name of {target}")
            for measure, target in names.items()
        ],
        ignore=unknown,
    )
    # (the score column is read as a number column, for its decimal mark)
    settings = file_settings(export, {**{g.key: str(g.value) for g in guesses}, "weeks": value})
    source = SourceDraft(
        kind=Guess("kind", Layout.MEASUREMENTS.value, HIGH, "one score per line"),
        files={"data": [export.label]},
        settings=settings,
        columns=guesses,
        measures=block,
    )
    source.unmapped = [(export.label, f"{c} ({unmapped_note(export, c)})") for c in left]
    keys = {g.key for g in guesses}
    if "visit" not in keys and "assessment_date" in keys:
        source.settings.append(VISITS_BY_DATE)
    values_settings(source, [export], [guesses])
    cells = export.frame[column].astype("string").str.strip()
    for measure, target in names.items():
        found_unit = unit(target, measure, export.frame[value][cells == measure])
        if found_unit and found_unit.key not in {u.key for u in source.units}:
            source.units.append(found_unit)
    own = [
        Guess(target, target, HIGH, f"the measure '{measure}' names the {target} scale")
        for measure, target in names.items()
        if target in cols.OWN_OUTCOMES
    ]
    return source, list({g.key: g for g in own}.values())
