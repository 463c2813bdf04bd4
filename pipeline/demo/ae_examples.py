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
    SHEET_COLUMNS,
    _csv,
    canonical_text,
    visit_rows,
)
from pipeline.demo.simulate import simulate_adverse_event_details, simulate_study
from pipeline.schemas.columns import PATIENT_ID
from pipeline.schemas.raw import AE_TYPES

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
        f"severity = {{ {severity} }}\n\n"
        '[outcomes.nrs]\ninstrument = "nrs"\n\n'
        "[report]\npdf = false  # the HTML report is enough for the example\n\n"
        "[outputs]  # under data/processed/, which git ignores\n"
        f'processed = "../../../../processed/examples/{folder}"\n'
        f'reports = "../../../../processed/examples/{folder}/reports"\n\n'
        "[privacy]\n"
        "demo_key = true  # simulated data: the public demo key is fine; never for real "
        "patients\n"
    )


def example_files(n_patients: int = AE_PATIENTS, seed: int = AE_SEED) -> dict[str, bytes]:
    """Return ``{relative path: bytes}`` of the example (pure: nothing is written)."""
    study = canonical_text(n_patients, seed)
    rows = visit_rows(study)
    cells = _event_cells(rows, event_truth(n_patients, seed))
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
    }


def write_example(out: Path) -> list[Path]:
    """Write the example under ``out`` (atomically, file by file) and return the paths."""
    return [outputs.write_bytes(Path(out) / name, data) for name, data in example_files().items()]


if __name__ == "__main__":
    for written in write_example(Path(sys.argv[1] if len(sys.argv) > 1 else "data/raw/examples")):
        print(f"Wrote {written}")
