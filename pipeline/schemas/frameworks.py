"""Build the pandera models without importing dask.

When pandera turns a :class:`pandera.pandas.DataFrameModel` into its schema, it asks which
annotation types are a Series or an Index in every dataframe library it supports
(``pandera.typing.get_series_types`` and ``get_index_types``). Asking imports
``pandera.typing.dask``, which imports ``dask.dataframe`` (and with it dask.array and parts of
SciPy) whenever dask is installed, as it is for the ``scale`` extra: 2 to 3 CPU seconds spent
by every process that builds a schema, such as ``outcomes validate`` (issue 23). The data
contracts annotate their columns with pandas types only.

A dask, modin, pyspark or geopandas annotation type is defined in its ``pandera.typing``
module, so a model can only carry one once that module is imported. :func:`pandas_first`
answers the two questions with the pandas types alone while none of those modules is
imported, and as pandera does otherwise: the schema built is the same either way.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import pandera.api.pandas.model as _model
from pandera.typing import Index, Series

#: The ``pandera.typing`` modules that add Series or Index types of other libraries.
OTHER_FRAMEWORKS = (
    "pandera.typing.dask",
    "pandera.typing.modin",
    "pandera.typing.pyspark",
    "pandera.typing.geopandas",
)


def _others_imported() -> bool:
    return any(name in sys.modules for name in OTHER_FRAMEWORKS)


def _pandas_first(original: Callable[[], set[type]], pandas: type) -> Callable[[], set[type]]:
    def types() -> set[type]:
        return original() if _others_imported() else {pandas}

    types.pandas_first = True  # type: ignore[attr-defined]
    types.__wrapped__ = original  # type: ignore[attr-defined]
    types.__doc__ = f"{original.__name__}, without importing other libraries' typing modules."
    return types


def pandas_first() -> None:
    """Make pandera's model building look up other libraries' types only once imported.

    Idempotent; called when :mod:`pipeline.schemas` is imported, before any model is built.
    """
    for name, pandas in (("get_series_types", Series), ("get_index_types", Index)):
        original = getattr(_model, name)
        if not getattr(original, "pandas_first", False):
            setattr(_model, name, _pandas_first(original, pandas))
