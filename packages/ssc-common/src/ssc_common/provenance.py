"""Digests that identify a pipeline step's work: what went in and with which parameters.

A task is the same task when its inputs (by content, not order) and its parameters (by
value, not spelling) are the same; the processing database looks finished tasks up by
these two digests, which is what makes every step idempotent.
"""

from __future__ import annotations

import hashlib
import json
import math
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["InputRef", "canonical_json", "digest_inputs", "digest_parameters", "json_safe"]


@dataclass(frozen=True, order=True)
class InputRef:
    """One input of a product or task: where it is and what its bytes were."""

    uri: str
    sha256: str


def digest_inputs(inputs: Iterable[InputRef]) -> str:
    """The sha256 hex digest of a set of inputs, independent of their order.

    Listing the same input twice does not change the digest (the inputs are a set).
    """
    pairs = sorted({(ref.uri, ref.sha256) for ref in inputs})
    return _sha256(canonical_json([list(pair) for pair in pairs]))


def digest_parameters(parameters: Mapping[str, Any]) -> str:
    """The sha256 hex digest of the canonical JSON of ``parameters``.

    Keys are sorted and whitespace fixed, so equal mappings digest alike however they were
    built. Values may be ``None``, bools, ints, floats, strings, lists/tuples and mappings
    with string keys (nested); numpy scalars count as the Python number they hold, and a
    float with an integral value counts as that int (``1.0`` == ``1``, as in Python).
    Anything else raises :class:`TypeError`; NaN and infinities raise :class:`ValueError`.
    """
    if not isinstance(parameters, Mapping):
        raise TypeError(f"parameters must be a mapping, not {type(parameters).__name__}")
    return _sha256(canonical_json(parameters))


def canonical_json(value: Any) -> str:
    """``value`` as canonical JSON: normalised by :func:`json_safe`, sorted keys, no spaces."""
    return json.dumps(
        json_safe(value),
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
    )


def json_safe(value: Any) -> Any:
    """``value`` as plain JSON data (dict/list/str/int/float/bool/None), normalised.

    Raises :class:`TypeError` for values without one obvious JSON form (sets, bytes, paths,
    datetimes, arrays, objects) and :class:`ValueError` for NaN and infinities.
    """
    value = _unwrap_numpy(value)
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return int(value)  # an int subclass (IntEnum) becomes a plain int
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"parameter value {value!r} has no JSON form")
        return int(value) if value.is_integer() else float(value)
    if isinstance(value, Mapping):
        result: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"parameter keys must be strings, not {type(key).__name__}")
            result[key] = json_safe(item)
        return result
    if isinstance(value, list | tuple):
        return [json_safe(item) for item in value]
    raise TypeError(f"parameter value of type {type(value).__name__} has no canonical JSON form")


def _unwrap_numpy(value: Any) -> Any:
    """A numpy scalar as the Python scalar it holds; anything else unchanged."""
    numpy = sys.modules.get("numpy")  # a numpy value implies numpy is already imported
    if numpy is not None and isinstance(value, numpy.generic):
        return value.item()
    return value


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
