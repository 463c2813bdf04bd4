"""The demo report as `make report` writes it: privacy of the outputs, the browser and the PDF.

The pipeline runs once on the demo data (module fixture). Tests of what happens when a later
step fails, or when no browser is found, run the pipeline again with the model fits of that run
(the report stage is what they test).
"""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pypdfium2 as pdfium
import pytest
from browser import load_page
from factories import DEMO_INPUTS, write_config

from pipeline import cli, runner
from pipeline.config.settings import load_config

ROOT = Path(__file__).resolve().parents[2]
SECTIONS = (
    "Summary",
    "Provenance",
    "Data",
    "Table 1: baseline characteristics",
    "Outcomes",
    "Responders",
    "Safety",
    "Methods",
)
# published count columns: none may hold a count from 1 to 4
COUNTS = {
    "row_accounting": ["raw_rows", "processed_rows", "quarantined_rows"],
    "quarantine_reasons": ["rows"],
    "flow": ["patients"],
    "table_one": ["n"],
    "mean_by_visit": ["n"],
    "responders": ["n", "responders"],
    "adverse_event_rates": ["sessions", "events", "not_recorded"],
    "adverse_event_rate_ratio": ["events", "sessions", "ref_events", "ref_sessions"],
    "diagnostics": ["n_obs", "n_patients"],
}


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    folder = tmp_path_factory.mktemp("demo-report")
    config = load_config(write_config(folder, DEMO_INPUTS))
    fitted = {}
    real = runner.run_analyses

    def keep(*args, **kwargs):
        fitted["results"] = real(*args, **kwargs)
        return fitted["results"]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(runner, "run_analyses", keep)
        result = runner.run(config, project_root=ROOT)
    return SimpleNamespace(folder=folder, config=config, result=result, fits=fitted["results"])


def reuse_fits(monkeypatch, demo):
    monkeypatch.setattr(runner, "run_analyses", lambda *args, **kwargs: demo.fits)


def test_processed_data_carry_pseudonyms_and_days_not_ids_and_dates(demo):
    raw_ids = set(pd.read_csv(DEMO_INPUTS["patients"], dtype=str)["patient_id"].dropna())
    processed = demo.folder / "processed"
    pseudonyms = set()
    for name in ("patients", "sessions", "assessments", "analysis"):
        frame = pd.read_parquet(processed / f"{name}.parquet")
        assert "patient_id" not in frame and "pseudonym" in frame, name
        assert not any(pd.api.types.is_datetime64_any_dtype(frame[c]) for c in frame), name
        assert not set(frame["pseudonym"]) & raw_ids
        pseudonyms |= set(frame["pseudonym"])
    sessions = pd.read_parquet(processed / "sessions.parquet")
    assert (sessions["session_day"] >= 0).all()  # days since the baseline assessment
    patients = pd.read_parquet(processed / "patients.parquet")
    assert pseudonyms == set(patients["pseudonym"])  # one pseudonym per patient, everywhere
    # the quarantine keeps the raw rows, identifiers included, for the data manager
    quarantine = pd.read_csv(processed / "quarantine" / "sessions.csv", dtype=str)
    raw_sessions = pd.read_csv(DEMO_INPUTS["sessions"], dtype=str)
    assert len(quarantine) == 3
    assert set(quarantine["patient_id"]) <= set(raw_sessions["patient_id"])
    assert set(quarantine["session_date"]) <= set(raw_sessions["session_date"])


def test_published_tables_hold_no_identifier_and_no_small_count(demo):
    raw_ids = set(pd.read_csv(DEMO_INPUTS["patients"], dtype=str)["patient_id"].dropna())
    tables = demo.folder / "reports" / "tables"
    for path in sorted(tables.glob("*.csv")):
        text = path.read_text()
        assert not set(re.findall(r"[A-Za-z0-9]+", text)) & raw_ids, path.name
        columns = COUNTS.get(path.stem, [])
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        for column in columns:
            values = pd.to_numeric(frame[column], errors="coerce")
            assert not values.between(1, 4).any(), f"{path.name}: {column}"
    flow = pd.read_csv(tables / "flow.csv").set_index("step")["patients"]
    assert flow["excluded"] == "<5"  # the demo's one patient without a site


def test_report_loads_in_chromium_without_errors_and_shows_every_figure(demo, chromium):
    html = demo.folder / "reports" / "outcomes.html"
    page = load_page(chromium, html.as_uri())
    assert page.errors == []
    assert page.figures >= 8 and len(page.images) == page.figures
    for image in page.images:
        assert image["alt"], image
        assert image["complete"] and image["width"] > 100 and image["height"] > 100, image
        assert image["shown"] and image["figure"], image


def test_pdf_has_a4_pages_none_blank_and_every_section(demo, chromium):
    assert demo.result.pdf_problem is None
    pdf = pdfium.PdfDocument(demo.folder / "reports" / "outcomes.pdf")
    try:
        pages = len(pdf)
        assert 8 <= pages <= 60, pages
        text = ""
        for index in range(pages):
            page = pdf[index]
            width, height = page.get_size()
            assert (round(width), round(height)) in ((595, 842), (595, 841)), (width, height)
            pixels = np.asarray(page.render(scale=0.5, grayscale=True).to_pil())
            inked = (pixels < 200).mean()
            assert inked > 0.003, f"page {index + 1} is blank ({inked:.4f} inked)"
            text += page.get_textpage().get_text_bounded() + "\n"
    finally:
        pdf.close()
    for section in SECTIONS:
        assert section in text, section


def test_a_failing_later_step_leaves_the_previous_report_in_place(demo, monkeypatch):
    reports = demo.folder / "reports"
    before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in reports.rglob("*") if p.is_file()}
    assert reports / "outcomes.html" in before and reports / "tables" / "flow.csv" in before
    reuse_fits(monkeypatch, demo)

    def broken(content):
        raise RuntimeError("the template broke")

    monkeypatch.setattr(runner, "render_html", broken)
    with pytest.raises(RuntimeError, match="the template broke"):
        runner.run(demo.config, project_root=ROOT)
    after = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in reports.rglob("*") if p.is_file()}
    assert after == before


def test_without_a_browser_the_html_is_written_and_run_exits_2(demo, tmp_path, monkeypatch, capsys):
    reuse_fits(monkeypatch, demo)
    monkeypatch.setattr("pipeline.report.pdf.find_browser", lambda *args, **kwargs: None)
    config = write_config(tmp_path, DEMO_INPUTS)
    reports = tmp_path / "reports"
    reports.mkdir()
    (reports / "outcomes.pdf").write_bytes(b"%PDF- an older report")
    assert cli.main(["run", "--config", str(config)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and err.count("\n") == 0
    assert "outcomes.pdf was not written: no Chromium browser was found" in err
    assert "apt-get install chromium" in err
    assert (reports / "outcomes.html").is_file()
    assert not (reports / "outcomes.pdf").exists()  # no PDF of an older run next to the HTML


def test_a_run_without_a_pseudonym_key_is_one_sentence(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("NEEDLING_PSEUDONYM_KEY")
    config = write_config(tmp_path, DEMO_INPUTS)
    assert cli.main(["validate", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert (
        err.startswith("error: no pseudonym key: set the environment variable")
        and err.count("\n") == 1
    )
    assert not (tmp_path / "processed" / "patients.parquet").exists()
