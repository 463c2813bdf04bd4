"""Building the data contracts does not import dask, and builds the schemas pandera builds."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandera.api.pandas.model as pandera_model
import pytest

from pipeline.schemas import analysis, outputs, raw
from pipeline.schemas.frameworks import OTHER_FRAMEWORKS

ROOT = Path(__file__).resolve().parents[2]

MODELS = [
    *raw.MODELS.values(),
    raw.AdverseEvents,
    analysis.AnalysisData,
    *outputs.MODELS.values(),
]


def test_validating_a_study_imports_no_dask() -> None:
    """A fresh process reading and validating a study never imports dask (issue 23)."""
    code = (
        "import sys\n"
        "from pipeline.schemas import analysis, outputs, raw\n"
        "from pipeline.validate.study import _schema\n"
        "for table in raw.MODELS:\n"
        "    _schema(table)\n"
        "others = (raw.AdverseEvents, analysis.AnalysisData, *outputs.MODELS.values())\n"
        "for model in others:\n"
        "    model.to_schema()\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'dask', 'scipy', 'distributed'}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT)},
        check=True,
    )
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_schema_is_pandera_own(model, monkeypatch) -> None:
    """The schema built with the pandas types alone equals the one pandera's lookup gives."""
    ours = model.build_schema_()
    for name in ("get_series_types", "get_index_types"):
        patched = getattr(pandera_model, name)
        assert patched.pandas_first
        # the lookup of every library's types, as pandera does it without our change
        monkeypatch.setattr(pandera_model, name, patched.__wrapped__)
    theirs = model.build_schema_()
    assert ours == theirs
    assert repr(ours) == repr(theirs)


def test_other_frameworks_are_typing_modules() -> None:
    """Each module looked for exists in pandera (a renamed one would be missed silently)."""
    import importlib.util

    for name in OTHER_FRAMEWORKS:
        assert importlib.util.find_spec(name) is not None, name
