"""Exports of catalog-like products to Parquet and ECSV, keeping units and product metadata.

A product says what it exports (``Product.export_columns`` / ``export_batches``): by default
its ``export_table``; light curves export long-format rows, one per object and epoch. Parquet
is written batch by batch (a light-curve partition never sits whole in memory); ECSV, being
text for people and small tables, is written in one go and refuses very large exports.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from roman_schemas.errors import ProductError, ProductValidationError
from roman_schemas.product import Product
from roman_schemas.tables import ExportColumn, Table

ROWS_PER_BATCH = 1_000_000
ECSV_MAX_ROWS = 5_000_000


def product_table(product: Product) -> Table:
    """The table a catalog-like product exports (``export_table``)."""
    if not product.export_table:
        raise ProductValidationError(
            product.meta.file_name, f"{product.product_type} has no table to export"
        )
    return getattr(product, product.export_table)


def export_metadata(product: Product) -> dict[str, Any]:
    """Product identity and metadata carried into the exported file."""
    return {
        "product_type": product.product_type,
        "schema_version": product.schema_version,
        "tag": product.tag_uri(),
        "meta": json.loads(product.meta.model_dump_json()),
    }


def _column_meta(column: ExportColumn) -> dict[str, str]:
    meta = {"description": column.description}
    if column.unit:
        meta["unit"] = column.unit
    if column.time_scale:
        meta["time_scale"] = column.time_scale
    if column.cell_shape:
        meta["shape"] = json.dumps(list(column.cell_shape))
    return meta


def _arrow_array(values: np.ndarray, nan_is_empty: bool = False) -> Any:
    import pyarrow as pa

    if values.ndim == 1:
        return pa.array(values, mask=np.isnan(values) if nan_is_empty else None)
    width = int(np.prod(values.shape[1:]))
    flat = pa.array(np.ascontiguousarray(values).reshape(-1))
    return pa.FixedSizeListArray.from_arrays(flat, width)


def _write_parquet(
    path: Path, columns: list[ExportColumn], batches: Iterator[dict], metadata: dict
) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = 0
    writer = None
    try:
        for batch in batches:
            arrays = [_arrow_array(batch[c.name], c.nan_is_empty) for c in columns]
            if writer is None:
                fields = [
                    pa.field(c.name, a.type, metadata=_column_meta(c))
                    for c, a in zip(columns, arrays, strict=True)
                ]
                schema = pa.schema(fields, metadata={"roman_ssc": json.dumps(metadata)})
                writer = pq.ParquetWriter(path, schema)
            writer.write_table(pa.Table.from_arrays(arrays, schema=writer.schema))
            rows += len(arrays[0]) if arrays else 0
    finally:
        if writer is not None:
            writer.close()
    return rows


def _write_ecsv(
    path: Path, columns: list[ExportColumn], batches: Iterator[dict], metadata: dict, name: str
) -> int:
    from astropy import units as u
    from astropy.table import Column, MaskedColumn
    from astropy.table import Table as AstropyTable

    parts: dict[str, list[np.ndarray]] = {c.name: [] for c in columns}
    rows = 0
    for batch in batches:
        rows += len(next(iter(batch.values()))) if batch else 0
        if rows > ECSV_MAX_ROWS:
            raise ProductError(name, f"more than {ECSV_MAX_ROWS} rows: export to .parquet")
        for column in columns:
            parts[column.name].append(batch[column.name])
    table = AstropyTable(meta={"roman_ssc": metadata})
    for column in columns:
        values = np.concatenate(parts[column.name]) if parts[column.name] else np.array([])
        if column.nan_is_empty:
            values = np.ma.masked_invalid(values)
        table[column.name] = (MaskedColumn if column.nan_is_empty else Column)(
            values,
            unit=u.Unit(column.unit, parse_strict="silent") if column.unit else None,
            description=column.description,
            meta={"time_scale": column.time_scale} if column.time_scale else {},
        )
    table.write(path, format="ascii.ecsv")
    return rows


def export_table(
    product: Product, out: str | os.PathLike[str], rows_per_batch: int = ROWS_PER_BATCH
) -> int:
    """Write the product's export (.parquet or .ecsv) atomically; returns the row count."""
    return _write_export(product.export_columns(), product.export_batches(rows_per_batch),
                         export_metadata(product), out)  # fmt: skip


def export_rows(
    table: Table, out: str | os.PathLike[str], metadata: dict[str, Any],
    rows_per_batch: int = ROWS_PER_BATCH,
) -> int:  # fmt: skip
    """Write a table that belongs to no product (e.g. results on outside data) as a product's
    export would be written, with ``metadata`` saying where it came from."""
    return _write_export(table.export_columns(), table.export_batches(rows_per_batch),
                         {"table": type(table).__name__, **metadata}, out)  # fmt: skip


def _write_export(
    columns: list[ExportColumn], batches: Iterator[dict], metadata: dict,
    out: str | os.PathLike[str],
) -> int:  # fmt: skip
    target = Path(out)
    suffix = target.suffix.lower()
    if suffix not in (".parquet", ".ecsv"):
        raise ProductError(str(target), "export format must be .parquet or .ecsv")
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.parent / f".{target.name}.partial-{uuid.uuid4().hex}{suffix}"
    try:
        if suffix == ".parquet":
            rows = _write_parquet(temporary, columns, batches, metadata)
        else:
            rows = _write_ecsv(temporary, columns, batches, metadata, str(target))
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)
    return rows


def read_export(path: str | os.PathLike[str]) -> tuple[dict[str, np.ndarray], dict, dict]:
    """Read an export back: (columns by name, per-column metadata, product metadata)."""
    source = Path(path)
    if source.suffix.lower() == ".parquet":
        import pyarrow.parquet as pq

        arrow = pq.read_table(source)
        metadata = json.loads((arrow.schema.metadata or {}).get(b"roman_ssc", b"{}"))
        columns, column_meta = {}, {}
        for field in arrow.schema:
            meta = {k.decode(): v.decode() for k, v in (field.metadata or {}).items()}
            column = arrow.column(field.name).combine_chunks()
            if "shape" in meta:
                flat = column.flatten().to_numpy(zero_copy_only=False)
                values = flat.reshape(len(column), *json.loads(meta["shape"]))
            else:
                values = column.to_numpy(zero_copy_only=False)
            columns[field.name], column_meta[field.name] = values, meta
        return columns, column_meta, metadata
    from astropy.table import Table as AstropyTable

    astro = AstropyTable.read(source, format="ascii.ecsv")
    columns, column_meta = {}, {}
    for name in astro.colnames:
        column = astro[name]
        meta = {"description": column.description or ""}
        if column.unit is not None:
            meta["unit"] = column.unit.to_string()
        meta.update({k: str(v) for k, v in (column.meta or {}).items()})
        if np.ma.isMaskedArray(column):
            column = column.filled("" if column.dtype.kind in "US" else np.nan)
        columns[name], column_meta[name] = np.asarray(column), meta
    return columns, column_meta, dict(astro.meta.get("roman_ssc", {}))
