import pytest
from command import ROOT, assert_one_sentence_error, outcomes
from factories import PATIENTS, append_rows, write_config, write_study

from pipeline.ingest.raw_tables import sha256_of


@pytest.mark.parametrize(
    "command", ["run", "validate", "check", "simulate", "dictionary", "validate-mmrm"]
)
def test_every_subcommand_has_help(command):
    result = outcomes(command, "--help")
    assert result.returncode == 0
    assert "usage: outcomes" in result.stdout


def test_missing_configuration(tmp_path):
    assert_one_sentence_error(
        outcomes("validate", "--config", tmp_path / "none.toml"),
        "none.toml",
        "configuration file not found",
    )


def test_config_error_names_the_key(tmp_path):
    config = write_config(tmp_path, write_study(tmp_path / "raw"), model='df_method = "kr"')
    assert_one_sentence_error(
        outcomes("run", "--config", config), "analysis.toml", "[model.df_method]"
    )


def test_missing_input_file(tmp_path):
    paths = write_study(tmp_path / "raw")
    paths["sessions"].unlink()
    result = outcomes("validate", "--config", write_config(tmp_path, paths))
    assert_one_sentence_error(result, "sessions.csv", "sessions file not found")


def test_missing_required_column(tmp_path):
    # age is optional since a study declares its covariates; the clinic is always required
    paths = write_study(tmp_path / "raw", patients=PATIENTS.replace(",site,", ",clinic,"))
    result = outcomes("run", "--config", write_config(tmp_path, paths))
    assert_one_sentence_error(result, "patients.csv", "required column 'site' is missing")


def test_validate_exits_1_with_bad_rows_and_leaves_raw_files_alone(tmp_path):
    paths = write_study(
        tmp_path / "raw", sessions=append_rows("sessions", "P9,1,2025-01-20,deep,no,0,none,")
    )
    before = {k: sha256_of(p) for k, p in paths.items()}
    result = outcomes("validate", "--config", write_config(tmp_path, paths))
    assert result.returncode == 1
    assert "sessions" in result.stdout and "1 quarantined" in result.stdout
    quarantine = (tmp_path / "processed" / "quarantine" / "sessions.csv").read_text()
    assert "unknown_patient" in quarantine and "P9" in quarantine
    assert before == {k: sha256_of(p) for k, p in paths.items()}


def test_unwritable_output_folder_is_one_sentence(tmp_path):
    config = write_config(tmp_path, write_study(tmp_path / "raw"))
    (tmp_path / "processed").write_text("a file where the output folder should be")
    assert_one_sentence_error(
        outcomes("validate", "--config", config), "processed", "cannot be written"
    )


def test_validate_exits_0_on_clean_data(tmp_path):
    result = outcomes("validate", "--config", write_config(tmp_path, write_study(tmp_path / "r")))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "processed" / "assessments.parquet").is_file()


def test_simulate_writes_and_refuses_to_overwrite(tmp_path):
    out = tmp_path / "sim"
    first = outcomes("simulate", "--patients", 30, "--seed", 5, "--out", out)
    assert first.returncode == 0, first.stderr
    assert (out / "patients.csv").is_file()
    assert_one_sentence_error(
        outcomes("simulate", "--patients", 30, "--out", out), "already exists", "--overwrite"
    )
    assert outcomes("simulate", "--patients", 30, "--out", out, "--overwrite").returncode == 0


def test_bad_flags_exit_2_without_traceback(tmp_path):
    result = outcomes("simulate", "--patients", "many", "--out", tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "expected a whole number" in result.stderr
    assert_one_sentence_error(
        outcomes("simulate", "--patients", 3, "--out", tmp_path), "cannot simulate"
    )


def test_dictionary_in_docs_is_current():
    # docs/data-dictionary.md is generated from the schemas; regenerate it with
    # `outcomes dictionary --out docs/data-dictionary.md`.
    result = outcomes("dictionary")
    assert result.returncode == 0
    assert (ROOT / "docs" / "data-dictionary.md").read_text(encoding="utf-8") == result.stdout
