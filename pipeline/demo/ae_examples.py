"""Write the adverse-event example (``data/raw/examples/ae_flags/``): several events per session.

One simulated study (:func:`pipeline.demo.simulate.simulate_study`) whose adverse events are
expanded into the event table of :func:`pipeline.demo.simulate.simulate_adverse_event_details`
(a soreness session has a second event, fatigue, with P = 0.10), written as two clinics' visit
sheets that record those events in the two ways ``[sources.N.adverse_events]`` reads:

``flags.csv`` (Northside and Hillview)
    one 0/1 column per event type (``ae_soreness``, ``ae_bruising``, ...) and the severity of
    each in a column of its own (``sev_soreness``, ...); a session whose events were not
    recorded has its flags empty.
``list.csv`` (Riverside)
    one column listing the events in German, ``Muskelkater; Müdigkeit``, translated by the
    source's ``codes``, ``keine`` for a session without event; no severity (it is optional).

The tests read the example and compare its event table with the simulator's
(``tests/ingest/test_adverse_event_sources.py``). ``python -m pipeline.demo.ae_examples
data/raw/examples`` rewrites it; the bytes depend only on the seed.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from pipeline import outputs
from pipeline.demo.example_sources import (
    FLAGS,
    REDCAP_HEADER,
    SHEET_COLUMNS,
    _choices,
    _csv,
    canonical_text,
    visit_rows,
)
from pipeline.demo.simulate import simulate_adverse_event_details, simulate_study
from pipeline.schemas.columns import PATIENT_ID
from pipeline.schemas.raw import AE_TYPES, SEVERITIES

AE_PATIENTS = 30
AE_SEED = 1
FOLDER = "ae_flags"
FLAG_SITES = ("Northside", "Hillview")
LIST_SITE = "Riverside"
FLAG_COLUMNS = {kind: f"ae_{kind}" for kind in AE_TYPES if kind != "other"}
SEVERITY_COLUMNS = {kind: f"sev_{kind}" for kind in FLAG_COLUMNS}
LIST_COLUMN = "Nebenwirkungen"
LIST_WORDS = {
    "soreness": "Muskelkater",
    "bruising": "Hämatom",
    "fatigue": "Müdigkeit",
    "discomfort": "Unwohlsein",
    "bleeding": "Blutung",
    "fainting": "Ohnmacht",
}
NO_EVENT = "keine"
COLUMNS = {
    c: SHEET_COLUMNS[c]
    for c in (
        PATIENT_ID,
        "site",
        "enrolment_date",
        "age",
        "sex",
        "symptom_weeks",
        *FLAGS,
        "visit_date",
        "session_number",
        "depth",
        "twitch",
        "ltr_count",
        "visit",
        "nrs",
        "vas_mm",
        "odi",
    )
}


def event_truth(n_patients: int = AE_PATIENTS, seed: int = AE_SEED) -> pd.DataFrame:
    """Return the simulated event table the example writes (the tests' expected rows)."""
    sessions = simulate_study(n_patients, seed)["sessions"]
    return simulate_adverse_event_details(sessions, seed)


def _event_cells(rows: pd.DataFrame, events: pd.DataFrame) -> pd.DataFrame:
    """Per visit row: the flag, severity and list cells of its session's events."""
    keyed = events.assign(session_number=events["session_number"].astype(str))
    out = pd.DataFrame(index=rows.index)
    session = rows["session_number"] != ""
    recorded = session & (rows["adverse_event"] != "")
    for kind, column in FLAG_COLUMNS.items():
        mine = keyed[keyed["ae_type"] == kind].drop_duplicates([PATIENT_ID, "session_number"])
        hit = rows[[PATIENT_ID, "session_number"]].merge(
            mine[[PATIENT_ID, "session_number", "ae_severity"]],
            on=[PATIENT_ID, "session_number"],
            how="left",
        )
        flagged = hit["ae_severity"].notna().to_numpy()
        out[column] = ""
        out.loc[recorded, column] = "0"
        out.loc[recorded & flagged, column] = "1"
        out[SEVERITY_COLUMNS[kind]] = ""
        out.loc[recorded & flagged, SEVERITY_COLUMNS[kind]] = hit["ae_severity"].to_numpy()[
            (recorded & flagged).to_numpy()
        ]
    listed = keyed.groupby([PATIENT_ID, "session_number"], sort=False)["ae_type"].agg(
        lambda kinds: "; ".join(LIST_WORDS[k] for k in kinds)
    )
    words = [
        listed.get((p, s), NO_EVENT) if r else ""
        for p, s, r in zip(rows[PATIENT_ID], rows["session_number"], recorded, strict=True)
    ]
    out[LIST_COLUMN] = words
    return out


def _config() -> str:
    flags = ", ".join(f'{column} = "{kind}"' for kind, column in FLAG_COLUMNS.items())
    severity = ", ".join(f'{FLAG_COLUMNS[k]} = "{c}"' for k, c in SEVERITY_COLUMNS.items())
    codes = ", ".join(f'"{word}" = "{kind}"' for kind, word in LIST_WORDS.items())
    columns = "".join(f'{k} = "{v}"\n' for k, v in COLUMNS.items())
    common = (
        'date_format = "DD/MM/YYYY"\n\n'
        f"[sources.columns]\n{columns}\n"
        '[sources.codes.depth]\n"1" = "superficial"\n"2" = "deep"\n\n'
        '[sources.codes.visit]\n"Baseline" = 0\n"Week 2" = 1\n"Week 4" = 2\n"Week 8" = 3\n'
        '"Week 12" = 4\n\n'
        '[sources.units]\nvas_mm = "cm"\nodi = "points"\n\n'
    )
    return (
        "# Adverse events recorded as several flag columns (Northside, Hillview) and as one\n"
        "# delimited list (Riverside): a session may have more than one event.\n\n"
        '[[sources]]\nkind = "visit_sheet"\nfiles = ["flags.csv"]\n'
        + common
        + "[sources.adverse_events]\n"
        + "# one 0/1 column per event type; the severity of each in its own column (optional)\n"
        + f"flags = {{ {flags} }}\n"
        + f"severity = {{ {severity} }}\n\n"
        + '[[sources]]\nkind = "visit_sheet"\nfiles = ["list.csv"]\n'
        + common
        + "[sources.adverse_events]\n"
        + "# one column listing the events; no severity here (it is optional)\n"
        + f'list = "{LIST_COLUMN}"\ndelimiter = ";"\n'
        + f'codes = {{ {codes}, "{NO_EVENT}" = "none" }}\n\n'
        + "[outcomes.nrs]  # one outcome (its MCID built in: 2 points or 30 %) keeps the run\n"
        + 'instrument = "nrs"  # short; VAS and ODI are read and validated all the same\n\n'
        + "[report]\npdf = false  # the HTML report is enough for the example\n\n"
        + "[outputs]  # under data/processed/, which git ignores\n"
        + f'processed = "../../../processed/examples/{FOLDER}"\n'
        + f'reports = "../../../processed/examples/{FOLDER}/reports"\n\n'
        + "[privacy]\n"
        + "demo_key = true  # simulated data: the public demo key is fine; never for real "
        + "patients\n"
    )


WIDE_FOLDER = f"{FOLDER}/wide"
WIDE_PATIENT = (PATIENT_ID, "site", "enrolment_date", "age", "sex", "symptom_weeks", *FLAGS)
WIDE_SESSION = {"session_date": "visit_date", "depth": "depth", "twitch": "twitch"}
WIDE_POINTS = {"0": "baseline", "1": "wk2", "2": "wk4", "3": "wk8", "4": "wk12"}


def _wide_sheet(rows: pd.DataFrame, cells: pd.DataFrame) -> tuple[pd.DataFrame, list[int]]:
    """One row per patient: NRS per time point, then per session its columns and event flags.

    Returns the sheet and the session numbers it has columns for.
    """
    rows = pd.concat([rows, cells], axis=1)
    wide = rows.drop_duplicates(PATIENT_ID)[list(WIDE_PATIENT)].set_index(PATIENT_ID)
    assessed = rows[rows["visit"] != ""].set_index([PATIENT_ID, "visit"])
    for visit, point in WIDE_POINTS.items():
        mine = assessed.xs(visit, level="visit")
        wide[f"date_{point}"] = mine["visit_date"].reindex(wide.index)
        wide[f"nrs_{point}"] = mine["nrs"].reindex(wide.index)
    sessions = rows[rows["session_number"] != ""]
    numbers = sorted(sessions["session_number"].astype(int).unique())
    treated = sessions.set_index([PATIENT_ID, "session_number"])
    for number in numbers:
        mine = treated.xs(str(number), level="session_number")
        for canonical, column in WIDE_SESSION.items():
            wide[f"s{number}_{canonical}"] = mine[column].reindex(wide.index)
        for kind, flag in FLAG_COLUMNS.items():
            wide[f"s{number}_{flag}"] = mine[flag].reindex(wide.index)
            wide[f"s{number}_{SEVERITY_COLUMNS[kind]}"] = mine[SEVERITY_COLUMNS[kind]].reindex(
                wide.index
            )
    return wide.reset_index().fillna(""), numbers


def _tail(folder: str) -> str:
    """Return the end of a subfolder example's configuration: outcome, report, outputs, privacy."""
    return (
        '[outcomes.nrs]\ninstrument = "nrs"\n\n'
        "[report]\npdf = false  # the HTML report is enough for the example\n\n"
        "[outputs]  # under data/processed/, which git ignores\n"
        f'processed = "../../../../processed/examples/{folder}"\n'
        f'reports = "../../../../processed/examples/{folder}/reports"\n\n'
        "[privacy]\n"
        "demo_key = true  # simulated data: the public demo key is fine; never for real "
        "patients\n"
    )


def _wide_config(numbers: list[int]) -> str:
    points = "".join(f'"{p}" = {v}\n' for v, p in WIDE_POINTS.items())
    sessions = "".join(f'"{n}" = {n}\n' for n in numbers)
    columns = ", ".join(f'{c} = "s{{t}}_{c}"' for c in WIDE_SESSION)
    flags = ", ".join(f'"s{{t}}_{column}" = "{kind}"' for kind, column in FLAG_COLUMNS.items())
    severity = ", ".join(
        f'"s{{t}}_{FLAG_COLUMNS[k]}" = "s{{t}}_{c}"' for k, c in SEVERITY_COLUMNS.items()
    )
    folder = WIDE_FOLDER.replace("/", "_")
    return (
        "# A wide file (one row per patient) whose sessions record their adverse events as one\n"
        "# 0/1 column per event type, with the severity of each: {t} is the session's label.\n\n"
        '[[sources]]\nkind = "wide"\nfiles = ["wide.csv"]\n\n'
        '[sources.assessments]\ncolumns = { assessment_date = "date_{t}", nrs = "nrs_{t}" }\n\n'
        f"[sources.assessments.points]\n{points}\n"
        f"[sources.sessions]\ncolumns = {{ {columns} }}\n\n"
        f"[sources.sessions.points]\n{sessions}\n"
        "[sources.adverse_events]\n"
        f"flags = {{ {flags} }}\n"
        f"severity = {{ {severity} }}\n\n" + _tail(folder)
    )


REDCAP_FOLDER = f"{FOLDER}/redcap"
REDCAP_TYPES = {str(k): kind for k, kind in enumerate(FLAG_COLUMNS, start=1)}
DEMOGRAPHICS = ("enrolment_date", "age", "symptom_weeks")
REDCAP_EVENTS = {"0": "baseline", "1": "week_2", "2": "week_4", "3": "week_8", "4": "week_12"}


def _redcap_dictionary() -> pd.DataFrame:
    """Return the REDCap example's data dictionary.

    Demographics; a repeating needling session with a checkbox of side effects and a severity
    radio per choice (shown by branching logic); outcomes per event.
    """
    graded = _choices(dict(zip(("1", "2", "3"), (s.capitalize() for s in SEVERITIES), strict=True)))
    fields = [
        ("record_id", "demographics", "text", "Record ID", "", ""),
        ("enrolment_date", "demographics", "text", "Date of enrolment", "", ""),
        ("age", "demographics", "text", "Age (years)", "", ""),
        ("symptom_weeks", "demographics", "text", "Duration of symptoms (weeks)", "", ""),
        ("session_date", "needling_session", "text", "Date of session", "", ""),
        ("depth", "needling_session", "radio", "Needling depth", "1, Superficial | 2, Deep", ""),
        ("twitch", "needling_session", "yesno", "Local twitch response", "", ""),
        (
            "ae",
            "needling_session",
            "checkbox",
            "Side effects after the session",
            _choices({k: kind.capitalize() for k, kind in REDCAP_TYPES.items()}),
            "",
        ),
        *[
            (
                f"ae_sev_{k}",
                "needling_session",
                "radio",
                f"Severity: {kind}",
                graded,
                f"[ae({k})] = '1'",
            )
            for k, kind in REDCAP_TYPES.items()
        ],
        ("assessment_date", "outcomes", "text", "Date of assessment", "", ""),
        ("nrs", "outcomes", "text", "Pain NRS (0-10)", "", ""),
    ]
    rows = [
        dict.fromkeys(REDCAP_HEADER, "")
        | {
            "Variable / Field Name": f[0],
            "Form Name": f[1],
            "Field Type": f[2],
            "Field Label": f[3],
            "Choices, Calculations, OR Slider Labels": f[4],
            "Branching Logic (Show field only if...)": f[5],
        }
        for f in fields
    ]
    return pd.DataFrame(rows, columns=REDCAP_HEADER)


def _redcap_export(study: dict, events: pd.DataFrame) -> pd.DataFrame:
    """Return the raw export: demographics and outcomes per event, a repeating row per session."""
    codes = {kind: k for k, kind in REDCAP_TYPES.items()}
    graded = {s: str(k) for k, s in enumerate(SEVERITIES, start=1)}
    columns = ["record_id", "redcap_event_name", "redcap_repeat_instrument"]
    columns += ["redcap_repeat_instance", "redcap_data_access_group", *DEMOGRAPHICS]
    columns += ["session_date", "depth", "twitch", *(f"ae___{k}" for k in REDCAP_TYPES)]
    columns += [*(f"ae_sev_{k}" for k in REDCAP_TYPES), "assessment_date", "nrs"]
    assessed = study["assessments"].set_index([PATIENT_ID, "visit"])
    by_session = {
        key: group for key, group in events.groupby([PATIENT_ID, "session_number"], sort=False)
    }
    rows = []
    for patient in study["patients"].to_dict("records"):
        pid = patient[PATIENT_ID]
        base = {"record_id": pid, "redcap_data_access_group": patient["site"].lower()}
        for visit, event in REDCAP_EVENTS.items():
            row = {**base, "redcap_event_name": f"{event}_arm_1"}
            if visit == "0":
                row |= {c: patient[c] for c in DEMOGRAPHICS}
            if (pid, visit) in assessed.index:
                found = assessed.loc[(pid, visit)]
                row |= {"assessment_date": found["assessment_date"], "nrs": found["nrs"]}
            if visit == "0" or (pid, visit) in assessed.index:
                rows.append(row | {f"ae___{k}": "0" for k in REDCAP_TYPES})
        mine = study["sessions"][study["sessions"][PATIENT_ID] == pid]
        for session in mine.to_dict("records"):
            number = int(session["session_number"])
            row = {
                **base,
                "redcap_event_name": "baseline_arm_1",
                "redcap_repeat_instrument": "needling_session",
                "redcap_repeat_instance": str(number),
                "session_date": session["session_date"],
                "depth": {"superficial": "1", "deep": "2"}[session["depth"]],
                "twitch": {"yes": "1", "no": "0", "": ""}[session["twitch"]],
                **{f"ae___{k}": "0" for k in REDCAP_TYPES},
            }
            had = by_session.get((pid, number))
            for event in [] if had is None else had.to_dict("records"):
                code = codes[event["ae_type"]]
                row[f"ae___{code}"] = "1"
                row[f"ae_sev_{code}"] = graded[event["ae_severity"]]
            rows.append(row)
    return pd.DataFrame(rows, columns=columns).fillna("")


def _redcap_config() -> str:
    flags = ", ".join(f'ae___{k} = "{kind}"' for k, kind in REDCAP_TYPES.items())
    severity = ", ".join(f'ae___{k} = "ae_sev_{k}"' for k in REDCAP_TYPES)
    events = "".join(f"{e} = {v}\n" for v, e in REDCAP_EVENTS.items())
    sites = "".join(f'{s.lower()} = "{s}"\n' for s in (*FLAG_SITES, LIST_SITE))
    folder = REDCAP_FOLDER.replace("/", "_")
    return (
        "# A raw REDCap export whose repeating session instrument records its side effects as a\n"
        "# checkbox (one choice per type) and the severity of each ticked choice as a radio.\n\n"
        '[[sources]]\nkind = "redcap"\nfiles = ["export.csv"]\ndictionary = "dictionary.csv"\n\n'
        '[sources.instruments]\npatients = "demographics"\nsessions = "needling_session"\n'
        'assessments = "outcomes"\n\n'
        f"[sources.events]\n{events}\n"
        '[sources.columns]\npatient_id = "record_id"\nsite = "redcap_data_access_group"\n\n'
        f"[sources.codes.site]\n{sites}\n"
        "[sources.adverse_events]\n"
        "# each checkbox choice is a flag (1 when ticked); its severity radio beside it\n"
        f"flags = {{ {flags} }}\n"
        f"severity = {{ {severity} }}\n\n" + _tail(folder)
    )


def example_files(n_patients: int = AE_PATIENTS, seed: int = AE_SEED) -> dict[str, bytes]:
    """Return ``{relative path: bytes}`` of the example (pure: nothing is written)."""
    study = canonical_text(n_patients, seed)
    rows = visit_rows(study)
    truth = event_truth(n_patients, seed)
    cells = _event_cells(rows, truth)
    wide, numbers = _wide_sheet(rows, cells)
    rows["depth"] = rows["depth"].map({"superficial": "1", "deep": "2", "": ""})
    rows["visit"] = rows["visit"].map(
        {"0": "Baseline", "1": "Week 2", "2": "Week 4", "3": "Week 8", "4": "Week 12", "": ""}
    )
    rows["vas_mm"] = [f"{float(v) / 10:g}" if v else "" for v in rows["vas_mm"]]
    rows["odi"] = [f"{float(v) / 2:g}" if v else "" for v in rows["odi"]]
    for column in ("enrolment_date", "visit_date"):
        dates = pd.to_datetime(rows[column], format="%Y-%m-%d", errors="coerce")
        rows[column] = dates.dt.strftime("%d/%m/%Y").fillna("")
    sheet = rows[list(COLUMNS)].rename(columns=COLUMNS)
    flags = [*FLAG_COLUMNS.values(), *SEVERITY_COLUMNS.values()]
    by_flags = rows["site"].isin(FLAG_SITES).to_numpy()
    by_list = (rows["site"] == LIST_SITE).to_numpy()
    flag_sheet = pd.concat([sheet, cells[flags]], axis=1)[by_flags]
    list_sheet = pd.concat([sheet, cells[[LIST_COLUMN]]], axis=1)[by_list]
    return {
        f"{FOLDER}/flags.csv": _csv(flag_sheet).encode(),
        f"{FOLDER}/list.csv": _csv(list_sheet).encode(),
        f"{FOLDER}/analysis.toml": _config().encode(),
        f"{WIDE_FOLDER}/wide.csv": _csv(wide).encode(),
        f"{WIDE_FOLDER}/analysis.toml": _wide_config(numbers).encode(),
        f"{REDCAP_FOLDER}/export.csv": _csv(_redcap_export(study, truth)).encode(),
        f"{REDCAP_FOLDER}/dictionary.csv": _csv(_redcap_dictionary()).encode(),
        f"{REDCAP_FOLDER}/analysis.toml": _redcap_config().encode(),
    }


def write_example(out: Path) -> list[Path]:
    """Write the example under ``out`` (atomically, file by file) and return the paths."""
    return [outputs.write_bytes(Path(out) / name, data) for name, data in example_files().items()]


if __name__ == "__main__":
    for written in write_example(Path(sys.argv[1] if len(sys.argv) > 1 else "data/raw/examples")):
        print(f"Wrote {written}")
