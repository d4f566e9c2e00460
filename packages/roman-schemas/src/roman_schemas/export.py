"""Exports of catalog-like products to Parquet and ECSV, keeping units and product metadata."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any

from roman_schemas.errors import ProductError, ProductValidationError
from roman_schemas.product import Product
from roman_schemas.tables import Table


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


def export_table(product: Product, out: str | os.PathLike[str]) -> int:
    """Write the product's table to ``out`` (.parquet or .ecsv) atomically; returns rows."""
    target = Path(out)
    table = product_table(product)
    metadata = export_metadata(product)
    suffix = target.suffix.lower()
    temporary = target.parent / f".{target.name}.partial-{uuid.uuid4().hex}{suffix}"
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        if suffix == ".parquet":
            import pyarrow.parquet as pq

            pq.write_table(table.to_arrow(metadata), temporary)
        elif suffix == ".ecsv":
            table.to_astropy({"roman_ssc": metadata}).write(temporary, format="ascii.ecsv")
        else:
            raise ProductError(str(target), "export format must be .parquet or .ecsv")
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)
    return len(table)


def read_export(path: str | os.PathLike[str], table_type: type[Table]) -> tuple[Table, dict]:
    """Read an exported table back: (table, product metadata)."""
    source = Path(path)
    if source.suffix.lower() == ".parquet":
        import pyarrow.parquet as pq

        arrow = pq.read_table(source)
        metadata = json.loads((arrow.schema.metadata or {}).get(b"roman_ssc", b"{}"))
        return table_type.from_arrow(arrow), metadata
    from astropy.table import Table as AstropyTable

    astro = AstropyTable.read(source, format="ascii.ecsv")
    columns = {name: astro[name] for name in astro.colnames}
    return table_type.from_columns(columns), dict(astro.meta.get("roman_ssc", {}))
