"""Small synthetic studies for the tests, written as raw CSV text exactly as clinics would."""

from __future__ import annotations

from pathlib import Path

from pipeline.demo.example_sources import MCID

PATIENTS = """patient_id,site,enrolment_date,age,sex,symptom_weeks,anticoagulants,protocol_deviation
P1,Northside,2025-01-06,44,female,3,no,no
P2,Northside,2025-01-06,61,male,30,yes,no
P3,Riverside,2025-01-13,38,female,8,no,yes
"""

SESSIONS = """patient_id,session_number,session_date,depth,twitch,ltr_count,adverse_event,ae_severity
P1,1,2025-01-06,deep,yes,2,soreness,mild
P1,2,2025-01-13,deep,no,0,none,
P2,1,2025-01-07,superficial,no,0,none,
P2,2,2025-01-14,superficial,yes,1,none,
P2,3,2025-01-21,superficial,no,,bruising,moderate
P3,1,2025-01-13,deep,,3,none,
"""

ASSESSMENTS = """patient_id,visit,assessment_date,nrs,vas_mm,odi,odi_q1,odi_q2,odi_q3,odi_q4,odi_q5,odi_q6,odi_q7,odi_q8,odi_q9,odi_q10
P1,0,2025-01-06,8,75,,2,2,2,2,2,2,2,2,2,2
P1,1,2025-01-13,6,60,,1,1,1,1,1,1,1,,1,1
P1,2,2025-01-20,4,40,,1,1,1,1,1,1,1,,,1
P2,0,2025-01-07,6,55,42,,,,,,,,,,
P2,1,2025-01-21,6,52,,,,,,,,,,,
P3,0,2025-01-13,7,,,,,,,,,,,,
"""

TABLES = {"patients": PATIENTS, "sessions": SESSIONS, "assessments": ASSESSMENTS}
DEMO = Path(__file__).resolve().parents[1] / "data" / "raw" / "demo"
DEMO_INPUTS = {name: DEMO / f"{name}.csv" for name in TABLES}
"""The committed demo study (240 patients, 10 deliberately bad rows): table -> CSV path."""


def write_study(folder: Path, **overrides: str) -> dict[str, Path]:
    """Write the three CSVs (``overrides`` replaces a table's text) and return their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, text in {**TABLES, **overrides}.items():
        path = folder / f"{name}.csv"
        path.write_text(text, encoding="utf-8")
        paths[name] = path
    return paths


def append_rows(table: str, *rows: str) -> str:
    """Return the text of ``table`` with ``rows`` appended (one CSV line each)."""
    return TABLES[table] + "".join(row + "\n" for row in rows)


def outputs_and_mcid(processed: str | Path, reports: str | Path) -> str:
    """Return the ``[outputs]`` section and the plan's ``[mcid.*]`` sections as TOML text."""
    return f'\n[outputs]\nprocessed = "{processed}"\nreports = "{reports}"\n' + MCID


def write_config(folder: Path, inputs: dict[str, Path], **sections: str) -> Path:
    """Write an analysis TOML for ``inputs`` with outputs inside ``folder``; return its path."""
    text = "[inputs]\n" + "".join(f'{k} = "{v}"\n' for k, v in inputs.items())
    text += outputs_and_mcid(folder / "processed", folder / "reports")
    for name, body in sections.items():
        text += f"[{name}]\n{body}\n"
    path = folder / "analysis.toml"
    path.write_text(text, encoding="utf-8")
    return path


def optional_columns_of(table: str) -> list[str]:
    """The columns of a canonical table that a source may leave out."""
    from pipeline.ingest.recorded import optional_columns

    return list(optional_columns(table))


# Optional columns an outcome study cannot do without: a twitch record (twitch or ltr_count)
# and at least one outcome.
KEPT_OPTIONAL = {"sessions": ("twitch",), "assessments": ("nrs",)}


def write_demo_without(
    folder: Path, drop: dict[str, list[str]] | None = None, patients: set[str] | None = None
) -> dict[str, Path]:
    """Write the demo study without some columns (default: every optional column it can lose).

    ``drop`` maps a table to the columns to leave out; ``patients`` keeps only those patients.
    Returns ``{table: path}``.
    """
    import pandas as pd

    if drop is None:
        drop = {
            t: [c for c in optional_columns_of(t) if c not in KEPT_OPTIONAL.get(t, ())]
            for t in TABLES
        }
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, source in DEMO_INPUTS.items():
        frame = pd.read_csv(source, dtype=str, keep_default_na=False)
        if patients is not None:
            frame = frame[frame["patient_id"].isin(patients)]
        if "timing" in drop.get(name, []) and "visit" in frame:
            # the demo's pre/post-session rows exist only with their timing (no visit number)
            frame = frame[frame["visit"] != ""]
        frame = frame.drop(columns=[c for c in drop.get(name, []) if c in frame])
        paths[name] = folder / f"{name}.csv"
        frame.to_csv(paths[name], index=False)
    return paths


def write_two_clinics(
    folder: Path, drop: dict[str, list[str]], keep: set[str] | None = None
) -> Path:
    """Write the demo as two clinics' sources; the second (all but Northside) lacks ``drop``.

    ``keep`` keeps only those patients of the demo.

    Returns the path of an analysis TOML with one ``[[sources]]`` entry per clinic.
    """
    import pandas as pd

    patients = pd.read_csv(DEMO_INPUTS["patients"], dtype=str, keep_default_na=False)
    if keep is not None:
        patients = patients[patients["patient_id"].isin(keep)]
    north = set(patients.loc[patients["site"] == "Northside", "patient_id"])
    rest = set(patients["patient_id"]) - north
    first = write_demo_without(folder / "north", {}, north)
    second = write_demo_without(folder / "south", drop, rest)
    text = ""
    for paths in (first, second):
        text += '[[sources]]\nkind = "canonical"\n'
        text += "".join(f'{k} = "{v}"\n' for k, v in paths.items()) + "\n"
    text += outputs_and_mcid(folder / "processed", folder / "reports")
    path = folder / "analysis.toml"
    path.write_text(text, encoding="utf-8")
    return path
