"""The example trial (data/raw/examples/trial/) is what pipeline.demo.trial writes."""

from pathlib import Path

from pipeline.demo.trial import TRIAL_PATIENTS, TRUE_EFFECTS, simulate_trial, trial_files

TRIAL = Path(__file__).resolve().parents[2] / "data" / "raw" / "examples" / "trial"


def test_committed_files_are_what_the_generator_writes():
    # Rewrite them with `python -m pipeline.demo.trial data/raw/examples/trial`.
    for name, data in trial_files().items():
        assert (TRIAL / name).read_bytes() == data, name


def test_the_readme_states_the_true_effects():
    readme = (TRIAL / "README.md").read_text(encoding="utf-8")
    for outcome, effects in TRUE_EFFECTS.items():
        row = next(line for line in readme.splitlines() if line.startswith(f"| {outcome} |"))
        for effect in effects.values():
            assert f"{effect:+g}" in row


def test_the_file_is_wide_without_dates_with_repeated_initials():
    table = simulate_trial()
    assert len(table) == TRIAL_PATIENTS
    assert not any("date" in c for c in table.columns)
    assert table["initials"].duplicated().any()
    assert set(table["arm"]) == {"sham", "deep"}
    assert abs((table["arm"] == "deep").sum() - TRIAL_PATIENTS / 2) <= 1
