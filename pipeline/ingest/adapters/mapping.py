"""What every source adapter shares: finding the clinic's columns and normalising their text.

A source's ``[sources.columns]`` maps canonical columns to the clinic's column names; a canonical
column not mapped is taken from a clinic column of the same name when there is one. Names match
exactly, or else ignoring case and repeated spaces when that singles out one column.

Normalising keeps cells as text but writes them the canonical way, so that validation sees one
form whatever the source (each step documented in ``docs/ingestion.md``):

* code lists (``[sources.codes.<column>]``), matched ignoring case and repeated spaces; coded
  columns (depth, sex, ...) are then lower-cased with single spaces;
* decimal commas (``decimal = ","``) in numeric columns;
* units (``[sources.units]``): VAS in cm to mm (x 10), ODI raw points 0-50 to per cent (x 2);
* dates in the configured format, ISO dates (with or without a time of day) and Excel serial
  day numbers (five digits, days since 1899-12-30) to ``YYYY-MM-DD``;
* patient identifiers (``patient_id = "compact"``): upper case without spaces, ``-``, ``_``, ``.``
  or ``/``, so ``p-001`` and ``P001`` are one patient.

A cell that cannot be normalised is left as written, so that validation quarantines it with the
reason. Everything here is a pure function of frames, except :func:`read_source_file` and
:func:`expand`, which touch the file system.
"""

from __future__ import annotations

import glob
import hashlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.config.source_columns import ODI_ANSWERED
from pipeline.config.sources import Source, strptime_pattern
from pipeline.config.vocabulary import Vocabulary
from pipeline.errors import InputFileError
from pipeline.ingest.raw_tables import SOURCE_DETAIL, SOURCE_FILE, SOURCE_LINE, SourceFile
from pipeline.ingest.readers import (
    LINE,
    STR,
    FileDigest,
    Layout,
    T,
    TextTable,
    byte_set,
    cell_bytes,
    holds_any,
    may_contain,
    not_a_file,
    read_table,
)
from pipeline.schemas.columns import PATIENT_ID
from pipeline.schemas.raw import NO, TABLES, YES, coded_columns, column_kinds

PROVENANCE = (SOURCE_FILE, SOURCE_LINE, SOURCE_DETAIL)
PROBLEM_COLUMNS = ("row", "column", "check", "value", "reason")
UNIT_FACTORS = {
    ("vas_mm", "cm"): 10.0,
    ("odi", "points"): 2.0,
    # symptom duration to weeks (a month is 365.25 / 12 days)
    ("symptom_weeks", "days"): 1 / 7,
    ("symptom_weeks", "months"): 365.25 / 12 / 7,
    ("symptom_weeks", "years"): 365.25 / 7,
}
EXCEL_EPOCH = np.datetime64("1899-12-30", "D")
_ISO = r"\d{4}-\d{2}-\d{2}(?:[ T]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?"
_SERIAL = r"\d{5}(?:\.\d+)?"
_ID_SEPARATORS = r"[\s\-_./]+"
# Bytes of which an identifier holds none when the pattern above finds nothing to remove.
_ID_SEPARATOR_BYTES = (b" ", b"\t", b"\n", b"\x0c", b"\r", b"\x0b", b"-", b"_", b".", b"/")
# A session or visit number written after a word meaning "session" or "visit" (not "week"):
# "Termin 3", "visit 3", "V3", "Besuch Nr. 3", "séance 3", "sesión 3", "seduta 3", "bezoek 3".
_VISIT_WORDS = (
    "termin|visit|visite|visita|session|sitzung|behandlung|besuch|konsultation|seance|séance"
    "|sesion|sesión|seduta|bezoek|behandeling|consult|v|s|t"
)
_NUMBERED = rf"(?i)^\s*(?:{_VISIT_WORDS})\.?\s*(?:(?:nr|no|n°|nº)\.?\s*)?(\d+)\s*$"
NUMBERED_COLUMNS = ("session_number", "visit")
_WHITESPACE = b" \t\n\r\x0b\x0c"
# Bytes without which trimming, lower-casing and reducing space runs change no cell (ASCII
# upper case, whitespace, and every byte of a non-ASCII character), and likewise for putting
# identifiers in one form (ASCII lower case, non-ASCII, whitespace and the separators).
_NOT_FOLDED = byte_set(range(ord("A"), ord("Z") + 1), range(128, 256), _WHITESPACE)
_NOT_COMPACT = byte_set(range(ord("a"), ord("z") + 1), range(128, 256), _WHITESPACE, b"-_./")
# Yes/no cells validation reads without a vocabulary (as in pipeline.schemas.raw YES and NO).
_PLAIN_YES_NO = pa.array(
    [w for word in (*YES, *NO) for w in (word, word.upper(), word.capitalize())],
    pa.large_string(),
)


@dataclass(frozen=True)
class Piece:
    """Rows of one canonical table made from one file.

    Attributes
    ----------
    table : str
        Canonical table name.
    frame : pandas.DataFrame
        ``source_file, source_line, source_detail`` and canonical columns as text.
    lineage : pandas.DataFrame or None
        ``row`` (position in ``frame``), ``source_file``, ``source_line`` for rows made from
        several lines; ``None`` when each row comes from its own line.
    problems : pandas.DataFrame or None
        ``row, column, check, value, reason``: row problems found while mapping.
    date_format : str
        How the source writes dates.
    events : pandas.DataFrame or None
        Sessions only, from a source with ``[sources.N.adverse_events]``: ``row`` (position in
        ``frame``), ``ae_type``, ``ae_severity``, one row per adverse event, and a row with
        ``ae_type`` missing for a session that recorded its events and had none
        (:mod:`pipeline.ingest.adapters.events`).
    text_of : callable or None
        For a piece read straight into types (:mod:`pipeline.ingest.adapters.typed_canonical`),
        whose ``frame`` then holds the canonical columns in the schema's types: given positions
        in ``frame``, the frame the text route makes of those rows (text, normalised). ``None``
        for a piece of text.
    """

    table: str
    frame: pd.DataFrame
    lineage: pd.DataFrame | None = None
    problems: pd.DataFrame | None = None
    date_format: str = "YYYY-MM-DD"
    events: pd.DataFrame | None = None
    text_of: Callable[[np.ndarray], pd.DataFrame] | None = None

    def as_text(self) -> Piece:
        """Return the piece as the text route reads it (itself when it is text already)."""
        if self.text_of is None:
            return self
        return replace(self, frame=self.text_of(np.arange(len(self.frame))), text_of=None)


@dataclass(frozen=True)
class Adapted:
    """What an adapter returns: its pieces and, per file read, the tables it feeds."""

    pieces: tuple[Piece, ...]
    files: tuple[tuple[SourceFile, tuple[str, ...]], ...]


def all_kinds() -> dict[str, str]:
    """Return ``{column: kind}`` over the three canonical tables (names are unique but one)."""
    return {c: k for t in TABLES for c, k in column_kinds(t).items()}


def all_codes() -> dict[str, tuple[str, ...]]:
    """Return ``{column: allowed values}`` of every coded column of the three tables."""
    return {c: v for t in TABLES for c, v in coded_columns(t).items()}


# ------------------------------------------------------------------------------------------
# files
# ------------------------------------------------------------------------------------------
def expand(source: Source, role: str) -> list[Path]:
    """Return the files of ``role`` in the order written, each glob expanded in sorted order.

    Raises
    ------
    InputFileError
        A glob matches no file.
    """
    paths: list[Path] = []
    for pattern in source.files[role]:
        if any(ch in pattern for ch in "*?["):
            matches = sorted(glob.glob(pattern, recursive=True))
            if not matches:
                key = source.key(role if source.kind == "canonical" else "files")
                raise InputFileError(f"{source.config}: {key} '{pattern}' matches no file")
            paths += [Path(m) for m in matches]
        else:
            paths.append(Path(pattern))
    return paths


def file_label(source: Source, path: Path) -> str:
    """Name a file as summaries show it: relative to the configuration's folder when inside.

    A workbook's sheet named by the source is named too (``visits.xlsx (sheet Termine)``):
    two sources may read two sheets of one workbook.
    """
    try:
        label = path.resolve().relative_to(source.root.resolve()).as_posix()
    except ValueError:
        label = str(path)
    return f"{label} (sheet {source.sheet})" if source.sheet else label


def read_source_file(
    source: Source,
    path: Path,
    typed: Callable[[Layout, FileDigest], T | None] | None = None,
) -> TextTable | T:
    """Read one file of ``source`` with its delimiter, encoding, header row and sheet.

    ``typed``, when given, is tried first on a delimited file (see
    :func:`pipeline.ingest.readers.read_table`).
    """
    problem = not_a_file(path)
    if problem:
        key = source.key("files" if source.kind != "canonical" else "")
        raise InputFileError(f"{path}: {problem} (named in {source.config}: {key})")
    return read_table(
        path,
        delimiter=source.delimiter,
        encoding=source.encoding,
        header_row=source.header_row,
        footer_rows=source.footer_rows,
        sheet=source.sheet,
        hint=f"; set header_row in {source.key()} to the line that holds them",
        missing=source.vocabulary.missing_spellings(),
        typed=typed,
    )


def source_file(source: Source, text: TextTable, label: str) -> SourceFile:
    """Describe a file read for the per-file summary."""
    return SourceFile(
        label=label,
        path=text.path,
        sha256=text.sha256,
        kind=source.kind,
        source=source.number,
        rows=text.rows,
        blank_lines=text.blank_lines,
        encoding=text.encoding,
    )


def combined_digest(files: Iterable[SourceFile]) -> str:
    """SHA-256 naming a set of files: of their sorted ``label:sha256`` lines."""
    lines = sorted(f"{f.label}:{f.sha256}" for f in files)
    return hashlib.sha256("\n".join(lines).encode("utf-8")).hexdigest()


# ------------------------------------------------------------------------------------------
# columns
# ------------------------------------------------------------------------------------------
def _fold(name: str) -> str:
    return " ".join(name.split()).casefold()


def _positions(text: TextTable | Layout, name: str) -> list[int]:
    exact = [k for k, h in enumerate(text.header) if h == name.strip()]
    if exact:
        return exact
    return [k for k, h in enumerate(text.header) if h and _fold(h) == _fold(name)]


def _header_list(text: TextTable | Layout, limit: int = 40) -> str:
    names = [h for h in text.header if h]
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "")


def find_column(
    source: Source, text: TextTable | Layout, label: str, canonical: str, clinic: str, key: str
) -> str:
    """Return the frame column of the clinic column ``clinic`` mapped to ``canonical``.

    Raises
    ------
    InputFileError
        The file has no such column, or has it twice.
    """
    positions = _positions(text, clinic)
    if not positions:
        raise InputFileError(
            f"{source.config}: {source.key(key)} maps {canonical} to '{clinic}', but {label} "
            f"has no such column (columns: {_header_list(text)})"
        )
    _single(text, label, positions, source.key(key))
    return text.columns[positions[0]]


def _single(text: TextTable | Layout, label: str, positions: list[int], key: str) -> None:
    if len(positions) > 1:
        raise InputFileError(
            f"{label}: column '{text.header[positions[0]]}' appears twice in the header "
            f"(columns {positions[0] + 1} and {positions[1] + 1}) and {key} uses it; rename "
            f"or remove one of them"
        )


def resolve_columns(
    source: Source,
    text: TextTable | Layout,
    label: str,
    wanted: Iterable[str],
    required: Iterable[str] = (),
    explicit: Mapping[str, str] | None = None,
    key: str = "columns",
) -> dict[str, str]:
    """Find the clinic column of each wanted canonical column.

    Parameters
    ----------
    source : Source
        The source (for messages and its ``columns`` mapping).
    text : TextTable or Layout
        The file as read, or split at its header (only the header is looked at).
    label : str
        The file as named in messages.
    wanted : iterable of str
        Canonical columns to look for, in order.
    required : iterable of str
        Canonical columns that must be found.
    explicit : mapping of str to str, optional
        Canonical to clinic column (default: ``source.columns``).
    key : str
        Configuration key of ``explicit``, for messages.

    Returns
    -------
    dict of str to str
        Canonical column to the frame column holding it.

    Raises
    ------
    InputFileError
        A mapped column is absent or written twice, or a required column is not found.
    """
    explicit = source.columns if explicit is None else explicit
    wanted = list(wanted)
    found: dict[str, str] = {}
    for canonical in wanted:
        if canonical in explicit:
            found[canonical] = find_column(source, text, label, canonical, explicit[canonical], key)
    used = set(found.values())
    for canonical in wanted:
        if canonical in found:
            continue
        positions = [p for p in _positions(text, canonical) if text.columns[p] not in used]
        if positions:
            _single(text, label, positions, f"{source.key()} (column {canonical})")
            found[canonical] = text.columns[positions[0]]
    for canonical in required:
        if canonical not in found:
            raise InputFileError(
                f"{source.config}: {source.key(key)} does not map {canonical}, and {label} has "
                f"no column named '{canonical}' (columns: {_header_list(text)})"
            )
    return {c: found[c] for c in wanted if c in found}


def constant(value: str | None, index: pd.Index) -> pd.Series:
    """Return a text column of ``value`` (or missing) on every row, built without a loop."""
    cells = pa.repeat(pa.scalar(value, pa.large_string()), len(index))
    return pd.Series(pd.arrays.ArrowStringArray(pa.chunked_array([cells])), index=index, dtype=STR)


def canonical_frame(text: TextTable, columns: Mapping[str, str], label: str) -> pd.DataFrame:
    """Return provenance columns plus the mapped columns renamed to their canonical names."""
    cells = {c: text.frame[column].astype(STR).array for c, column in columns.items()}
    return provenance_frame(label, text.frame[LINE].to_numpy(), cells, text.frame.index)


def provenance_frame(
    label: str, lines: np.ndarray, cells: Mapping[str, object], index: pd.Index
) -> pd.DataFrame:
    """Return ``source_file, source_line, source_detail`` and ``cells`` (canonical name -> array).

    The arrays are taken as they are (no copy); text or typed, as the caller read them.
    """
    return pd.DataFrame(
        {
            SOURCE_FILE: constant(label, index).array,
            SOURCE_LINE: lines,
            SOURCE_DETAIL: constant(None, index).array,
            **cells,
        },
        index=index,
        copy=False,
    )


def site_for(source: Source, path: Path, label: str) -> str | None:
    """Return the clinic of a file's patients, from ``site`` or ``[sources.sites]``."""
    if source.site:
        return source.site
    for key in (label, path.name, path.stem):
        if key in source.sites:
            return source.sites[key]
    if source.sites:
        raise InputFileError(
            f"{source.config}: {source.key('sites')} names no site for {label} "
            f"(it names: {', '.join(source.sites)})"
        )
    return None


# ------------------------------------------------------------------------------------------
# normalising text
# ------------------------------------------------------------------------------------------
def per_distinct(convert: Callable[[pd.Series], pd.Series], text: pd.Series) -> pd.Series:
    """Apply a cell-by-cell conversion of a text column once per distinct value.

    A clinic's column holds far fewer distinct values (codes, dates, scores) than rows, and
    converting a value in Python costs more than finding the distinct ones. ``convert`` must
    treat each cell on its own and leave missing cells missing; the result is text.
    """
    positions, distinct = pd.factorize(text)
    converted = convert(pd.Series(distinct, dtype=STR)).astype(STR).array
    return pd.Series(converted.take(positions, allow_fill=True), index=text.index)


def apply_codes(text: pd.Series, codes: Mapping[str, str]) -> pd.Series:
    """Replace coded values by their canonical values (matched ignoring case and spaces).

    Values not in ``codes`` are kept as written; a code mapped to ``""`` becomes missing.
    """
    return per_distinct(lambda cells: _coded(cells, codes), text)


def folded_cells(text: pd.Series) -> pd.Series:
    """Trim, single-space and case-fold each cell of a text column, as codes are matched."""
    return text.str.strip().str.replace(r"\s+", " ", regex=True).str.casefold()


def _coded(text: pd.Series, codes: Mapping[str, str]) -> pd.Series:
    folded = {_fold(k): v for k, v in codes.items()}
    keys = folded_cells(text)
    mapped = keys.map(folded)
    out = text.where(mapped.isna(), mapped).astype(STR)
    return out.mask(out == "")


def _arrow_text(text: pd.Series) -> pa.ChunkedArray:
    array = pa.array(text.astype(STR))
    return array if isinstance(array, pa.ChunkedArray) else pa.chunked_array([array])


def _from_arrow(array: pa.ChunkedArray, like: pd.Series) -> pd.Series:
    return pd.Series(array.to_pandas(types_mapper=lambda _: STR).array, index=like.index)


# What the pattern \s+ of RE2 (pyarrow's regular expressions) can match more than one space
# of: \s is [\t\n\f\r ]; a vertical tab is looked for as well, to err on the side of the regex.
_SPACE_RUNS = (b"  ", b"\t", b"\n", b"\x0c", b"\r", b"\x0b")


def fold_code_case(text: pd.Series) -> pd.Series:
    """Lower-case a coded column and reduce runs of spaces to one."""
    cells = _arrow_text(text)
    if not holds_any(cells, _NOT_FOLDED):
        return text.astype(STR)  # lower case throughout, no space: nothing to change
    cells = pc.utf8_trim_whitespace(cells)
    if may_contain(cells, _SPACE_RUNS):
        cells = pc.replace_substring_regex(cells, r"\s+", " ")
    return _from_arrow(pc.utf8_lower(cells), text)


def scale(text: pd.Series, factor: float) -> pd.Series:
    """Multiply the numbers of a text column by ``factor``; other cells stay as written."""
    return per_distinct(lambda cells: _scaled(cells, factor), text)


def _scaled(text: pd.Series, factor: float) -> pd.Series:
    numbers = pd.to_numeric(text, errors="coerce")
    ok = numbers.notna() & np.isfinite(numbers)
    if not ok.any():
        return text
    scaled = (numbers[ok] * factor).round(9)
    out = text.copy()
    out[ok] = [format(x, ".12g") for x in scaled]
    return out


def iso_dates(text: pd.Series, date_format: str) -> pd.Series:
    """Write the dates of a text column as ``YYYY-MM-DD``; other cells stay as written.

    Accepted: the configured format, ISO dates (a time of day is dropped) and Excel serial day
    numbers of five digits (the 1900 date system, days since 1899-12-30).
    """
    return per_distinct(lambda cells: _iso_written(cells, date_format), text)


def _iso_written(text: pd.Series, date_format: str) -> pd.Series:
    if text.isna().all():
        return text
    pattern = strptime_pattern(date_format)
    if iso_kept(date_format):
        if _written_iso(_arrow_text(text)):
            return text  # (a cell such as 2025-13-45 is left as written either way)
        try:
            pc.cast(_arrow_text(text), pa.date32())
        except pa.ArrowInvalid:
            pass
        else:
            return text
    parsed = pd.to_datetime(text, format=pattern, errors="coerce")
    iso = text.str.fullmatch(_ISO).fillna(False).astype(bool)
    if iso.any():
        parsed = parsed.where(
            parsed.notna(),
            pd.to_datetime(text.where(iso).str.slice(0, 10), format="%Y-%m-%d", errors="coerce"),
        )
    serial = text.str.fullmatch(_SERIAL).fillna(False).astype(bool) & parsed.isna()
    if serial.any():
        days = np.floor(pd.to_numeric(text[serial])).astype("int64").to_numpy()
        parsed[serial] = pd.to_datetime(EXCEL_EPOCH + days.astype("timedelta64[D]"))
    written = parsed.dt.strftime("%Y-%m-%d").astype(STR)
    return written.where(parsed.notna(), text).astype(STR)


def iso_kept(date_format: str) -> bool:
    """Whether :func:`iso_dates` leaves a column of ISO dates (``YYYY-MM-DD``) as written.

    It does, the common case, unless the configured format also starts with the year and a dash
    and so could read them otherwise (``YYYY-DD-MM``).
    """
    pattern = strptime_pattern(date_format)
    return pattern == "%Y-%m-%d" or not pattern.startswith("%Y-")


def _written_iso(cells: pa.ChunkedArray) -> bool:
    """Whether every cell is missing, empty or written ``dddd-dd-dd`` (a scan of the bytes).

    Fast reductions instead of a look at every cell: every cell spans 0 or 10 bytes when none
    is longer than 10 and the bytes add up to 10 per non-empty cell; then the bytes are digits
    and dashes when they lie between ``-`` and ``9`` and the only ones below ``0`` are the
    dashes at the 5th and 8th byte of every cell.
    """
    spans = cell_bytes(cells)
    if spans is None:
        return False
    for region, lengths in spans:
        if not region.size:
            continue
        cells_here = np.count_nonzero(lengths)
        if lengths.max() > 10 or region.size != 10 * cells_here:
            return False
        if region.min() < ord("-") or region.max() > ord("9"):
            return False
        dashes = (region[4::10] == ord("-")).all() and (region[7::10] == ord("-")).all()
        if not dashes or np.count_nonzero(region < ord("0")) != 2 * cells_here:
            return False
    return True


def compact_ids(text: pd.Series) -> pd.Series:
    """Patient identifiers in one form: upper case, without spaces, ``-``, ``_``, ``.``, ``/``."""
    cells = _arrow_text(text)
    if not holds_any(cells, _NOT_COMPACT):
        empty = pc.any(pc.equal(pc.binary_length(cells), 0)).as_py()
        return text.mask(text == "").astype(STR) if empty else text.astype(STR)
    return per_distinct(_compacted, text)  # (a patient's id is written on each of its rows)


def _compacted(text: pd.Series) -> pd.Series:
    """Upper-case ``text`` and remove the separators from it (an empty result is missing)."""
    cells = pc.utf8_upper(_arrow_text(text))
    if may_contain(cells, _ID_SEPARATOR_BYTES):
        cells = pc.replace_substring_regex(cells, _ID_SEPARATORS, "")
    out = _from_arrow(cells, text)
    return out.mask(out == "")


def numbered(text: pd.Series) -> pd.Series:
    """Read a number written after a visit word (``Termin 3``, ``visit 3``, ``V3``) as the number.

    Used for session and visit numbers only; other cells stay as written.
    """
    try:
        pc.cast(_arrow_text(text), pa.int64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    else:
        return text  # whole numbers throughout (the common case): one fast pass, no regex
    found = text.str.extract(_NUMBERED, expand=False)
    return found.where(found.notna(), text).astype(STR)


def shifted(text: pd.Series, step: int) -> pd.Series:
    """Add ``step`` to the whole numbers of a text column; other cells stay as written."""
    numbers = pd.to_numeric(text, errors="coerce")
    whole = numbers.notna() & (numbers == np.floor(numbers))
    out = text.copy()
    out[whole] = [str(int(x) + step) for x in numbers[whole]]
    return out.astype(STR)


def yes_no(text: pd.Series, vocabulary: Vocabulary) -> pd.Series:
    """Write the yes and no words of the source's languages as ``yes`` and ``no``.

    Other cells stay as written (so that validation names what is neither).
    """
    if text.isna().all():
        return text
    cells = _arrow_text(text)
    plain = pc.or_(pc.is_in(cells, value_set=_PLAIN_YES_NO), pc.is_null(cells))
    if pc.all(plain).as_py():
        return text  # written yes/no (or true/false, 1/0) throughout: validation reads them
    folded = fold_code_case(text)
    cells = _arrow_text(folded)
    yes = pc.is_in(cells, value_set=pa.array(vocabulary.yes, pa.large_string()))
    no = pc.is_in(cells, value_set=pa.array(vocabulary.no, pa.large_string()))
    out = text.mask(yes.to_numpy(zero_copy_only=False), "yes")
    return out.mask(no.to_numpy(zero_copy_only=False), "no").astype(STR)


def normalised_kinds(source: Source) -> dict[str, str]:
    """Return ``{column: kind}`` as :func:`normalise` treats the columns of ``source``."""
    kinds = {**all_kinds(), "visit_date": "date"}
    for table_extra in source.extra.values():
        for column, kind in table_extra.items():
            kinds.setdefault(column, kind)
    return kinds


def normalise(frame: pd.DataFrame, source: Source) -> pd.DataFrame:
    """Normalise the canonical text columns of ``frame`` as ``source`` says (module docstring).

    Parameters
    ----------
    frame : pandas.DataFrame
        Canonical columns as text (other columns are left alone).
    source : Source
        The source's codes, units, decimal mark, date format and patient-id rule.

    Returns
    -------
    pandas.DataFrame
        A new frame, still text.
    """
    kinds = normalised_kinds(source)
    coded = all_codes()
    out = frame.copy()
    for column in [c for c in out.columns if c in kinds]:
        text = out[column].astype(STR)
        if column in source.codes:
            text = apply_codes(text, source.codes[column])
        if column in coded:
            text = fold_code_case(text)
        if kinds[column] == "yes/no":
            text = yes_no(text, source.vocabulary)
        if column in NUMBERED_COLUMNS:
            text = numbered(text)
        if column in source.shift:
            text = shifted(text, source.shift[column])
        if kinds[column] in ("integer", "number"):
            if source.decimal == ",":
                text = text.str.replace(",", ".", regex=False)
            factor = UNIT_FACTORS.get((column, source.units.get(column, "")))
            if column == "odi" and ODI_ANSWERED in frame:
                factor = None  # scored over the answered sections below
            if factor:
                text = scale(text, factor)
        if kinds[column] == "date":
            text = iso_dates(text, source.date_format)
        if column == PATIENT_ID and source.patient_id == "compact":
            text = compact_ids(text)
        if column == PATIENT_ID and source.id_prefix:
            text = source.id_prefix + text  # (a missing id stays missing)
        out[column] = text
    if "odi" in out and ODI_ANSWERED in out and source.units.get("odi") == "points":
        out["odi"] = odi_from_points(out["odi"], out[ODI_ANSWERED], source.odi_max_missing_sections)
    return out


def odi_from_points(points: pd.Series, answered: pd.Series, max_missing: int) -> pd.Series:
    """Score ODI totals written as raw points over the sections answered (SAP section 2).

    ``score = points / (5 x answered) x 100``. More than ``max_missing`` unanswered sections:
    the score is blank (the missing-section rule). A count of answered sections that is not a
    whole number from 1 to 10 leaves the score unreadable, written so that validation names
    both cells (``odi = '30 points over 12 answered sections' is not a number``); points that
    are not a number stay as written.

    Parameters
    ----------
    points, answered : pandas.Series
        Text: the raw points (0 to 5 per answered section) and the number of sections answered.
    max_missing : int
        Unanswered sections allowed (``[thresholds] odi_max_missing_sections``).

    Returns
    -------
    pandas.Series
        The ODI in per cent, as text.
    """
    total = pd.to_numeric(points, errors="coerce")
    count = pd.to_numeric(answered, errors="coerce")
    readable = count.notna() & (count == np.floor(count)) & count.between(1, 10)
    out = points.copy().astype(STR)
    scored = total.notna() & readable & (count >= 10 - max_missing)
    out[scored] = [format(x, ".12g") for x in (total[scored] / (5 * count[scored]) * 100).round(9)]
    out[total.notna() & readable & (count < 10 - max_missing)] = pd.NA
    bad = total.notna() & answered.notna() & ~readable
    out[bad] = points[bad] + " points over " + answered[bad] + " answered sections"
    # points given without the count of answered sections: all ten were answered
    plain = total.notna() & answered.isna()
    out[plain] = [format(x, ".12g") for x in (total[plain] * 2).round(9)]
    return out


def visits_by_date(frame: pd.DataFrame) -> pd.Series:
    """Return each row's visit: its patient's dates in order, the first visit 0 (the baseline).

    For a source without a visit column (``visits = "by_date"``). Rows of one patient and day
    share a number; a row without a patient or a readable date gets none (validation then
    quarantines it, as it does a row without a visit number).

    Parameters
    ----------
    frame : pandas.DataFrame
        Normalised text with ``patient_id`` and ``assessment_date`` (``YYYY-MM-DD``).

    Returns
    -------
    pandas.Series
        The visit numbers, as text.
    """
    dates = pd.to_datetime(frame["assessment_date"], format="%Y-%m-%d", errors="coerce")
    known = (frame[PATIENT_ID].notna() & dates.notna()).to_numpy()
    out = pd.Series(pd.NA, index=frame.index, dtype=STR)
    if known.any():
        ranks = dates[known].groupby(frame[PATIENT_ID][known]).rank(method="dense")
        out[known] = (ranks.astype("int64") - 1).astype("str").to_numpy()
    return out


def undated_visits(frame: pd.DataFrame) -> list[dict]:
    """Problems of the rows :func:`visits_by_date` could not number (``row`` is the position)."""
    out = []
    for k in np.flatnonzero(frame["visit"].isna().to_numpy()):
        date = frame["assessment_date"].iloc[k]
        written = "is empty" if pd.isna(date) else f"= '{date}' is not a date"
        out.append(
            {
                "row": int(k),
                "column": "assessment_date",
                "check": "undated_visit",
                "value": "" if pd.isna(date) else str(date),
                "reason": f"assessment_date {written}, so the visit cannot be numbered by date",
            }
        )
    return out


def mapped_frame(
    source: Source,
    text: TextTable,
    columns: Mapping[str, str],
    label: str,
    site: str | None,
) -> pd.DataFrame:
    """Return a file's mapped columns, normalised, with the configured site on every row.

    Parameters
    ----------
    source : Source
        The source (how to normalise).
    text : TextTable
        The file as read.
    columns : mapping of str to str
        Canonical column -> frame column (:func:`resolve_columns`).
    label : str
        The file as named in messages and provenance.
    site : str or None
        The file's clinic (:func:`site_for`); None leaves the site as the file gives it.

    Returns
    -------
    pandas.DataFrame
        Provenance and canonical columns, as text.
    """
    frame = normalise(canonical_frame(text, columns, label), source)
    if site:
        frame["site"] = constant(site, frame.index)
    return frame


def raise_site_twice(source: Source, label: str) -> None:
    """Raise: a configured site and a site column in the file (which one is meant?)."""
    raise InputFileError(
        f"{source.config}: {source.key()} sets the site, but {label} already has a site "
        f"column; remove one of them"
    )


def problems_frame(rows: list[dict]) -> pd.DataFrame | None:
    """Collect problem records (``row, column, check, value, reason``); ``None`` when empty."""
    if not rows:
        return None
    return pd.DataFrame(rows, columns=list(PROBLEM_COLUMNS))
