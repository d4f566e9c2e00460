"""Array fields of products: dtype, dimensionality, unit and time scale, checked without loading.

A field declared ``NDArray("float32", 2, unit="MJy.sr**-1")`` accepts a numpy array, or the lazy
array asdf hands back when a file is opened, checking ``dtype`` and ``ndim`` from the header so
a 1 GB light-curve partition opens without reading its blocks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import numpy as np
from pydantic import GetCoreSchemaHandler
from pydantic_core import core_schema

TIME_SCALES = ("tdb", "tt", "utc", "tai")


@dataclass(frozen=True)
class ArraySpec:
    """What an array field holds: its numpy dtype, number of dimensions and physical meaning."""

    dtype: str
    ndim: int
    unit: str | None = None
    time_scale: str | None = None

    def __post_init__(self) -> None:
        np.dtype(self.dtype)  # fail at import time on a typo
        if self.time_scale is not None and self.time_scale not in TIME_SCALES:
            raise ValueError(f"time scale {self.time_scale!r} not in {TIME_SCALES}")

    def validate(self, value: Any) -> Any:
        """Accept ``value`` if it is an array of this dtype and ndim (casting only safely)."""
        if isinstance(value, np.ndarray) or _is_lazy_array(value):
            actual = np.dtype(value.dtype)
        else:
            value = np.asarray(value)
            actual = value.dtype
        wanted = np.dtype(self.dtype)
        if wanted.kind in "US":
            # Strings: any length up to the declared width (stored at that width).
            if actual.kind != wanted.kind or actual.itemsize > wanted.itemsize:
                raise ValueError(f"dtype {actual.str} where at most {wanted.str} is required")
            if isinstance(value, np.ndarray) and actual.itemsize != wanted.itemsize:
                value = value.astype(wanted)
        elif actual.newbyteorder("=") != wanted.newbyteorder("="):
            if isinstance(value, np.ndarray) and np.can_cast(actual, wanted, "safe"):
                value = value.astype(wanted)
            else:
                raise ValueError(f"dtype {actual.name} where {wanted.name} is required")
        if len(value.shape) != self.ndim:
            raise ValueError(f"{len(value.shape)}-d array where {self.ndim}-d is required")
        return value

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_plain_validator_function(
            self.validate,
            serialization=core_schema.plain_serializer_function_ser_schema(
                lambda v: v, when_used="always"
            ),
        )


def asdf_datatype(dtype: str) -> str | list[str | int]:
    """The ASDF ndarray ``datatype`` of a numpy dtype name (``U16`` → ``[ucs4, 16]``)."""
    resolved = np.dtype(dtype)
    if resolved.kind == "U":
        return ["ucs4", resolved.itemsize // 4]
    if resolved.kind == "S":
        return ["ascii", resolved.itemsize]
    if resolved.kind == "b":
        return "bool8"
    return resolved.name


def _is_lazy_array(value: Any) -> bool:
    """An array-like that knows its dtype and shape without having loaded its data."""
    return hasattr(value, "dtype") and hasattr(value, "shape") and hasattr(value, "__array__")


def NDArray(  # noqa: N802 - reads like a type in field declarations
    dtype: str, ndim: int, *, unit: str | None = None, time_scale: str | None = None
) -> Any:
    """The annotation of an array field: ``flux: NDArray("float32", 2, unit="MJy.sr**-1")``."""
    return Annotated[Any, ArraySpec(dtype, ndim, unit, time_scale)]


def array_spec(annotation: Any) -> ArraySpec | None:
    """The ArraySpec inside an ``NDArray(...)`` annotation, or None."""
    for item in getattr(annotation, "__metadata__", ()):
        if isinstance(item, ArraySpec):
            return item
    return None
