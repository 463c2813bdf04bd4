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
from pipeline.report.sections.common import analysis_label

ROOT = Path(__file__).resolve().parents[2]


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
        "answer",
        "answer-details",
        "provenance",
        "data",
        "table-one",
        "outcomes",
        "responders",
        "safety",
        "sensitivity",
        "diagnostics",
        "methods",
        "glossary",
        "appendix",
    ]
    for section in content.sections:
        assert section.blocks, section.id
    figures = [b for s in content.sections for b in s.blocks if isinstance(b, Figure)]
    anchors = {f.anchor for f in figures}
    assert {"flow", "trajectories-depth", "trajectories-twitch", "forest-depth"} <= anchors
    assert "residuals-trajectory_depth-nrs" in anchors
    assert all(f.alt and f.png.startswith(b"\x89PNG") for f in figures)


def test_the_answer_page_gives_one_verdict_per_question_and_outcome(setting):
    content = build(setting, report_tables.run_tables())
    assert content.sections[0].id == "answer"
    answer = text_of(content, "answer")
    # depth: -0.102 points per week over 12 weeks = 1.22 points more improvement with deep
    verdicts = {t.caption: t.rows for t in blocks(content, "answer") if isinstance(t, Table)}
    assert verdicts["Verdicts: needling depth"][0] == (
        "NRS pain: detectable depth effect, but smaller than the MCID.",
        "+1.22 points (+0.77 to +1.68)",
        "< 0.001",
        "2 points",
    )
    assert "More improvement with deep than with superficial (NRS)." in answer
    assert "over 12 weeks of care (trajectory model)" in answer
    # twitch: the within-patient estimate answers, +0.69 points worse with twitch
    assert "No detectable twitch effect on any outcome." in answer
    assert verdicts["Verdicts: twitch response"][0] == (
        "NRS pain: no detectable twitch effect; a clinically important one is ruled out.",
        "−0.69 points (−1.70 to +0.32)",
        "0.180",
        "2 points",
    )
    assert "twitch in every earlier session vs none, within the same patients" in answer
    # the supporting and unadjusted estimates follow on the next section, labelled
    details = text_of(content, "answer-details")
    assert "Twitch, unadjusted (confounded by depth)" in details
    (others,) = [b for b in blocks(content, "answer-details") if isinstance(b, Table)]
    # the Methods name the one Holm family, read from its typed rows
    methods = text_of(content, "methods")
    assert (
        "Holm's method across one family, the headline estimates (one per question and "
        "outcome): depth: the trajectory model's difference in slope; twitch: the session-level "
        "model's within-patient estimate (3 comparison × outcome pairs, 3 tests)"
    ) in methods
    assert "this comparison is confounded by depth and is never the answer" in others.note
    assert "primary" not in answer.lower()
    assert "2.31 times as frequent after deep as after superficial sessions" in answer
    # the sign convention is stated once, on this page only
    assert answer.count("positive number means more improvement") == 1
    figures = [b for b in blocks(content, "answer") if isinstance(b, Figure)]
    assert [f.anchor for f in figures] == ["answer-figure"]


def test_fit_flags_stand_next_to_the_estimates_they_affect(setting):
    content = build(setting, report_tables.run_tables())
    tables = [b for b in blocks(content, "outcomes") if isinstance(b, Table)]
    twitch = next(t for t in tables if t.caption == "Contrasts: twitch − no twitch")
    fit = twitch.header.index("Fit")
    flagged = {r[fit] for r in twitch.rows if r[1] == "VAS (mm)"}
    assert flagged == {"boundary fit; random slope dropped"}
    # (the session-level model of these tables has no diagnostics row: its flag is "–")
    fitted = [r for r in twitch.rows if r[0] != analysis_label("session_twitch")]
    assert {r[fit] for r in fitted if r[1] == "NRS"} == {"ok"}
    diagnostics = text_of(content, "diagnostics")
    assert "ConvergenceWarning: The MLE may be on the boundary" in diagnostics


def test_sections_whose_tables_are_missing_are_left_out(setting):
    content = build(setting, report_tables.run_tables(today_only=True))
    ids = [s.id for s in content.sections]
    assert "sensitivity" not in ids and "table-one" not in ids
    assert "answer" not in ids  # no answer table: no answer page rather than an empty one
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
        "Trajectory model (SAP §4.1)",
        "Change from baseline (MMRM, §4.2 and §4.6)",
        "Joint model (§4.4)",
        "Headline estimates (SAP §4)",
        "restricted maximum likelihood",
        "Satterthwaite",
        "Holm",
        "missing at random",
        "likelihood-ratio tests",
        "pandas",
    ):
        assert phrase in methods, phrase
    # a checklist a reviewer can go through: one table row per item, no long paragraph
    (table,) = blocks(content, "methods")
    assert isinstance(table, Table) and table.header == ("Item", "What was done")
    assert max(len(text) for _, text in table.rows) < 600
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
    assert "Change from baseline (MMRM, §4.2 and §4.6)" in methods
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
