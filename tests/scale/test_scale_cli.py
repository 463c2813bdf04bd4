"""``outcomes run`` on the Polars backend: file problems end in one sentence, as on pandas."""

from __future__ import annotations

from command import assert_one_sentence_error, outcomes
from factories import SESSIONS, write_config, write_study

POLARS = 'backend = "polars"'


def test_a_missing_required_column_is_the_pandas_sentence(tmp_path):
    paths = write_study(tmp_path / "raw")
    text = paths["patients"].read_text().replace("site,", "clinic,", 1)
    paths["patients"].write_text(text)
    result = outcomes("run", "--config", write_config(tmp_path, paths, engine=POLARS))
    assert_one_sentence_error(result, "patients.csv", "required column 'site' is missing")


def test_a_line_break_inside_a_cell_asks_for_the_pandas_backend(tmp_path):
    sessions = SESSIONS + 'P1,3,2025-01-20,deep,yes,1,"none\nreally",\n'
    paths = write_study(tmp_path / "raw", sessions=sessions)
    result = outcomes("run", "--config", write_config(tmp_path, paths, engine=POLARS))
    assert_one_sentence_error(result, "sessions.csv", "line break", 'backend = "pandas"')
