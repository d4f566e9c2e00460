"""Tables inside products: named array columns of one length, with units kept on export.

A column is 1-D, or N-D with rows along the first axis (a p(z) grid per source, say).

Columns are stored as separate ASDF arrays (not one structured array) so a reader that wants
two columns of a 200-million-row catalog loads only those two.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict, model_validator

from roman_schemas.arrays import ArraySpec


@dataclass(frozen=True)
class ExportColumn:
    """One column of an export: its name there, dtype, unit, time scale and meaning."""

    name: str
    dtype: str
    unit: str | None
    time_scale: str | None
    description: str
    cell_shape: tuple[int, ...] = ()
    nan_is_empty: bool = False  # NaN is written as an empty cell (null / masked)


def field_array_spec(model: type[BaseModel], name: str) -> ArraySpec | None:
    """The ArraySpec of a model field declared with ``NDArray(...)``, or None."""
    for item in model.model_fields[name].metadata:
        if isinstance(item, ArraySpec):
            return item
    return None


class Table(BaseModel):
    """A table whose every field is an ``NDArray`` column with rows along the first axis."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True, frozen=False)

    #: the column that identifies rows (documented in exports)
    key_column: ClassVar[str | None] = None
    #: column → name in Parquet/ECSV exports, where a plainer name serves users better
    export_names: ClassVar[dict[str, str]] = {}
    #: float columns whose NaN means "not part of this row" and is exported as empty
    export_empty_nan: ClassVar[tuple[str, ...]] = ()

    @model_validator(mode="after")
    def _same_length(self) -> Table:
        lengths = {name: getattr(self, name).shape[0] for name in self.column_specs()}
        if len(set(lengths.values())) > 1:
            raise ValueError(f"columns differ in length: {lengths}")
        return self

    @classmethod
    def column_specs(cls) -> dict[str, ArraySpec]:
        """Column name → ArraySpec, in declaration order."""
        specs = {}
        for name in cls.model_fields:
            spec = field_array_spec(cls, name)
            if spec is None or spec.ndim < 1:
                raise TypeError(f"{cls.__name__}.{name} must be an NDArray column")
            specs[name] = spec
        return specs

    def __len__(self) -> int:
        first = next(iter(self.column_specs()))
        return int(getattr(self, first).shape[0])

    @classmethod
    def empty(cls) -> Table:
        """A table with no rows."""
        return cls(**{n: np.zeros(0, dtype=s.dtype) for n, s in cls.column_specs().items()})

    def export_columns(self) -> list[ExportColumn]:
        """The columns an export writes, renamed by ``export_names``, units kept."""
        columns = []
        for name, spec in self.column_specs().items():
            array = getattr(self, name)
            columns.append(
                ExportColumn(
                    name=self.export_names.get(name, name),
                    dtype=spec.dtype,
                    unit=spec.unit,
                    time_scale=spec.time_scale,
                    description=type(self).model_fields[name].description or "",
                    cell_shape=tuple(array.shape[1:]),
                    nan_is_empty=name in self.export_empty_nan,
                )
            )
        return columns

    def export_batches(self, rows: int) -> Iterator[dict[str, np.ndarray]]:
        """The rows in batches of at most ``rows``, as ``{export name: array}``."""
        names = {name: self.export_names.get(name, name) for name in self.column_specs()}
        for start in range(0, max(len(self), 1), rows):
            yield {
                out: np.asarray(getattr(self, name)[start : start + rows])
                for name, out in names.items()
            }

    @classmethod
    def from_export(cls, columns: dict[str, Any]) -> Table:
        """The table from exported columns (export names mapped back)."""
        back = {out: name for name, out in cls.export_names.items()}
        return cls.from_columns({back.get(name, name): value for name, value in columns.items()})

    @classmethod
    def from_columns(cls, columns: dict[str, Any]) -> Table:
        """The table from columns read elsewhere (Arrow, ECSV): strings and masks normalised."""
        specs = cls.column_specs()
        normalised = {}
        for name, column in columns.items():
            spec = specs.get(name)
            if spec is not None and np.dtype(spec.dtype).kind in "US":
                if np.ma.isMaskedArray(column):
                    column = column.filled("")
                column = np.asarray(
                    ["" if v is None else str(v) for v in np.ravel(column)], dtype=spec.dtype
                ).reshape(np.shape(column))
            elif np.ma.isMaskedArray(column):
                column = column.filled(np.nan if column.dtype.kind == "f" else 0)
            normalised[name] = np.asarray(column)
        return cls(**normalised)
