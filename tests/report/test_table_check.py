import shutil

from pipeline.cli import main
from pipeline.report.table_check import compare_folders

TABLE = (
    "analysis,outcome,estimate,p_value,fit_seconds\n"
    "trajectory_depth,nrs,-0.1018764755,3.5e-07,4.2\n"
)


def write(folder, name="fixed_effects.csv", text=TABLE):
    folder.mkdir(exist_ok=True)
    (folder / name).write_text(text)
    return folder


def test_same_numbers_within_tolerance_pass(tmp_path):
    expected = write(tmp_path / "expected")
    # a last-digit change and another fit time are not differences
    changed = TABLE.replace("0.1018764755", "0.1018764756").replace("4.2", "9.9")
    actual = write(tmp_path / "actual", text=changed)
    assert compare_folders(expected, actual) == []
    assert main(["check-tables", "--expected", str(expected), "--actual", str(actual)]) == 0


def test_differences_name_file_row_and_column(tmp_path, capsys):
    expected = write(tmp_path / "expected")
    actual = write(tmp_path / "actual", text=TABLE.replace("-0.1018764755", "-0.1019"))
    write(expected, "contrasts.csv", "a\n1\n")
    write(actual, "flow.csv", "a\n1\n")
    differences = compare_folders(expected, actual)
    assert differences == [
        "contrasts.csv: committed but not regenerated",
        "flow.csv: regenerated but not committed",
        "fixed_effects.csv: row 1, column estimate: expected '-0.1018764755', got '-0.1019'",
    ]
    assert main(["check-tables", "--expected", str(expected), "--actual", str(actual)]) == 1
    assert "row 1, column estimate" in capsys.readouterr().out


def test_text_and_suppression_markers_must_match_exactly(tmp_path):
    expected = write(tmp_path / "expected", "flow.csv", "step,patients\nexcluded,<5\n")
    actual = write(tmp_path / "actual", "flow.csv", "step,patients\nexcluded,1\n")
    assert compare_folders(expected, actual) == [
        "flow.csv: row 1, column patients: expected '<5', got '1'"
    ]
    shutil.copy(expected / "flow.csv", actual / "flow.csv")
    assert compare_folders(expected, actual) == []


def test_missing_folder_is_a_user_error(tmp_path, capsys):
    assert (
        main(["check-tables", "--expected", str(tmp_path / "nope"), "--actual", str(tmp_path)]) == 2
    )
    assert "no such folder" in capsys.readouterr().err
