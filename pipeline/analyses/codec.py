"""A data-only encoding of fitted analyses to JSON: reading it back can never run code.

:func:`encode` turns an :class:`~pipeline.analyses.plans.AnalysisResult` (with its
:class:`~pipeline.lmm.fit.LmmFit`, or the MMRM's :class:`~pipeline.lmm.mmrm.MmrmFit` without its
rows) into plain JSON values, and :func:`decode` builds it again.
Unlike a pickle, the text names no importable object: the only classes it can build are those
of :data:`CLASSES` and :data:`ENUMS`; every other value is a number, string, list, numpy array
(raw bytes of a numeric dtype, base64), pandas index, series or frame. Floats travel as their
bytes, so a result read back gives the same numbers to the last bit.
"""

from __future__ import annotations

import base64
import dataclasses
from typing import Any

import numpy as np
import pandas as pd

from pipeline.analyses.plans import AnalysisResult
from pipeline.lmm.fit import LmmFit
from pipeline.lmm.kenward_roger import KrPieces
from pipeline.lmm.mmrm import MmrmFit
from pipeline.schemas.identity import AnalysisId, AnalysisKind, ContrastKind, Family, FlowStage

__all__ = ["CLASSES", "ENUMS", "CodecError", "decode", "encode"]

CLASSES: dict[str, type] = {
    "AnalysisResult": AnalysisResult,
    "LmmFit": LmmFit,
    "MmrmFit": MmrmFit,
    "KrPieces": KrPieces,
    "AnalysisId": AnalysisId,
}
"""The only classes an entry may build, by name."""

ENUMS: dict[str, type] = {e.__name__: e for e in (AnalysisKind, ContrastKind, Family, FlowStage)}
"""The only enumerations an entry may name (typed identities of the plan)."""

_NUMERIC_KINDS = "biufcmM"  # bool, int, unsigned, float, complex, timedelta, datetime


class CodecError(ValueError):
    """The text is not an encoding of a result (unknown tag, class or dtype)."""


def _array(values: np.ndarray) -> dict:
    values = np.ascontiguousarray(values)
    if values.dtype.kind in _NUMERIC_KINDS:
        data = base64.b64encode(values.tobytes()).decode("ascii")
        return {"@": "array", "dtype": values.dtype.str, "shape": list(values.shape), "b": data}
    return {
        "@": "objects",
        "shape": list(values.shape),
        "items": [encode(v) for v in values.ravel().tolist()],
    }


def _decode_array(node: dict) -> np.ndarray:
    if node["@"] == "objects":
        items = [decode(v) for v in node["items"]]
        out = np.empty(len(items), dtype=object)
        out[:] = items
        return out.reshape(node["shape"])
    dtype = np.dtype(node["dtype"])
    if dtype.kind not in _NUMERIC_KINDS:
        raise CodecError(f"dtype {node['dtype']!r} is not numeric")
    raw = base64.b64decode(node["b"], validate=True)
    return np.frombuffer(raw, dtype=dtype).reshape(node["shape"]).copy()


def _column(values: pd.Series | pd.Index) -> dict:
    """Encode the values of a column or index with their dtype."""
    dtype = values.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        return {
            "@": "categorical",
            "codes": _array(
                np.asarray(values.cat.codes if isinstance(values, pd.Series) else values.codes)
            ),
            "categories": _index(dtype.categories),
            "ordered": bool(dtype.ordered),
        }
    if isinstance(dtype, pd.api.extensions.ExtensionDtype) and not isinstance(dtype, np.dtype):
        mask = np.asarray(pd.isna(values), dtype=bool)
        filled = values.astype(object).to_numpy(copy=True)
        filled[mask] = None
        return {"@": "extension", "dtype": str(dtype), "values": _array(filled)}
    return _array(np.asarray(values))


def _decode_column(node: dict) -> Any:
    if node["@"] == "categorical":
        categories = _decode_index(node["categories"])
        codes = _decode_array(node["codes"])
        return pd.Categorical.from_codes(codes, categories=categories, ordered=node["ordered"])
    if node["@"] == "extension":
        if node["dtype"] not in ("Int64", "Float64", "boolean", "string", "str"):
            raise CodecError(f"dtype {node['dtype']!r} is not one of the results' dtypes")
        return pd.array(_decode_array(node["values"]), dtype=node["dtype"])
    return _decode_array(node)


def _index(index: pd.Index) -> dict:
    if isinstance(index, pd.RangeIndex):
        return {
            "@": "range",
            "start": index.start,
            "stop": index.stop,
            "step": index.step,
            "name": encode(index.name),
        }
    if isinstance(index, pd.MultiIndex):
        return {
            "@": "multi",
            "levels": [_column(index.get_level_values(i)) for i in range(index.nlevels)],
            "names": [encode(n) for n in index.names],
        }
    return {"@": "index", "values": _column(index), "name": encode(index.name)}


def _decode_index(node: dict) -> pd.Index:
    kind = node["@"]
    if kind == "range":
        return pd.RangeIndex(node["start"], node["stop"], node["step"], name=decode(node["name"]))
    if kind == "multi":
        levels = [_decode_column(level) for level in node["levels"]]
        return pd.MultiIndex.from_arrays(levels, names=[decode(n) for n in node["names"]])
    if kind == "index":
        return pd.Index(
            _decode_column(node["values"]), name=decode(node["name"]), tupleize_cols=False
        )
    raise CodecError(f"unknown index kind {kind!r}")


def encode(value: Any) -> Any:
    """Encode a result (or any value inside one) as JSON-ready data.

    Parameters
    ----------
    value : Any
        An :class:`AnalysisResult`, :class:`LmmFit`, frame, series, index, array, scalar,
        tuple, list, dict or None.

    Returns
    -------
    Any
        Plain JSON values (dicts with string keys, lists, strings, numbers, booleans, None).

    Raises
    ------
    CodecError
        For a value of another type.
    """
    enum = ENUMS.get(type(value).__name__)
    if enum is not None and type(value) is enum:
        return {"@": "enum", "class": enum.__name__, "v": value.value}
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int) and not isinstance(value, np.integer):
        return value
    if isinstance(value, float) and not isinstance(value, np.floating):
        return {"@": "float", "v": value.hex()}
    if isinstance(value, np.generic):
        return {"@": "scalar", "v": _array(np.asarray(value))}
    if value is pd.NA:
        return {"@": "NA"}
    if value is pd.NaT:
        return {"@": "NaT"}
    if isinstance(value, pd.Timestamp):
        return {"@": "timestamp", "v": value.isoformat()}
    if isinstance(value, np.ndarray):
        return _array(value)
    if isinstance(value, pd.DataFrame):
        return {
            "@": "frame",
            "columns": _index(value.columns),
            "index": _index(value.index),
            "data": [_column(value.iloc[:, i]) for i in range(value.shape[1])],
        }
    if isinstance(value, pd.Series):
        return {
            "@": "series",
            "values": _column(value),
            "index": _index(value.index),
            "name": encode(value.name),
        }
    if isinstance(value, pd.Index):
        return _index(value)
    if isinstance(value, tuple):
        return {"@": "tuple", "items": [encode(v) for v in value]}
    if isinstance(value, list):
        return {"@": "list", "items": [encode(v) for v in value]}
    if isinstance(value, dict):
        return {"@": "dict", "items": [[encode(k), encode(v)] for k, v in value.items()]}
    name = type(value).__name__
    if dataclasses.is_dataclass(value) and CLASSES.get(name) is type(value):
        fields = {f.name: encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
        return {"@": "object", "class": name, "fields": fields}
    raise CodecError(f"cannot encode a {type(value).__module__}.{name}")


def decode(node: Any) -> Any:
    """Build back a value encoded by :func:`encode`.

    Parameters
    ----------
    node : Any
        Parsed JSON.

    Returns
    -------
    Any
        The value.

    Raises
    ------
    CodecError
        When the data name an unknown tag, class, field or dtype.
    """
    if node is None or isinstance(node, bool | str | int):
        return node
    if isinstance(node, float):
        return node
    if not isinstance(node, dict) or not isinstance(node.get("@"), str):
        raise CodecError("not an encoded value")
    kind = node["@"]
    if kind == "enum":
        enum = ENUMS.get(node.get("class"))
        if enum is None:
            raise CodecError(f"unknown enumeration {node.get('class')!r}")
        return enum(node["v"])
    if kind == "float":
        return float.fromhex(node["v"])
    if kind == "scalar":
        return _decode_array(node["v"])[()]
    if kind == "NA":
        return pd.NA
    if kind == "NaT":
        return pd.NaT
    if kind == "timestamp":
        return pd.Timestamp(node["v"])
    if kind in ("array", "objects"):
        return _decode_array(node)
    if kind == "frame":
        columns = _decode_index(node["columns"])
        data = {i: _decode_column(c) for i, c in enumerate(node["data"])}
        frame = pd.DataFrame(data, index=_decode_index(node["index"]))
        frame.columns = columns
        return frame
    if kind == "series":
        return pd.Series(
            _decode_column(node["values"]),
            index=_decode_index(node["index"]),
            name=decode(node["name"]),
        )
    if kind in ("range", "multi", "index"):
        return _decode_index(node)
    if kind == "tuple":
        return tuple(decode(v) for v in node["items"])
    if kind == "list":
        return [decode(v) for v in node["items"]]
    if kind == "dict":
        return {decode(k): decode(v) for k, v in node["items"]}
    if kind == "object":
        cls = CLASSES.get(node["class"])
        if cls is None:
            raise CodecError(f"class {node['class']!r} may not be built from a cache entry")
        allowed = {f.name for f in dataclasses.fields(cls)}
        fields = node["fields"]
        if not isinstance(fields, dict) or set(fields) != allowed:
            raise CodecError(f"the fields of {node['class']} do not match")
        return cls(**{name: decode(v) for name, v in fields.items()})
    raise CodecError(f"unknown tag {kind!r}")
