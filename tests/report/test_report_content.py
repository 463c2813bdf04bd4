import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import report_tables
from factories import write_config, write_study

from pipeline.config.settings import load_config
from pipeline.ingest.combine import read_sources
from pipeline.ingest.raw_tables import read_raw_tables, sha256_of
from pipeline.privacy.suppression import publish_tables
from pipeline.report import provenance
from pipeline.report.content import build_content
from pipeline.report.html import Figure, Paragraph, Table, render_html
from pipeline.report.sections.common import QUESTIONS, analysis_label
from pipeline.report.sections.summary import mcid_sentence, slope_sentence

ROOT = Path(__file__).resolve().parents[2]
DEPTH = next(q for q in QUESTIONS if q.factor == "depth")
TWITCH = next(q for q in QUESTIONS if q.factor == "twitch")


@pytest.fixture(scope="module")
def setting(tmp_path_factory):
    folder = tmp_path_factory.mktemp("report")
    paths = write_study(folder / "raw")
    config = load_config(write_config(folder, paths))
    return config, read_raw_tables(paths)


def build(setting, tables, **extra):
    config, raw = setting
    published = publish_tables(tables, config.privacy.small_cell_threshold)
    run = provenance.collect(config, raw, ROOT, "environment variable X")
    return build_content(config, published, run, **extra)


def blocks(content, section_id):
    section = next(s for s in content.sections if s.id == section_id)
    return section.blocks


def text_of(content, section_id) -> str:
    out = []
    for b in blocks(content, section_id):
        if isinstance(b, Paragraph):
            out.append(b.text)
        elif isinstance(b, Table):
            out += [" | ".join(r) for r in b.rows]
    return "\n".join(out)


def test_every_section_is_filled_in_reading_order(setting):
    rng = np.random.default_rng(1)
    fitted = rng.normal(5, 1, 200)
    content = build(
        setting,
        report_tables.run_tables(),
        residuals={("trajectory_depth", "nrs"): (fitted, rng.normal(0, 1, 200))},
        formulas={("trajectory_depth", "nrs"): "nrs ~ weeks * depth + (1 + weeks | patient)"},
    )
    assert [s.id for s in content.sections] == [
        "summary",
        "provenance",
        "data",
        "table-one",
        "outcomes",
        "responders",
        "safety",
        "sensitivity",
        "diagnostics",
        "methods",
        "appendix",
    ]
    for section in content.sections:
        assert section.blocks, section.id
    figures = [b for s in content.sections for b in s.blocks if isinstance(b, Figure)]
    anchors = {f.anchor for f in figures}
    assert {"flow", "trajectories-depth", "trajectories-twitch", "forest-depth"} <= anchors
    assert "residuals-trajectory_depth-nrs" in anchors
    assert all(f.alt and f.png.startswith(b"\x89PNG") for f in figures)


def test_summary_answers_both_questions_from_the_primary_family(setting):
    content = build(setting, report_tables.run_tables())
    summary = text_of(content, "summary")
    assert (
        "NRS pain fell faster with deep needling than with superficial needling: by 0.102 points "
        "per week more (95 % CI 0.064 to 0.140; Holm-adjusted p < 0.001)."
    ) in summary
    # 12 weeks to the last visit: -0.102 * 12 = -1.2 (CI -1.7 to -0.8), below the 2-point MCID
    assert "Over 12 weeks that adds up to −1.2 points (95 % CI −1.7 to −0.8)" in summary
    assert "2 points or 30 % of baseline, and the whole interval is smaller than that" in summary
    assert "Adjusted for depth (joint model): +0.003 points per week" in summary
    assert "VAS pain: no clear difference in the rate of change" in summary  # twitch, VAS
    assert "Holm-adjusted p = 0.150" in summary
    assert "2.31 times as frequent after deep as after superficial sessions" in summary


def test_fit_flags_stand_next_to_the_estimates_they_affect(setting):
    content = build(setting, report_tables.run_tables())
    tables = [b for b in blocks(content, "outcomes") if isinstance(b, Table)]
    twitch = next(t for t in tables if t.caption == "Contrasts: twitch − no twitch")
    fit = twitch.header.index("Fit")
    flagged = {r[fit] for r in twitch.rows if r[1] == "VAS (mm)"}
    assert flagged == {"boundary fit; random slope dropped"}
    assert {r[fit] for r in twitch.rows if r[1] == "NRS"} == {"ok"}
    diagnostics = text_of(content, "diagnostics")
    assert "ConvergenceWarning: The MLE may be on the boundary" in diagnostics


def test_sections_whose_tables_are_missing_are_left_out(setting):
    content = build(setting, report_tables.run_tables(today_only=True))
    ids = [s.id for s in content.sections]
    assert "sensitivity" not in ids and "table-one" not in ids
    # the answer still comes from the trajectory model's interaction term (not adjusted)
    summary = text_of(content, "summary")
    assert "by 0.102 points per week more (95 % CI 0.064 to 0.140; p < 0.001)" in summary
    assert "Holm" not in summary
    outcome_tables = [b.caption for b in blocks(content, "outcomes") if isinstance(b, Table)]
    assert not any("marginal means" in c or "Contrasts" in c for c in outcome_tables)
    html = render_html(content)
    assert "Estimated marginal means" not in html


def test_html_is_self_contained_and_hides_fit_times(setting):
    tables = report_tables.run_tables()
    tables["responders"].loc[0, ["n", "responders"]] = [4, 2]  # a small cell
    html = render_html(build(setting, tables))
    assert "http://" not in html and "https://" not in html
    imgs = re.findall(r'<img src="data:image/png;base64,[A-Za-z0-9+/=]+" alt="([^"]+)">', html)
    assert len(imgs) == html.count("<img ")
    assert all(alt.strip() for alt in imgs)
    assert "12.34" not in html and "fit_seconds" not in html
    assert "&lt;5" in html and "[c]" in html  # suppressed cells, escaped


def test_slope_sentences_in_every_direction():
    effect = {"outcome": "odi", "estimate": 0.3, "ci_low": 0.1, "ci_high": 0.5, "p": 0.004}
    text = slope_sentence({**effect, "adjusted": False}, DEPTH, "session")
    assert text.startswith("ODI disability fell more slowly with deep needling")
    assert "by 0.300 points per session less (95 % CI 0.100 to 0.500; p = 0.004)" in text
    effect = {"outcome": "nrs", "estimate": -0.02, "ci_low": -0.06, "ci_high": 0.02, "p": 0.4}
    text = slope_sentence({**effect, "adjusted": True}, TWITCH, "week")
    assert "no clear difference in the rate of change with a twitch response elicited" in text
    assert "−0.020 points per week, 95 % CI −0.060 to 0.020" in text


def test_mcid_sentence_places_the_interval_against_the_mcid():
    effect = {"outcome": "vas", "estimate": -1.5, "ci_low": -2.0, "ci_high": -1.3}
    assert "the whole interval is at least that large" in mcid_sentence(effect, 12, 15, 30)
    effect = {"outcome": "vas", "estimate": -1.0, "ci_low": -1.5, "ci_high": -0.5}
    assert "the interval includes that size" in mcid_sentence(effect, 12, 15, 30)


def test_analysis_labels():
    assert analysis_label("trajectory_depth") == "Trajectory model, depth"
    assert analysis_label("change_twitch") == "Change from baseline, twitch"
    assert analysis_label("joint") == "Joint model (depth and twitch)"
    assert analysis_label("sensitivity_completers_depth") == "Sensitivity: completers, depth"
    assert analysis_label("subgroup_chronicity_twitch") == "Subgroup by chronicity, twitch"
    assert analysis_label("session_twitch") == "Session-level model, twitch"


def test_methods_name_models_estimation_df_multiplicity_and_missing_data(setting):
    content = build(setting, report_tables.run_tables())
    methods = text_of(content, "methods")
    for phrase in (
        "trajectory models",
        "change-from-baseline",
        "joint model",
        "restricted maximum likelihood",
        "Satterthwaite",
        "Holm",
        "missing at random",
        "likelihood-ratio tests",
        "pandas",
    ):
        assert phrase in methods, phrase
    published = publish_tables(report_tables.run_tables(), 5)
    assert isinstance(published["table_one"], pd.DataFrame)


def test_methods_name_the_mmrm_structure_used_and_why(setting):
    tables = report_tables.run_tables()
    trials = pd.DataFrame(
        {
            "analysis": ["change_depth", "change_depth", "change_twitch"],
            "outcome": ["nrs", "nrs", "nrs"],
            "structure": ["us", "toeph", "us"],
            "converged": [False, True, True],
            "criterion": [2540.2, 2551.0, 2547.0],
            "n_parameters": [10, 7, 10],
            "aic": [2560.2, 2565.0, 2567.0],
            "aicc": [2560.5, 2565.1, 2567.3],
            "bic": [2594.9, 2589.3, 2601.8],
            "message": ["the Hessian of the criterion is singular", "", ""],
            "used": [False, True, True],
        }
    )
    methods = text_of(build(setting, {**tables, "covariance_structures": trials}), "methods")
    assert "mixed models for repeated measures (MMRM" in methods
    assert "Kenward–Roger degrees of freedom" in methods  # [model] mmrm_df_method default
    assert "unstructured → heterogeneous Toeplitz → heterogeneous AR(1)" in methods
    assert "Change from baseline, depth, nrs: heterogeneous Toeplitz" in methods
    assert "Change from baseline, twitch, nrs: unstructured" in methods
    assert "depth, nrs: unstructured (the Hessian of the criterion is singular)" in methods
    assert "AIC 2560.2, BIC 2594.9" in methods  # the failed structure's criteria, where fitted


@pytest.mark.parametrize(
    ("example", "expected"),
    [
        (
            "clinics",
            [
                ("patients", "northside/patients.csv"),
                ("patients", "riverside/patients.csv"),
                ("assessments", "hillview/assessments.csv"),
            ],
        ),
        (
            "redcap",
            [
                ("patients, sessions, assessments", "export.csv"),
                ("REDCap data dictionary", "dictionary.csv"),
            ],
        ),
    ],
)
def test_provenance_lists_every_input_file_with_its_digest(example, expected):
    folder = ROOT / "data" / "raw" / "examples" / example
    config = load_config(folder / "analysis.toml")
    raw = read_sources(config.sources)
    content = build((config, raw), report_tables.run_tables())
    table = next(b for b in blocks(content, "provenance") if isinstance(b, Table))
    rows = [tuple(r) for r in table.rows]
    for role, file in expected:
        assert (role, file, sha256_of(folder / file)) in rows, rows
    assert rows[-1][0] == "configuration"
