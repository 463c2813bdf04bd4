"""Write one small simulated study in every layout a clinic may hold (``data/raw/examples/``).

Every example carries the same facts as the canonical CSVs of ``canonical/``, written the way a
clinic's own export would write them, with an ``analysis.toml`` that maps it. The tests read each
example and check that it gives exactly the canonical tables, so the examples double as worked
examples for ``docs/ingestion.md``:

``canonical/``
    The three canonical CSVs (the ``[inputs]`` form).
``clinics/``
    Three clinics' files of the canonical tables, one ``[[sources]]`` entry each, site from the
    configuration: Northside plain; Riverside German column names and codes, semicolons, decimal
    commas, Windows-1252, ``DD.MM.YYYY``, patient ids written ``p-0003``; Hillview UTF-8 with a
    byte-order mark, Windows line ends, two title lines above the header, ``NA`` and ``-`` for
    missing, stray spaces and capitals in codes, blank trailing lines.
``visit_sheet/``
    One CSV, one row per visit (session and/or assessment), the clinic's own names, depth coded
    1/2, visits named "Baseline", "Week 2", ..., VAS in cm, ODI in raw points (0-50),
    ``DD/MM/YYYY``, patient details only on each patient's first row, a duplicated unused column.
``excel/``
    The visit sheet as an Excel workbook: a notes sheet first, the header on row 3, real Excel
    dates and a few serial day numbers, yes/no as TRUE/FALSE, some numbers stored as text.
``wide/``
    One row per patient: details, then one column group per time point (``nrs_wk2``, ...) and
    per session (``s3_depth``, ...).
``redcap/``
    A raw REDCap longitudinal export (two arms, events per visit, a repeating session
    instrument, checkbox fields, data access groups as sites) and its data dictionary.

``python -m pipeline.demo.example_sources data/raw/examples`` rewrites them; the bytes depend only
on
the simulator's seed (the workbook's timestamps are fixed).
"""

from __future__ import annotations

import csv
import io
import re
import sys
import zipfile
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from pipeline import outputs
from pipeline.demo.simulate import TABLE_COLUMNS, simulate_study
from pipeline.schemas.columns import PATIENT_ID
from pipeline.schemas.raw import CONTRAINDICATIONS, ODI_ITEMS

EXAMPLE_PATIENTS = 15
EXAMPLE_SEED = 31
KINDS = ("canonical", "clinics", "visit_sheet", "excel", "wide", "redcap", "measurements")
FLAGS = (*CONTRAINDICATIONS, "protocol_deviation")
VISIT_NAMES = {"0": "Baseline", "1": "Week 2", "2": "Week 4", "3": "Week 8", "4": "Week 12"}
POINTS = {"0": "baseline", "1": "wk2", "2": "wk4", "3": "wk8", "4": "wk12"}
WEEKS = {"baseline": 0, "wk2": 2, "wk4": 4, "wk8": 8, "wk12": 12}
FIXED_TIME = (2025, 1, 1, 0, 0, 0)
LEFT_OUT = ("timing", "co_intervention_started")
"""Simulator columns the examples do not carry."""

MCID = """
[mcid.nrs]
points = 2
percent = 30

[mcid.vas]
points = 15
percent = 30

[mcid.odi]
points = 10
percent = 30
"""


def _outputs(kind: str) -> str:
    return (
        "[outputs]  # under data/processed/, which git ignores\n"
        f'processed = "../../../processed/examples/{kind}"\n'
        f'reports = "../../../processed/examples/{kind}/reports"\n\n'
        "[privacy]\n"
        "demo_key = true  # simulated data: the public demo key is fine; never for real patients\n"
    )


def canonical_text(n_patients: int = EXAMPLE_PATIENTS, seed: int = EXAMPLE_SEED) -> dict:
    """Return the simulated study as the canonical CSVs write it (text, ``""`` if missing)."""
    tables = simulate_study(n_patients, seed)
    # the layout examples show the visits: the pre/post-session measurements (rows without a
    # visit number, the demo's own) and their timing column are left out
    visits = tables["assessments"]["visit"].notna().to_numpy()
    tables["assessments"] = tables["assessments"][visits].astype({"visit": "int64"})
    out = {}
    for name, frame in tables.items():
        # The layouts show how a clinic's export is mapped; the optional intercurrent-event
        # column of the demo study (co_intervention_started) is not one they need to show.
        columns = [c for c in TABLE_COLUMNS[name] if c not in LEFT_OUT]
        text = frame[columns].to_csv(index=False, lineterminator="\n")
        out[name] = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    return out


def _csv(frame: pd.DataFrame, delimiter: str = ",", newline: str = "\n") -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator=newline)
    writer.writerow(frame.columns)
    writer.writerows(frame.itertuples(index=False))
    return buffer.getvalue()


def _decimal_comma(frame: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    out = frame.copy()
    for column in columns:
        out[column] = out[column].str.replace(".", ",", regex=False)
    return out


def _dates(frame: pd.DataFrame, columns: Sequence[str], fmt: str) -> pd.DataFrame:
    out = frame.copy()
    for column in columns:
        parsed = pd.to_datetime(out[column], format="%Y-%m-%d", errors="coerce")
        out[column] = parsed.dt.strftime(fmt).fillna("")
    return out


def _by_site(study: dict, site: str) -> dict:
    ids = study["patients"].loc[study["patients"]["site"] == site, PATIENT_ID]
    return {
        "patients": study["patients"][study["patients"]["site"] == site].drop(columns="site"),
        "sessions": study["sessions"][study["sessions"][PATIENT_ID].isin(ids)],
        "assessments": study["assessments"][study["assessments"][PATIENT_ID].isin(ids)],
    }


# ------------------------------------------------------------------------------------------
# canonical and clinics
# ------------------------------------------------------------------------------------------
def canonical_files(study: dict) -> dict[str, bytes]:
    """Return the canonical CSVs and their ``[inputs]`` configuration."""
    files = {f"{t}.csv": _csv(f).encode() for t, f in study.items()}
    config = (
        "# The canonical layout (docs/data-dictionary.md), read as written.\n\n[inputs]\n"
        'patients = "patients.csv"\nsessions = "sessions.csv"\nassessments = "assessments.csv"\n\n'
        + _outputs("canonical")
        + MCID
    )
    return {**files, "analysis.toml": config.encode()}


RIVERSIDE_COLUMNS = {
    PATIENT_ID: "Patienten-Nr.",
    "enrolment_date": "Aufnahmedatum",
    "age": "Alter",
    "sex": "Geschlecht",
    "symptom_weeks": "Beschwerdedauer (Wochen)",
    "arm": "Studienarm",
    "anticoagulants": "Antikoagulanzien",
    "bleeding_disorder": "Gerinnungsstörung",
    "pregnant": "Schwangerschaft",
    "immunocompromised": "Immunsuppression",
    "recent_surgery": "Kürzliche Operation",
    "needle_phobia": "Nadelangst",
    "unable_to_consent": "Nicht einwilligungsfähig",
    "protocol_deviation": "Protokollabweichung",
    "session_number": "Sitzung",
    "session_date": "Datum",
    "therapist": "Therapeut",
    "depth": "Tiefe",
    "twitch": "Zuckung",
    "ltr_count": "Anzahl Zuckungen",
    "needles": "Nadeln",
    "retention_min": "Verweildauer (min)",
    "trigger_point": "Triggerpunkt",
    "co_intervention": "Begleittherapie",
    "adverse_event": "Nebenwirkung",
    "ae_severity": "Schweregrad",
    "visit": "Termin",
    "assessment_date": "Datum",
    "odi_version": "ODI-Version",
    **{f"odi_q{k}": f"ODI Abschnitt {k}" for k in range(1, 11)},
}
RIVERSIDE_CODES = {
    "sex": {"female": "w", "male": "m", "other": "d"},
    "depth": {"superficial": "oberflächlich", "deep": "tief"},
    "twitch": {"yes": "ja", "no": "nein"},
    "trigger_point": {"active": "aktiv", "latent": "latent"},
    "adverse_event": {
        "none": "keine",
        "soreness": "Muskelkater",
        "bruising": "Hämatom",
        "fatigue": "Müdigkeit",
        "discomfort": "Unwohlsein",
        "bleeding": "Blutung",
        "fainting": "Ohnmacht",
        "other": "andere",
    },
    "ae_severity": {"mild": "leicht", "moderate": "mittel", "severe": "schwer"},
    "co_intervention": {
        "exercise": "Übungen",
        "manual therapy": "Manuelle Therapie",
        "exercise; manual therapy": "Übungen + Manuelle Therapie",
    },
}


def _toml_codes(codes: dict[str, dict[str, str]], prefix: str) -> str:
    text = ""
    for column, mapping in codes.items():
        text += f"\n[{prefix}.codes.{column}]\n"
        for canonical, clinic in mapping.items():
            text += f'"{clinic}" = "{canonical}"\n'
    return text


def _toml_table(name: str, mapping: dict) -> str:
    lines = [f"\n[{name}]"]
    for key, value in mapping.items():
        quoted = f'"{value}"' if isinstance(value, str) else str(value)
        lines.append(f'"{key}" = {quoted}')
    return "\n".join(lines) + "\n"


def clinics_files(study: dict) -> dict[str, bytes]:
    """Three clinics' files of the canonical tables, each written its own way."""
    files: dict[str, bytes] = {}
    north = _by_site(study, "Northside")
    for table, frame in north.items():
        files[f"northside/{table}.csv"] = _csv(frame).encode()

    river = _by_site(study, "Riverside")
    for table, frame in river.items():
        frame = frame.copy()
        for column, codes in RIVERSIDE_CODES.items():
            if column in frame:
                frame[column] = frame[column].map(lambda v, c=codes: c.get(v, v))
        frame[PATIENT_ID] = frame[PATIENT_ID].str.replace(r"^P(\d)", r"p-\1", regex=True)
        numbers = [c for c in ("symptom_weeks", "retention_min", "vas_mm", "odi") if c in frame]
        frame = _decimal_comma(frame, numbers)
        dates = [c for c in ("enrolment_date", "session_date", "assessment_date") if c in frame]
        frame = _dates(frame, dates, "%d.%m.%Y")
        frame = frame.rename(columns=RIVERSIDE_COLUMNS)
        files[f"riverside/{table}.csv"] = _csv(frame, ";", "\r\n").encode("cp1252")

    hill = _by_site(study, "Hillview")
    for table, frame in hill.items():
        frame = frame.copy()
        empty = frame == ""
        frame = frame.mask(empty, "NA")
        if "ae_severity" in frame:
            frame["ae_severity"] = frame["ae_severity"].replace("NA", "-")
        for column in ("depth", "adverse_event", "sex", "trigger_point"):
            if column in frame:
                frame[column] = " " + frame[column].str.capitalize() + " "
        text = "Hillview Physiotherapy - export\r\nCreated by the clinic system\r\n"
        text += _csv(frame, ",", "\r\n") + "\r\n,,,\r\n\r\n"
        files[f"hillview/{table}.csv"] = "\ufeff".encode() + text.encode("utf-8")

    river_codes = {c: {v: k for k, v in m.items()} for c, m in RIVERSIDE_CODES.items()}
    config = (
        "# Three clinics delivering the canonical tables, each in its own way (one entry each).\n\n"
        '[[sources]]\nkind = "canonical"\nsite = "Northside"\n'
        'patients = "northside/patients.csv"\nsessions = "northside/sessions.csv"\n'
        'assessments = "northside/assessments.csv"\n\n'
        '[[sources]]\nkind = "canonical"\nsite = "Riverside"\n'
        'patients = "riverside/patients.csv"\nsessions = "riverside/sessions.csv"\n'
        'assessments = "riverside/assessments.csv"\n'
        'delimiter = ";"\ndecimal = ","\nencoding = "cp1252"\ndate_format = "DD.MM.YYYY"\n'
        + _toml_table("sources.columns", {k: v for k, v in RIVERSIDE_COLUMNS.items()})
        + "".join(
            _toml_table(
                f"sources.codes.{c}", {clinic: canonical for clinic, canonical in m.items()}
            )
            for c, m in river_codes.items()
        )
        + '\n[[sources]]\nkind = "canonical"\nsite = "Hillview"\nheader_row = 3\n'
        'patients = "hillview/patients.csv"\nsessions = "hillview/sessions.csv"\n'
        'assessments = "hillview/assessments.csv"\n\n' + _outputs("clinics") + MCID
    )
    files["analysis.toml"] = config.encode()
    return files


# ------------------------------------------------------------------------------------------
# visit sheet (CSV and Excel)
# ------------------------------------------------------------------------------------------
SHEET_COLUMNS = {
    PATIENT_ID: "Patient",
    "site": "Clinic",
    "enrolment_date": "Enrolled",
    "age": "Age",
    "sex": "Sex",
    "symptom_weeks": "Weeks of symptoms",
    **{flag: flag.replace("_", " ").capitalize() for flag in FLAGS},
    "visit_date": "Date",
    "session_number": "Session",
    "therapist": "Therapist",
    "depth": "Depth",
    "twitch": "Twitch",
    "ltr_count": "LTRs",
    "needles": "Needles",
    "retention_min": "Retention (min)",
    "trigger_point": "Trigger point",
    "co_intervention": "Co-intervention",
    "adverse_event": "Adverse event",
    "ae_severity": "Severity",
    "visit": "Visit",
    "nrs": "NRS",
    "vas_mm": "VAS (cm)",
    "odi": "ODI (points)",
    **{f"odi_q{k}": f"ODI{k}" for k in range(1, 11)},
    "odi_version": "ODI version",
}
SITE_CODES = {"Northside": "NS", "Riverside": "RS", "Hillview": "HV"}


def visit_rows(study: dict) -> pd.DataFrame:
    """One row per patient and date: the session and/or assessment of that day, as text."""
    sessions = study["sessions"].rename(columns={"session_date": "visit_date"})
    assessments = study["assessments"].rename(columns={"assessment_date": "visit_date"})
    visits = sessions.merge(assessments, on=[PATIENT_ID, "visit_date"], how="outer")
    visits = visits.fillna("")
    patients = study["patients"].drop(columns="arm")
    rows = patients.merge(visits, on=PATIENT_ID, how="right")
    rows = rows.sort_values([PATIENT_ID, "visit_date"], kind="stable").reset_index(drop=True)
    return rows.fillna("")


def _sheet_text(study: dict) -> pd.DataFrame:
    """Return the visit sheet's cells as the clinic writes them (CSV or Excel alike)."""
    rows = visit_rows(study)
    rows["site"] = rows["site"].map(SITE_CODES)
    rows["depth"] = rows["depth"].map({"superficial": "1", "deep": "2", "": ""})
    rows["visit"] = rows["visit"].map(lambda v: VISIT_NAMES.get(v, ""))
    rows["vas_mm"] = [f"{float(v) / 10:g}" if v else "" for v in rows["vas_mm"]]
    rows["odi"] = [f"{float(v) / 2:g}" if v else "" for v in rows["odi"]]
    first = ~rows[PATIENT_ID].duplicated()
    odd = rows[PATIENT_ID].str[-1].isin(list("13579"))
    details = ["enrolment_date", "age", "sex", "symptom_weeks", *FLAGS]
    rows.loc[~first & odd, details] = ""
    return rows[[c for c in SHEET_COLUMNS if c in rows]]


def _sheet_config(kind: str, files: str, extra: str) -> str:
    codes = {
        "site": {v: k for k, v in SITE_CODES.items()},
        "depth": {"1": "superficial", "2": "deep"},
        "visit": {name: int(v) for v, name in VISIT_NAMES.items()},
    }
    return (
        f"# One visit sheet ({kind}): one row per visit, patient details on the rows.\n\n"
        f'[[sources]]\nkind = "visit_sheet"\nfiles = {files}\n{extra}'
        + _toml_table("sources.columns", SHEET_COLUMNS)
        + "".join(_toml_table(f"sources.codes.{c}", m) for c, m in codes.items())
        + '\n[sources.units]\nvas_mm = "cm"\nodi = "points"\n\n'
        + _outputs(kind)
        + MCID
    )


def visit_sheet_files(study: dict) -> dict[str, bytes]:
    """Return the visit sheet as a CSV (``DD/MM/YYYY``), with a duplicated unused column."""
    rows = _sheet_text(study)
    rows = _dates(rows, ["enrolment_date", "visit_date"], "%d/%m/%Y")
    rows["twitch"] = rows["twitch"].map({"yes": "Y", "no": "N", "": ""})
    rows = rows.rename(columns=SHEET_COLUMNS)
    for _ in range(2):  # a column name written twice is fine while no mapping uses it
        rows.insert(len(rows.columns), "Notes", "", allow_duplicates=True)
    text = _csv(rows)
    extra = 'date_format = "DD/MM/YYYY"\n'
    return {
        "visits.csv": text.encode(),
        "analysis.toml": _sheet_config("visit_sheet", '["visits.csv"]', extra).encode(),
    }


def excel_files(study: dict) -> dict[str, bytes]:
    """Return the visit sheet as an ``.xlsx`` workbook (Excel dates, booleans, a title)."""
    import datetime as dt

    import openpyxl

    rows = _sheet_text(study)
    book = openpyxl.Workbook()
    notes = book.active
    notes.title = "Notes"
    notes["A1"] = "Exported from the clinic system; one row per visit."
    sheet = book.create_sheet("Visits")
    sheet["A1"] = "Dry needling visits"
    sheet.append([])
    sheet.append([SHEET_COLUMNS[c] for c in rows.columns])
    numeric = {"age", "symptom_weeks", "session_number", "ltr_count", "needles"}
    numeric |= {"retention_min", "nrs", "vas_mm", "odi", *ODI_ITEMS}
    for k, record in enumerate(rows.to_dict("records")):
        cells = []
        for column, value in record.items():
            if value == "":
                cells.append(None)
            elif column == PATIENT_ID and k % 4 == 1:
                cells.append("p " + value[1:])
            elif column in ("enrolment_date", "visit_date"):
                day = dt.date.fromisoformat(value)
                serial = (day - dt.date(1899, 12, 30)).days
                cells.append(serial if k % 7 == 3 else dt.datetime(day.year, day.month, day.day))
            elif column in FLAGS or column == "twitch":
                cells.append(value == "yes")
            elif column in numeric and k % 5 != 2:
                number = float(value)
                cells.append(int(number) if number.is_integer() else number)
            else:
                cells.append(value)
        sheet.append(cells)
    for cell in sheet["C"][3:] + sheet[_letter(rows, "visit_date")][3:]:
        if isinstance(cell.value, dt.datetime):
            cell.number_format = "DD/MM/YYYY"
    book.properties.creator = "needling-outcomes example"
    book.properties.created = dt.datetime(*FIXED_TIME)
    book.properties.modified = dt.datetime(*FIXED_TIME)
    buffer = io.BytesIO()
    book.save(buffer)
    extra = 'sheet = "Visits"\nheader_row = 3\ndate_format = "DD/MM/YYYY"\n'
    return {
        "visits.xlsx": reproducible_zip(buffer.getvalue()),
        "analysis.toml": _sheet_config("excel", '["visits.xlsx"]', extra).encode(),
    }


def _letter(rows: pd.DataFrame, column: str) -> str:
    from openpyxl.utils import get_column_letter

    return get_column_letter(list(rows.columns).index(column) + 1)


def reproducible_zip(data: bytes) -> bytes:
    """Rewrite a zip archive (an ``.xlsx``) with fixed timestamps, so its bytes are stable."""
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for item in source.infolist():
            body = source.read(item.filename)
            if item.filename == "docProps/core.xml":
                body = re.sub(
                    rb"(<dcterms:(created|modified)[^>]*>)[^<]*",
                    rb"\g<1>2025-01-01T00:00:00Z",
                    body,
                )
            info = zipfile.ZipInfo(item.filename, date_time=FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            target.writestr(info, body)
    return out.getvalue()


# ------------------------------------------------------------------------------------------
# wide
# ------------------------------------------------------------------------------------------
WIDE_ASSESSMENT = {
    "assessment_date": "date_{t}",
    "nrs": "nrs_{t}",
    "vas_mm": "vas_{t}",
    "odi": "odi_{t}",
    **{f"odi_q{k}": f"odi{k}_{{t}}" for k in range(1, 11)},
}
WIDE_SESSION = {
    c: f"s{{t}}_{c}" for c in TABLE_COLUMNS["sessions"] if c not in (PATIENT_ID, "session_number")
}


def wide_files(study: dict) -> dict[str, bytes]:
    """One row per patient with column groups per time point and per session."""
    wide = study["patients"].set_index(PATIENT_ID)
    assessments = study["assessments"].assign(point=lambda f: f["visit"].map(POINTS))
    for point in POINTS.values():
        mine = assessments[assessments["point"] == point].set_index(PATIENT_ID)
        for canonical, pattern in WIDE_ASSESSMENT.items():
            wide[pattern.replace("{t}", point)] = mine[canonical].reindex(wide.index)
    wide["odi_version"] = "2.1a"
    sessions = study["sessions"]
    numbers = sorted(sessions["session_number"].astype(int).unique())
    for number in numbers:
        mine = sessions[sessions["session_number"] == str(number)].set_index(PATIENT_ID)
        for canonical, pattern in WIDE_SESSION.items():
            wide[pattern.replace("{t}", str(number))] = mine[canonical].reindex(wide.index)
    wide = wide.reset_index().fillna("")
    config = (
        "# Wide layout: one row per patient, one column group per time point and session.\n\n"
        '[[sources]]\nkind = "wide"\nfiles = ["wide.csv"]\n\n'
        "[sources.assessments]\ncolumns = { "
        + ", ".join(f'{c} = "{p}"' for c, p in WIDE_ASSESSMENT.items())
        + ', odi_version = "odi_version" }\n'
        + _toml_table("sources.assessments.points", {p: int(v) for v, p in POINTS.items()})
        + "\n[sources.sessions]\ncolumns = { "
        + ", ".join(f'{c} = "{p}"' for c, p in WIDE_SESSION.items())
        + " }\n"
        + _toml_table("sources.sessions.points", {str(n): int(n) for n in numbers})
        + "\n"
        + _outputs("wide")
        + MCID
    )
    return {"wide.csv": _csv(wide).encode(), "analysis.toml": config.encode()}


# ------------------------------------------------------------------------------------------
# REDCap
# ------------------------------------------------------------------------------------------
REDCAP_HEADER = [
    "Variable / Field Name",
    "Form Name",
    "Section Header",
    "Field Type",
    "Field Label",
    "Choices, Calculations, OR Slider Labels",
    "Field Note",
    "Text Validation Type OR Show Slider Number",
    "Text Validation Min",
    "Text Validation Max",
    "Identifier?",
    "Branching Logic (Show field only if...)",
    "Required Field?",
    "Custom Alignment",
    "Question Number (surveys only)",
    "Matrix Group Name",
    "Matrix Ranking?",
    "Field Annotation",
]
SEX_CHOICES = {"1": "Female", "2": "Male", "3": "Other"}
DEPTH_CHOICES = {"1": "Superficial", "2": "Deep"}
TRIGGER_CHOICES = {"1": "Active", "2": "Latent"}
AE_CHOICES = {
    "0": "None",
    "1": "Soreness",
    "2": "Bruising",
    "3": "Fatigue",
    "4": "Discomfort",
    "5": "Bleeding",
    "6": "Fainting",
    "7": "Other",
}
SEVERITY_CHOICES = {"1": "Mild", "2": "Moderate", "3": "Severe"}
COINTERVENTION_CHOICES = {"1": "exercise", "2": "manual therapy"}
CONTRA_CHOICES = {str(k): flag for k, flag in enumerate(CONTRAINDICATIONS, start=1)}


def _choices(mapping: dict[str, str]) -> str:
    return " | ".join(f"{code}, {label}" for code, label in mapping.items())


def redcap_dictionary() -> pd.DataFrame:
    """Return the data dictionary of the example REDCap project."""
    fields = [
        ("record_id", "demographics", "text", "Record ID", ""),
        ("enrolment_date", "demographics", "text", "Date of enrolment", ""),
        ("age", "demographics", "text", "Age (years)", ""),
        ("sex", "demographics", "radio", "Sex", _choices(SEX_CHOICES)),
        ("symptom_weeks", "demographics", "text", "Duration of symptoms (weeks)", ""),
        ("contra", "demographics", "checkbox", "Contraindications", _choices(CONTRA_CHOICES)),
        ("protocol_deviation", "demographics", "yesno", "Protocol deviation", ""),
        ("session_date", "needling_session", "text", "Date of session", ""),
        ("therapist", "needling_session", "text", "Therapist", ""),
        ("depth", "needling_session", "radio", "Needling depth", _choices(DEPTH_CHOICES)),
        ("twitch", "needling_session", "yesno", "Local twitch response", ""),
        ("ltr_count", "needling_session", "text", "Number of twitches", ""),
        ("needles", "needling_session", "text", "Needles", ""),
        ("retention_min", "needling_session", "text", "Retention (min)", ""),
        ("trigger_point", "needling_session", "radio", "Trigger point", _choices(TRIGGER_CHOICES)),
        (
            "cointerv",
            "needling_session",
            "checkbox",
            "Co-interventions",
            _choices(COINTERVENTION_CHOICES),
        ),
        ("adverse_event", "needling_session", "dropdown", "Adverse event", _choices(AE_CHOICES)),
        ("ae_severity", "needling_session", "radio", "Severity", _choices(SEVERITY_CHOICES)),
        ("assessment_date", "outcomes", "text", "Date of assessment", ""),
        ("nrs", "outcomes", "text", "Pain NRS (0-10)", ""),
        ("vas_mm", "outcomes", "text", "Pain VAS (mm)", ""),
        ("odi", "outcomes", "text", "ODI total (%)", ""),
        *[(f"odi_q{k}", "outcomes", "text", f"ODI section {k}", "") for k in range(1, 11)],
        ("odi_version", "outcomes", "text", "ODI version", ""),
    ]
    rows = [
        {**dict.fromkeys(REDCAP_HEADER, ""), **dict(zip(REDCAP_HEADER[:2], f[:2], strict=True))}
        | {"Field Type": f[2], "Field Label": f[3], "Choices, Calculations, OR Slider Labels": f[4]}
        for f in fields
    ]
    return pd.DataFrame(rows, columns=REDCAP_HEADER)


def _code(mapping: dict[str, str], value: str) -> str:
    if value == "":
        return ""
    folded = {label.lower(): code for code, label in mapping.items()}
    return folded[value.lower()]


def redcap_export(study: dict) -> pd.DataFrame:
    """Return the raw REDCap export: deep patients in arm 1, superficial ones in arm 2."""
    dictionary = redcap_dictionary()
    fields = dictionary["Variable / Field Name"].tolist()
    columns = ["record_id", "redcap_event_name", "redcap_repeat_instrument"]
    columns += ["redcap_repeat_instance", "redcap_data_access_group"]
    for name, kind in zip(fields[1:], dictionary["Field Type"][1:], strict=True):
        if kind == "checkbox":
            choices = CONTRA_CHOICES if name == "contra" else COINTERVENTION_CHOICES
            columns += [f"{name}___{code}" for code in choices]
        else:
            columns.append(name)
    columns += ["demographics_complete", "needling_session_complete", "outcomes_complete"]
    deep = set(study["sessions"].loc[study["sessions"]["depth"] == "deep", PATIENT_ID])
    rows = []
    assessments = study["assessments"].set_index([PATIENT_ID, "visit"])
    for patient in study["patients"].to_dict("records"):
        pid = patient[PATIENT_ID]
        arm = "arm_1" if pid in deep else "arm_2"
        dag = patient["site"].lower()
        base = {"record_id": pid, "redcap_data_access_group": dag}
        demo = {
            "enrolment_date": patient["enrolment_date"],
            "age": patient["age"],
            "sex": _code(SEX_CHOICES, patient["sex"]),
            "symptom_weeks": patient["symptom_weeks"],
            "protocol_deviation": "1" if patient["protocol_deviation"] == "yes" else "0",
            **{
                f"contra___{c}": "1" if patient[f] == "yes" else "0"
                for c, f in CONTRA_CHOICES.items()
            },
            "demographics_complete": "2",
        }
        for visit, point in POINTS.items():
            key = (pid, visit)
            event = f"{'baseline' if visit == '0' else 'week_' + str(WEEKS[point])}_{arm}"
            row = {**base, "redcap_event_name": event}
            if visit == "0":
                row |= demo
            if key in assessments.index:
                found = assessments.loc[key]
                row |= {c: found[c] for c in ("assessment_date", "nrs", "vas_mm", "odi")}
                row |= {c: found[c] for c in (*ODI_ITEMS, "odi_version")}
                row["outcomes_complete"] = "2"
            if visit == "0" or key in assessments.index:
                rows.append(row)
        for session in study["sessions"][study["sessions"][PATIENT_ID] == pid].to_dict("records"):
            chosen = {c.strip() for c in session["co_intervention"].split(";") if c.strip()}
            rows.append(
                {
                    **base,
                    "redcap_event_name": f"treatment_{arm}",
                    "redcap_repeat_instrument": "needling_session",
                    "redcap_repeat_instance": session["session_number"],
                    "session_date": session["session_date"],
                    "therapist": session["therapist"],
                    "depth": _code(DEPTH_CHOICES, session["depth"]),
                    "twitch": {"yes": "1", "no": "0", "": ""}[session["twitch"]],
                    "ltr_count": session["ltr_count"],
                    "needles": session["needles"],
                    "retention_min": session["retention_min"],
                    "trigger_point": _code(TRIGGER_CHOICES, session["trigger_point"]),
                    **{
                        f"cointerv___{c}": "1" if label in chosen else "0"
                        for c, label in COINTERVENTION_CHOICES.items()
                    },
                    "adverse_event": _code(AE_CHOICES, session["adverse_event"]),
                    "ae_severity": _code(SEVERITY_CHOICES, session["ae_severity"]),
                    "needling_session_complete": "2",
                }
            )
    return pd.DataFrame(rows, columns=columns).fillna("")


def redcap_files(study: dict) -> dict[str, bytes]:
    """Return the raw export, its data dictionary and the configuration mapping them."""
    columns = {PATIENT_ID: "record_id", "site": "redcap_data_access_group"}
    columns |= {flag: f"contra___{code}" for code, flag in CONTRA_CHOICES.items()}
    columns["co_intervention"] = "cointerv"
    config = (
        "# A raw REDCap longitudinal export and its data dictionary.\n\n"
        '[[sources]]\nkind = "redcap"\nfiles = ["export.csv"]\ndictionary = "dictionary.csv"\n'
        + _toml_table(
            "sources.instruments",
            {"patients": "demographics", "sessions": "needling_session", "assessments": "outcomes"},
        )
        + _toml_table(
            "sources.events",
            {"baseline": 0, "week_2": 1, "week_4": 2, "week_8": 3, "week_12": 4},
        )
        + _toml_table("sources.columns", columns)
        + _toml_table("sources.codes.site", {k.lower(): k for k in SITE_CODES})
        + "\n"
        + _outputs("redcap")
        + MCID
    )
    return {
        "export.csv": _csv(redcap_export(study)).encode(),
        "dictionary.csv": _csv(redcap_dictionary()).encode(),
        "analysis.toml": config.encode(),
    }


# Measurements: each score as the clinic's questionnaire system names it.
MEASURE_NAMES = {
    "nrs": "NRS",
    "vas_mm": "VAS (mm)",
    "odi": "Oswestry (%)",
    **{item: f"ODI item {k}" for k, item in enumerate(ODI_ITEMS, start=1)},
}


def measurements_files(study: dict) -> dict[str, bytes]:
    """One line per score (patient, visit, date, instrument, score), beside the patient list.

    The patients and sessions are the canonical files; the assessments are written one score
    per line, in a German-style dialect (semicolons, decimal commas, ``DD.MM.YYYY``).
    """
    scores = []
    for row in study["assessments"].to_dict("records"):
        for column, name in MEASURE_NAMES.items():
            if row[column] != "":
                scores.append(
                    {
                        "Patient": row[PATIENT_ID],
                        "Visit": VISIT_NAMES[row["visit"]],
                        "Date": row["assessment_date"],
                        "Instrument": name,
                        "Score": row[column],
                        "ODI version": row["odi_version"],
                    }
                )
    lines = _decimal_comma(_dates(pd.DataFrame(scores), ["Date"], "%d.%m.%Y"), ["Score"])
    config = (
        "# One line per score (measurements), beside the canonical patients and sessions.\n\n"
        '[[sources]]\nkind = "canonical"\npatients = "patients.csv"\nsessions = "sessions.csv"\n'
        '\n[[sources]]\nkind = "measurements"\nfiles = ["scores.csv"]\ndelimiter = ";"\n'
        'decimal = ","\ndate_format = "DD.MM.YYYY"\n'
        + _toml_table(
            "sources.columns",
            {
                PATIENT_ID: "Patient",
                "visit": "Visit",
                "assessment_date": "Date",
                "odi_version": "ODI version",
            },
        )
        + '\n[sources.measures]\ncolumn = "Instrument"\nvalue = "Score"\n'
        + _toml_table("sources.measures.names", {n: c for c, n in MEASURE_NAMES.items()})
        + _toml_table("sources.codes.visit", {name: int(v) for v, name in VISIT_NAMES.items()})
        + "\n"
        + _outputs("measurements")
        + MCID
    )
    return {
        "patients.csv": _csv(study["patients"]).encode(),
        "sessions.csv": _csv(study["sessions"]).encode(),
        "scores.csv": _csv(lines, delimiter=";").encode(),
        "analysis.toml": config.encode(),
    }


WRITERS = {
    "canonical": canonical_files,
    "clinics": clinics_files,
    "visit_sheet": visit_sheet_files,
    "excel": excel_files,
    "wide": wide_files,
    "redcap": redcap_files,
    "measurements": measurements_files,
}


def example_files(n_patients: int = EXAMPLE_PATIENTS, seed: int = EXAMPLE_SEED) -> dict:
    """Return ``{relative path: bytes}`` of every example (pure: nothing is written)."""
    study = canonical_text(n_patients, seed)
    return {
        f"{kind}/{name}": data
        for kind, writer in WRITERS.items()
        for name, data in writer(study).items()
    }


def write_examples(out: Path) -> list[Path]:
    """Write every example under ``out`` (atomically, file by file) and return the paths."""
    return [outputs.write_bytes(Path(out) / name, data) for name, data in example_files().items()]


if __name__ == "__main__":
    for written in write_examples(Path(sys.argv[1] if len(sys.argv) > 1 else "data/raw/examples")):
        print(f"Wrote {written}")
