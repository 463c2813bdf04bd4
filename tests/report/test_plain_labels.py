"""Plain language: model terms, optimisers and warnings as a reader sees them (issue 16)."""

from __future__ import annotations

import report_tables

from pipeline.report.labels import optimiser_label, term_label
from pipeline.report.sections.common import OUTCOME_COLUMN
from pipeline.report.sections.diagnostics import split_warnings
from pipeline.report.sections.outcomes import forest_rows
from pipeline.report.sections.responders import responder_table


def test_model_terms_are_named_in_words():
    assert term_label("depth[T.deep]") == "Needling depth: deep"
    assert term_label("visit_c[T.2]:depth[T.deep]") == "Visit 2 × Needling depth: deep"
    assert term_label("weeks:twitch[T.twitch]") == "Time (weeks) × Twitch response: twitch"
    assert term_label("site[T.Northside]") == "Clinic: Northside"
    assert term_label("Intercept") == "Intercept"
    assert term_label("cor((Intercept), weeks)") == "Correlation of intercept and time (weeks)"
    # a declared variable: the study's label first, else its name in words
    assert term_label("diagnosis[T.radicular]", {"diagnosis": "Diagnosis"}) == (
        "Diagnosis: radicular"
    )
    assert term_label("pain_catastrophising") == "Pain catastrophising"
    assert all("[T." not in term_label(t) for t in report_tables.fixed_effects()["term"])


def test_optimisers_are_named_in_words():
    assert optimiser_label("numpy-lbfgsb") == "bounded L-BFGS-B on the profiled REML criterion"
    assert optimiser_label(None) == "–"


def test_warnings_of_discarded_attempts_are_kept_apart_from_the_fit_kept():
    row = {
        "optimizer": "powell+bfgs",
        "message": "post-baseline assessments",
        "fallback": None,
        "warnings": "lbfgs: ConvergenceWarning: Retrying MixedLM optimization | "
        "powell+bfgs: ConvergenceWarning: The MLE may be on the boundary | "
        "ML refit for the test of time (weeks): singular fit",
    }
    kept, discarded = split_warnings(row)
    assert kept == [
        "post-baseline assessments",
        "powell+bfgs: ConvergenceWarning: The MLE may be on the boundary",
        "ML refit for the test of time (weeks): singular fit",
    ]
    assert discarded == ["lbfgs: ConvergenceWarning: Retrying MixedLM optimization"]


def test_the_forest_plot_fills_the_headline_and_labels_the_unadjusted_comparison():
    tables = report_tables.run_tables()
    answer = tables["answer"]
    for factor in ("depth", "twitch"):
        part = answer[answer["question"] == factor]
        roles = dict(zip(part["analysis"], part["role"], strict=True))
        rows = forest_rows(tables["contrasts"], factor, roles).set_index("label")
        if factor == "depth":
            assert rows.loc[["Trajectory model, depth"], "primary"].all()
            assert not rows.loc[["Joint model (depth and twitch)"], "primary"].any()
        else:  # the headline is the within-patient coefficient: no slope is filled
            assert not rows["primary"].any()
            assert "Trajectory model, twitch (unadjusted, confounded)" in rows.index


def test_proportions_and_risk_differences_are_percentages():
    shown = responder_table(report_tables.responders(), OUTCOME_COLUMN, "")
    estimate, interval = shown.header.index("Estimate"), shown.header.index("95 % CI")
    cells = [(r[estimate], r[interval]) for r in shown.rows]
    assert cells == [
        ("59.3 %", "–"),
        ("73.8 %", "–"),
        ("14.5 %-points", "2.6 to 26.4"),
        ("1.93", "1.12 to 3.34"),  # an odds ratio stays a ratio
    ]
    hidden = report_tables.responders().astype({"estimate": object})
    hidden.loc[0, "estimate"] = "[c]"  # a withheld value is shown as withheld
    assert responder_table(hidden, OUTCOME_COLUMN, "").rows[0][estimate] == "[c]"
