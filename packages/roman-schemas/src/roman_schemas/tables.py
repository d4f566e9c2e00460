"""Tables inside products: named array columns of one length, with units kept on export.

A column is 1-D, or N-D with rows along the first axis (a p(z) grid per source, say).

Columns are stored as separate ASDF arrays (not one structured array) so a reader that wants
two columns of a 200-million-row catalog loads only those two.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict, model_validator

from roman_schemas.arrays import ArraySpec


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

    def to_arrow(self, metadata: dict[str, Any] | None = None) -> Any:
        """A ``pyarrow.Table`` with each column's unit, time scale and description kept."""
        import pyarrow as pa

        fields, arrays = [], []
        for name, spec in self.column_specs().items():
            column = np.asarray(getattr(self, name))
            field_meta = {"description": type(self).model_fields[name].description or ""}
            if spec.unit:
                field_meta["unit"] = spec.unit
            if spec.time_scale:
                field_meta["time_scale"] = spec.time_scale
            if column.ndim == 1:
                array = pa.array(column)
            else:  # N-D cells: a fixed-size list per row, the cell shape kept in metadata
                field_meta["shape"] = json.dumps(list(column.shape[1:]))
                width = int(np.prod(column.shape[1:]))
                flat = pa.array(np.ascontiguousarray(column).reshape(-1))
                array = pa.FixedSizeListArray.from_arrays(flat, width)
            fields.append(pa.field(name, array.type, metadata=field_meta))
            arrays.append(array)
        schema_meta = {"roman_ssc": json.dumps(metadata or {}, default=str)}
        return pa.Table.from_arrays(arrays, schema=pa.schema(fields, metadata=schema_meta))

    def to_astropy(self, metadata: dict[str, Any] | None = None) -> Any:
        """An ``astropy.table.Table`` with units and descriptions (for ECSV)."""
        from astropy import units as u
        from astropy.table import Column
        from astropy.table import Table as AstropyTable

        table = AstropyTable(meta=dict(metadata or {}))
        for name, spec in self.column_specs().items():
            meta = {"time_scale": spec.time_scale} if spec.time_scale else {}
            table[name] = Column(
                np.asarray(getattr(self, name)),
                unit=u.Unit(spec.unit, parse_strict="silent") if spec.unit else None,
                description=type(self).model_fields[name].description,
                meta=meta,
            )
        return table

    @classmethod
    def from_arrow(cls, table: Any) -> Table:
        """The table back from ``to_arrow`` output (extra columns are an error)."""
        columns = {}
        for field in table.schema:
            column = table.column(field.name).combine_chunks()
            shape = (field.metadata or {}).get(b"shape")
            if shape is None:
                columns[field.name] = column.to_numpy(zero_copy_only=False)
            else:
                flat = column.flatten().to_numpy(zero_copy_only=False)
                columns[field.name] = flat.reshape(len(column), *json.loads(shape))
        return cls.from_columns(columns)

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
