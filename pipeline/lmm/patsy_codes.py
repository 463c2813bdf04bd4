"""patsy reads a boxed pandas categorical by its codes, not value by value.

patsy 1.0's ``categorical_to_int`` (``patsy/categorical.py``) takes a pandas categorical's codes
directly, but a categorical wrapped by ``C(x, Treatment(...))`` (a ``_CategoricalBox``) is
unwrapped *after* that check and then mapped one value at a time in Python, with an NA test per
value: about 4 microseconds a row, seconds per model at 100,000 patients, for a design every
model of the plan builds (``C(depth, Treatment('superficial'))``). :func:`install` puts a
wrapper in front of the function patsy's design builder calls: a box holding a pandas
categorical whose categories are exactly the levels is handed on unwrapped, so the original's
own categorical branch returns the codes (``-1`` for a missing value, as the value-by-value
path gives); anything else goes to the original unchanged. The designs are the same numbers.
"""

from __future__ import annotations

from typing import Any

import patsy.build
import patsy.categorical
from patsy.util import pandas_Categorical_categories, safe_is_pandas_categorical

__all__ = ["install"]

_ORIGINAL = patsy.categorical.categorical_to_int


def categorical_to_int(data: Any, levels: tuple, NA_action: Any, origin: Any = None) -> Any:  # noqa: N803
    """Map values to level codes as patsy does, reading a boxed pandas categorical by its codes."""
    if isinstance(data, patsy.categorical._CategoricalBox):
        inner = data.data
        if (
            (data.levels is None or tuple(data.levels) == levels)
            and safe_is_pandas_categorical(inner)
            and tuple(pandas_Categorical_categories(inner)) == levels
        ):
            return _ORIGINAL(inner, levels, NA_action, origin)
    return _ORIGINAL(data, levels, NA_action, origin)


def install() -> None:
    """Route patsy's design builder through :func:`categorical_to_int` (idempotent)."""
    patsy.build.categorical_to_int = categorical_to_int
