"""A canonical source's files read straight into types give exactly what the text route gives.

The text route reads every cell as text, maps and normalises it, and validation parses it; the
typed route (:mod:`pipeline.ingest.adapters.typed_canonical`) parses the cells while reading
and normalises only the text columns. Every output of validation is compared: valid rows,
quarantined rows as text, failures, the row accounting, what each file recorded, blanked
cells, the per-file summary and the provenance of every row.
"""

from pathlib import Path

import pandas as pd
import pytest
from factories import outputs_and_mcid

import pipeline.ingest.adapters.canonical
from pipeline.config.settings import load_config
from pipeline.ingest.combine import read_sources
from pipeline.ingest.raw_tables import SOURCE_ROW
from pipeline.schemas.raw import TABLES
from pipeline.validate.quality import blanked_cells, file_summary
from pipeline.validate.study import validate_study

EXAMPLES = Path(__file__).resolve().parents[2] / "data" / "raw" / "examples"

# One clinic's export: its own column names, an unmapped column, ids and codes to normalise,
# a German missing-value word, a blank line, and rows that break rules in every table.
PATIENTS = """\
Patient,enrolment_date,age,sex,symptom_weeks,anticoagulants,notes
p-1,2025-01-06,44,Female,3,no,first
P 2,2025-01-06,61,MALE,k.A.,yes,
p3,2025-01-13,38,female,8,No,

p_4,2025-01-13,130,female,8,no,too old
P5,2025-01-14,50,divers,4,no,unknown sex
"""
SESSIONS = """\
Patient,session_number,session_date,depth,twitch,ltr_count,adverse_event,ae_severity
p1,1,2025-01-06,Deep,Yes,2,Soreness,mild
P1,2,2025-01-13,deep,no,0,none,
p2,1,2025-01-07,Superficial,no,0,none,
P2,2,2025-01-14,MEDIUM,yes,1,none,
P9,1,2025-01-14,deep,yes,1,none,
P3,1,2099-01-13,deep,,3,none,
"""
ASSESSMENTS = """\
Patient,visit,assessment_date,nrs,vas_mm,odi,odi_q1,odi_q2
p1,0,2025-01-06,8,75,,2,2
P1,1,2025-01-13,11,60,,1,1
p-2,0,2025-01-07,6,55,42,,
P2,1,2025-01-21,,,,,
P9,0,2025-01-07,6,55,42,,
P3,0,2025-01-13,7,,,,
"""
FILES = {"patients.csv": PATIENTS, "sessions.csv": SESSIONS, "assessments.csv": ASSESSMENTS}


def _one_clinic(keys: str = "", tables: str = "") -> str:
    """The clinic's source entry, with more ``keys`` and ``tables`` of settings."""
    return (
        '[[sources]]\nkind = "canonical"\nsite = "Northside"\nid_prefix = "N-"\n'
        'patients = "patients.csv"\nsessions = "sessions.csv"\nassessments = "assessments.csv"\n'
        + keys
        + '[sources.columns]\npatient_id = "Patient"\n'
        + tables
    )


# Two clinics by glob, a site per file; the north's session log lacks ltr_count.
TWO_CLINICS = """\
[[sources]]
kind = "canonical"
patients = "*/patients.csv"
sessions = "*/sessions.csv"
assessments = "*/assessments.csv"
[sources.sites]
"north/patients.csv" = "Northside"
"south/patients.csv" = "Southside"
"""


def _write(folder: Path, sources: str, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    config = folder / "analysis.toml"
    config.write_text(sources + outputs_and_mcid("out", "rep"), encoding="utf-8")
    return config


def _outputs(config: Path) -> tuple[dict, dict]:
    settings = load_config(config)
    raw = read_sources(settings.sources)
    validation = validate_study(raw, settings.study.ranges())
    summary, reasons = file_summary(raw, validation)
    found = {
        "failures": validation.failures.sort_values([SOURCE_ROW, "table", "column", "check"]),
        "accounting": validation.accounting,
        "recorded": validation.recorded,
        "blanked": blanked_cells(raw, validation),
        "summary": summary,
        "reasons": reasons,
    }
    for name in TABLES:
        found[f"{name} valid"] = validation.tables[name].valid
        found[f"{name} quarantine"] = validation.tables[name].quarantine
        provenance = raw[name].provenance()
        found[f"{name} provenance"] = provenance[sorted(provenance.columns)]
    return raw, found


def _both_routes(config: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[dict, dict, int]:
    taken = []
    typed_file = pipeline.ingest.adapters.canonical.read_typed_file

    def counted(*args):
        found = typed_file(*args)
        taken.append(found is not None)
        return found

    with monkeypatch.context() as patch:
        patch.setattr(pipeline.ingest.adapters.canonical, "read_typed_file", counted)
        raw, typed = _outputs(config)
    with monkeypatch.context() as patch:
        patch.setattr(pipeline.ingest.adapters.canonical, "read_typed_file", lambda *a: None)
        _, text = _outputs(config)
    for key, frame in text.items():
        pd.testing.assert_frame_equal(
            typed[key].reset_index(drop=True), frame.reset_index(drop=True), obj=key
        )
    return raw, typed, sum(taken)


def test_one_clinic_with_text_to_normalise_and_rows_to_quarantine(tmp_path, monkeypatch):
    raw, found, typed_files = _both_routes(_write(tmp_path, _one_clinic(), FILES), monkeypatch)
    assert typed_files == 3
    assert all(raw[name].typed is not None for name in TABLES)  # the typed route throughout
    # The cases are really there: ids normalised and prefixed, codes folded, rows quarantined
    # (shown as the text route normalises them) and a score cell blanked.
    assert found["patients valid"]["patient_id"].tolist() == ["N-P1", "N-P2", "N-P3"]
    assert found["patients valid"]["sex"].tolist() == ["female", "male", "female"]
    assert found["patients quarantine"]["patient_id"].tolist() == ["N-P4", "N-P5"]
    assert "medium" in found["sessions quarantine"]["depth"].tolist()
    assert len(found["sessions quarantine"]) == 3  # MEDIUM, patient P9, the date in 2099
    assert found["blanked"]["column"].tolist() == ["nrs"]
    assert found["patients valid"]["symptom_weeks"].isna().tolist() == [False, True, False]


def _clinic(text: str, prefix: str, drop: int | None = None) -> str:
    """A clinic's file: ``patient_id`` in the header, ids starting with ``prefix``."""
    lines = text.replace("Patient", "patient_id").splitlines()
    out = [lines[0]] + [prefix + line[1:] if line else line for line in lines[1:]]
    if drop is not None:
        out = [",".join(c for k, c in enumerate(line.split(",")) if k != drop) for line in out]
    return "\n".join(out) + "\n"


def test_two_clinics_by_glob_with_a_site_per_file(tmp_path, monkeypatch):
    files = {}
    for clinic, prefix in (("north", "A"), ("south", "B")):
        files[f"{clinic}/patients.csv"] = _clinic(PATIENTS, prefix)
        # the north's session log has no ltr_count (the 6th column)
        drop = 5 if clinic == "north" else None
        files[f"{clinic}/sessions.csv"] = _clinic(SESSIONS, prefix, drop)
        files[f"{clinic}/assessments.csv"] = _clinic(ASSESSMENTS, prefix)
    raw, found, typed_files = _both_routes(_write(tmp_path, TWO_CLINICS, files), monkeypatch)
    assert typed_files == 6
    assert all(raw[name].typed is not None for name in TABLES)
    quarantine = found["sessions quarantine"]
    assert set(quarantine["source_file"]) == {"north/sessions.csv", "south/sessions.csv"}
    recorded = found["recorded"].query("column == 'ltr_count' and table == 'sessions'")
    assert recorded.set_index("source_file")["recorded"].to_dict() == {
        "north/sessions.csv": False,
        "south/sessions.csv": True,
    }


def test_clinics_example_whose_settings_keep_every_table_on_the_text_route(monkeypatch):
    # Riverside writes decimal commas (and dates as DD.MM.YYYY), so no table of the example
    # may be read typed: Northside's files are not read typed first only to be read again.
    _, _, typed_files = _both_routes(EXAMPLES / "clinics" / "analysis.toml", monkeypatch)
    assert typed_files == 0


@pytest.mark.parametrize(
    ("keys", "tables", "declined"),
    [
        ("", '[sources.units]\nvas_mm = "cm"\n', "assessments"),  # x 10
        ("", "[sources.shift]\nvisit = 1\n", "assessments"),
        ("", '[sources.codes.twitch]\n"no" = "yes"\n', "sessions"),  # a code list on yes/no
        ('date_format = "YYYY-DD-MM"\n', "", "all"),  # 2025-01-06 is the 1st of June
        ('decimal = ","\n', "", "all"),
    ],
)
def test_settings_that_change_cells_other_than_text_decline_the_typed_route(
    tmp_path, monkeypatch, keys, tables, declined
):
    config = _write(tmp_path, _one_clinic(keys, tables), FILES)
    raw, _, _ = _both_routes(config, monkeypatch)
    typed = {name for name in TABLES if raw[name].typed is not None}
    assert typed == (set() if declined == "all" else set(TABLES) - {declined})


@pytest.mark.parametrize(
    ("delimiter", "line_end", "bom", "preamble", "encoding"),
    [
        (";", "\r\n", True, 0, "utf-8"),  # Excel's CSV on Windows
        ("\t", "\n", False, 2, "utf-8"),  # two lines above the header
        (",", "\n", False, 0, "cp1252"),
        ("|", "\r\n", False, 1, "utf-8"),
    ],
)
def test_the_file_layouts_a_source_may_declare_read_alike_on_both_routes(
    tmp_path, monkeypatch, delimiter, line_end, bom, preamble, encoding
):
    for name, text in FILES.items():
        lines = [f"exported {k}" for k in range(preamble)]
        lines += [line.replace(",", delimiter) for line in text.splitlines()]
        data = (line_end.join(lines) + line_end).encode(encoding)
        (tmp_path / name).write_bytes(b"\xef\xbb\xbf" + data if bom else data)
    keys = f'delimiter = "{delimiter}"\nencoding = "{encoding}"\nheader_row = {preamble + 1}\n'
    config = _write(tmp_path, _one_clinic(keys.replace("\t", "\\t")), {})
    raw, _, typed_files = _both_routes(config, monkeypatch)
    assert typed_files == 3
    assert all(raw[name].typed is not None for name in TABLES)


def test_a_clinic_on_the_text_route_turns_its_tables_to_text_for_the_other_too(
    tmp_path, monkeypatch
):
    # The first clinic's files take the typed route; the second writes yes/no in German, so
    # its files take the text route, and every table is joined as text: the first clinic's
    # rows then come from reading its files again, whole (its k.A. still missing).
    files = {**FILES}
    for name, text in FILES.items():
        german = text.replace(",no,", ",nein,").replace(",yes,", ",ja,").replace(",No,", ",Nein,")
        header, *rows = german.splitlines()
        files[f"south/{name}"] = (
            "\n".join([header] + ["S" + row[1:] if row else row for row in rows]) + "\n"
        )
    south = (
        '[[sources]]\nkind = "canonical"\nsite = "Southside"\n'
        'patients = "south/patients.csv"\nsessions = "south/sessions.csv"\n'
        'assessments = "south/assessments.csv"\n'
        '[sources.columns]\npatient_id = "Patient"\n'
    )
    raw, found, typed_files = _both_routes(
        _write(tmp_path, _one_clinic() + south, files), monkeypatch
    )
    assert typed_files == 4  # the first clinic's three files, and the south's assessments
    assert [raw[name].typed is None for name in TABLES] == [True, True, False]
    valid = found["patients valid"].set_index("patient_id")
    assert valid["symptom_weeks"].isna().sum() == 2  # k.A. in each clinic
    assert valid.loc[["S1", "S2", "S3"], "anticoagulants"].tolist() == [False, True, False]
