"""The demo report as `make report` writes it: privacy of the outputs, the browser and the PDF.

The pipeline runs once on the demo data (module fixture). Tests of what happens when a later
step fails, or when no browser is found, run the pipeline again with the model fits of that run
(the report stage is what they test).
"""

from __future__ import annotations

import html as html_text
import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pypdfium2 as pdfium
import pytest
from browser import load_page
from factories import DEMO_INPUTS, write_config

from pipeline import cli, outputs, runner
from pipeline.config.settings import load_config

ROOT = Path(__file__).resolve().parents[2]
SECTIONS = (
    "The answer",
    "Behind the answer",
    "Provenance",
    "Data",
    "Table 1: baseline characteristics",
    "Outcomes",
    "Responders",
    "Safety",
    "Methods",
)
# published count columns: none may hold a count from 1 to 4
# counts of patients by a characteristic, outcome or event (suppressed from 1 to 4)
COUNTS = {
    "table_one": ["n"],
    "mean_by_visit": ["n"],
    "responders": ["n", "responders"],
    "adverse_event_rates": ["events"],
    "adverse_event_rate_ratio": ["events", "ref_events"],
}
# overall totals and row counts of files: never suppressed
NEVER_HIDDEN = {
    "row_accounting": ["raw_rows", "processed_rows", "quarantined_rows"],
    "quarantine_reasons": ["rows"],
    "flow": ["patients"],
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
        for column in NEVER_HIDDEN.get(path.stem, []):
            assert pd.to_numeric(frame[column], errors="coerce").notna().all(), path.name
    flow = pd.read_csv(tables / "flow.csv").set_index("step")["patients"]
    assert flow["enrolled"] == 241 and flow["excluded"] == 1  # the demo's patient without a site


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


def _page_text(page) -> list[str]:
    return [line.strip() for line in page.get_textpage().get_text_bounded().splitlines()]


def _font_sizes(page) -> list[float]:
    """Printed size in pt of every visible character (font size × the text matrix's scale)."""
    import ctypes

    import pypdfium2.raw as raw

    text = page.get_textpage()
    matrix = raw.FS_MATRIX()
    sizes = []
    for k in range(text.count_chars()):
        if chr(raw.FPDFText_GetUnicode(text.raw, k)).isspace():
            continue
        raw.FPDFText_GetMatrix(text.raw, k, ctypes.byref(matrix))
        scale = (matrix.a**2 + matrix.b**2) ** 0.5
        sizes.append(raw.FPDFText_GetFontSize(text.raw, k) * scale)
    return sizes


def test_pdf_prints_at_readable_sizes_with_page_numbers_and_no_half_empty_page(demo):
    pdf = pdfium.PdfDocument(demo.folder / "reports" / "outcomes.pdf")
    try:
        pages = len(pdf)
        texts = [_page_text(pdf[i]) for i in range(pages)]
        for index in range(pages):
            page = pdf[index]
            assert f"page {index + 1} of {pages}" in texts[index], index + 1
            sizes = np.round(_font_sizes(page), 1)
            # tables, notes and the page number at 8 pt or more; body text at 9.5 pt
            assert sizes.min() >= 8.0, (index + 1, sizes.min())
            # no page less than half filled, unless a section starts on the next one
            if index + 1 < pages:
                following = [t for t in texts[index + 1] if t and not t.startswith("page ")]
                if re.match(r"^\d+\. \S", following[0]):
                    continue
                pixels = np.asarray(page.render(scale=0.5, grayscale=True).to_pil())
                body = pixels[: int(pixels.shape[0] * (1 - 18 / 297))]  # above the footer
                inked = np.flatnonzero((body < 200).any(axis=1))
                assert inked.max() / body.shape[0] > 0.5, f"page {index + 1} is half empty"
        body_sizes = np.round(np.concatenate([_font_sizes(pdf[0])]), 1)
        # the answer page's sentences at 9.5 pt (its verdict rows are a table, at 8.5 pt)
        assert (body_sizes == 9.5).mean() > 0.2
        assert set(body_sizes[body_sizes < 9.5]) <= {8.0, 8.5}
    finally:
        pdf.close()
    # page 1 gives the answer to both questions
    first = " ".join(texts[0])
    assert "1. The answer" in first and "Question 1. Twitch response" in first
    assert "Question 2. Needling depth" in first


def test_the_answer_page_ends_on_page_1(demo):
    """Every block of the answer section prints on page 1; page 2 opens with what follows."""
    html = (demo.folder / "reports" / "outcomes.html").read_text(encoding="utf-8")
    start = html.index('<section id="answer">')
    section = html[start : html.index("</section>", start)]
    section = re.sub(r"<img [^>]*>", "", section)  # the figure: its caption is checked
    shown = re.sub(r"<caption>.*?</caption>", "", section, flags=re.S)  # verdicts': not printed
    words = html_text.unescape(re.sub(r"<[^>]+>", " ", shown)).split()
    pdf = pdfium.PdfDocument(demo.folder / "reports" / "outcomes.pdf")
    try:
        first, second = (_page_text(pdf[i]) for i in (0, 1))
    finally:
        pdf.close()
    printed = " ".join(t for t in first if t and not t.startswith("page ")).split()
    # the answer section's last words (the figure's caption) are the last words of page 1
    tail = words[-8:]
    assert printed[-8:] == tail, printed[-8:]
    following = [t for t in second if t and not t.startswith("page ")]
    # page 2: the contents list (moved off page 1 in print), then the next section
    assert following[0] == "Contents", following[:3]
    assert "2. Behind the answer" in following


def test_the_demo_answer_says_no_detectable_twitch_effect_and_places_depth_against_the_mcid(
    demo,
):
    answer = pd.read_csv(demo.folder / "reports" / "tables" / "answer.csv")
    top = answer[answer["role"] == "headline"].set_index(["question", "outcome"])
    # the simulator's truth: no twitch effect (pipeline/demo/simulate.py)
    assert set(top.loc["twitch", "estimand"]) == {"within_patient"}
    assert (top.loc["twitch", "ci_low"] < 0).all() and (top.loc["twitch", "ci_high"] > 0).all()
    # true depth effect -0.10 NRS points per week, about 1.2 points at week 12: below the MCID
    assert set(top.loc["depth", "verdict"]) == {"below_mcid"}
    assert top.loc[("depth", "nrs"), "improvement"] == pytest.approx(1.2, abs=0.3)
    html = (demo.folder / "reports" / "outcomes.html").read_text(encoding="utf-8")
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))
    for words in ("NRS pain", "VAS pain", "ODI disability"):
        assert f"{words}: no detectable twitch effect" in text, words
        assert f"{words}: detectable depth effect, but smaller than the MCID" in text, words
    assert "No detectable twitch effect on any outcome." in text


def test_a_headline_estimate_has_one_holm_p_in_every_table(demo):
    """answer.csv and contrasts.csv share one Holm family (SAP §4), each naming it."""
    tables = demo.folder / "reports" / "tables"
    answer = pd.read_csv(tables / "answer.csv")
    contrasts = pd.read_csv(tables / "contrasts.csv")
    keys = ["analysis", "outcome", "p_value"]
    top = answer[answer["family"] == "primary"]
    primary = contrasts[contrasts["family"] == "primary"]
    assert (top["role"] == "headline").all() and len(top) == len(primary) == 6
    both = top.merge(primary, on=keys, suffixes=("_answer", "_contrasts"), validate="1:1")
    assert len(both) == 6  # every headline is a contrast row of the family, and back
    np.testing.assert_array_equal(both["p_holm_answer"], both["p_holm_contrasts"])
    # the unadjusted twitch comparison is outside the family in both tables
    unadjusted = answer[answer["role"] == "unadjusted"]
    assert (unadjusted["family"] == "secondary").all() and unadjusted["p_holm"].isna().all()
    slopes = contrasts[contrasts["analysis"] == "trajectory_twitch"]
    assert (slopes["family"] == "secondary").all()


def test_the_html_speaks_plainly(demo):
    html = (demo.folder / "reports" / "outcomes.html").read_text(encoding="utf-8")
    shown = re.sub(r"<img [^>]*>", "", html)  # figures: their alt text is checked elsewhere
    for jargon in (
        "[T.",  # formula notation of model terms
        "numpy-",  # optimiser route names
        "lbfgsb",
        "less_than_or_equal_to",  # data-contract check names
        "greater_than_or_equal_to",
        "not_nullable",
        "isin(",
        "str_matches",
        "primary family",  # the unadjusted comparison was once drawn as "primary"
        "Pipeline commit unknown",
    ):
        assert jargon not in shown, jargon


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
    with outputs.OutputSet(reports, "an older run") as older:  # an earlier set, with a PDF
        older.write_bytes("outcomes.pdf", b"%PDF- an older report")
        older.commit("2025-01-01T00:00:00+00:00")
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
