"""`outcomes run` on the example trial: a wide file without dates or sessions, end to end.

And the designs the data cannot support end in one sentence, never a traceback.
"""

import html
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest
from command import assert_one_sentence_error, outcomes

ROOT = Path(__file__).resolve().parents[2]
TRIAL = ROOT / "data" / "raw" / "examples" / "trial"


def _copy(folder: Path, edit=None) -> Path:
    """The trial example in ``folder``, its outputs there too; ``edit`` changes the data."""
    shutil.copy(TRIAL / "trial.csv", folder / "trial.csv")
    text = (TRIAL / "analysis.toml").read_text(encoding="utf-8")
    text = re.sub(r'processed = "[^"]*"', 'processed = "out/processed"', text)
    text = re.sub(r'reports = "[^"]*"', 'reports = "out/reports"', text)
    (folder / "analysis.toml").write_text(text, encoding="utf-8")
    if edit is not None:
        data = pd.read_csv(folder / "trial.csv", dtype=str, keep_default_na=False)
        edit(data).to_csv(folder / "trial.csv", index=False)
    return folder / "analysis.toml"


@pytest.fixture(scope="module")
def trial_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("trial")
    config = _copy(folder)
    result = outcomes("run", "--config", config)
    return folder / "out", result


def _text(page: str) -> str:
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page)))


def test_the_run_writes_a_report_for_a_trial(trial_run):
    out, result = trial_run
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    page = (out / "reports" / "outcomes.html").read_text(encoding="utf-8")
    text = _text(page)
    assert "Outcome report: randomised trial" in text
    assert "randomised comparison" in text and "not randomised" not in text
    assert "at the primary visit 1 (week 13)" in text
    # direction-aware: RMDQ falls (better), PSFS rises (better) with deep needling
    assert "RMDQ was lower (better) with deep than with sham" in text
    assert "PSFS was higher (better) with deep than with sham" in text
    assert "Against the MCID of 5 points" in text
    # the answer page states the trial result: the randomised difference at the primary visit,
    # one sign convention for RMDQ (higher is worse) and PSFS (higher is better)
    assert text.index("1. The answer") < text.index("Question 1. Randomised arm: deep vs sham")
    for short in ("RMDQ", "PSFS"):
        assert (
            f"{short}: detectable difference between deep and sham, but smaller than the MCID"
            in text
        )
    assert "More improvement with deep than with sham (RMDQ, PSFS)." in text
    assert "the difference between the arms at the primary visit 1 (week 13)" in text
    answer = pd.read_csv(out / "reports" / "tables" / "answer.csv").set_index("outcome")
    assert set(answer["estimand"]) == {"visit_difference"} and set(answer["visit"]) == {1}
    assert (answer["improvement"] > 0).all() and (answer["ci_low"] > 0).all()
    contrasts = pd.read_csv(out / "reports" / "tables" / "contrasts.csv")
    primary = contrasts[contrasts["family"] == "primary"].set_index("outcome")
    # the trial's Holm family is the headline family: the same adjusted p on both tables
    assert set(answer["family"]) == {"primary"}
    assert answer["p_holm"].to_dict() == pytest.approx(primary["p_holm"].to_dict())


def test_analyses_that_need_sessions_are_left_out_with_a_reason(trial_run):
    out, result = trial_run
    text = _text((out / "reports" / "outcomes.html").read_text(encoding="utf-8"))
    assert "Analyses this design cannot support" in text
    assert "needs a session log; this study has no session log" in text
    assert "not in this design: session_twitch" in result.stdout
    tables = out / "reports" / "tables"
    assert not (tables / "adverse_event_rates.csv").exists()
    skipped = pd.read_csv(tables / "skipped_analyses.csv")
    assert {"session_twitch", "joint", "adverse_event_rates", "session_counts"} <= set(
        skipped["analysis"]
    )


def test_the_trial_report_has_its_figures_and_skips_the_subgroup_it_cannot_estimate(trial_run):
    out, result = trial_run
    page = (out / "reports" / "outcomes.html").read_text(encoding="utf-8")
    for anchor in ("spaghetti-arm", "trajectories-arm", "forest-arm"):
        assert f'id="{anchor}"' in page, anchor
    text = _text(page)
    assert "The shaded band is ± the MCID (RMDQ, PSFS)" in text
    assert "Fixed effects: Change from baseline, arm" in text
    assert "None treated" not in page
    # the example's few acute patients are all in the deep arm: the chronicity subgroups are
    # left out with that reason, not fitted and reported as not estimable
    assert "not estimable" not in result.stdout
    assert "acute has no patient in sham" in text
    skipped = pd.read_csv(out / "reports" / "tables" / "skipped_analyses.csv")
    assert "subgroup_chronicity_arm" in set(skipped["analysis"])


def test_tables_keep_their_columns_and_name_the_comparison(trial_run):
    out, _ = trial_run
    tables = out / "reports" / "tables"
    demo = ROOT / "tests" / "expected" / "tables"
    for name in ("contrasts", "fixed_effects", "diagnostics", "emmeans", "responders"):
        ours = pd.read_csv(tables / f"{name}.csv", nrows=0).columns.tolist()
        assert ours == pd.read_csv(demo / f"{name}.csv", nrows=0).columns.tolist(), name
    contrasts = pd.read_csv(tables / "contrasts.csv")
    assert {"trajectory_arm", "change_arm"} <= set(contrasts["analysis"])
    assert set(contrasts["outcome"]) == {"rmdq", "psfs"}
    primary = contrasts[contrasts["family"] == "primary"]
    assert set(primary["analysis"]) == {"change_arm"} and set(primary["visit"]) == {1}
    flow = pd.read_csv(tables / "flow.csv")
    assert "treated" not in set(flow["step"])


def test_an_empty_arm_ends_in_one_sentence(tmp_path):
    def one_arm(data: pd.DataFrame) -> pd.DataFrame:
        return data.assign(arm="sham")

    result = outcomes("run", "--config", _copy(tmp_path, one_arm))
    assert_one_sentence_error(result, "the comparison 'arm'", "has no patient in deep")


def test_an_outcome_never_recorded_at_the_primary_visit_ends_in_one_sentence(tmp_path):
    def no_primary(data: pd.DataFrame) -> pd.DataFrame:
        return data.assign(rmdq_3m="")

    result = outcomes("run", "--config", _copy(tmp_path, no_primary))
    assert_one_sentence_error(
        result, "the primary outcome rmdq is never recorded at the primary visit 1"
    )


def test_depth_without_a_session_log_ends_in_one_sentence(tmp_path):
    config = _copy(tmp_path)
    text = config.read_text().replace('kind = "randomised"', 'kind = "depth"')
    text = text.replace('column = "arm"\nreference = "sham"\nlevels = ["sham", "deep"]\n', "")
    config.write_text(text)
    result = outcomes("run", "--config", config)
    assert_one_sentence_error(result, "'depth' is derived from the session log")
