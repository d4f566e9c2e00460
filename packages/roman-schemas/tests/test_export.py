"""Catalog-like products export to Parquet and ECSV, units and metadata kept, and read back."""

from __future__ import annotations

import numpy as np
import pytest

from roman_schemas import registered_products
from roman_schemas.export import export_table, product_table, read_export

EXPORTABLE = sorted(
    (cls for cls in registered_products().values() if cls.export_table),
    key=lambda cls: cls.tag_uri(),
)


@pytest.mark.parametrize("cls", EXPORTABLE, ids=lambda c: c.tag_uri().rsplit("/", 1)[1])
@pytest.mark.parametrize("suffix", ["parquet", "ecsv"])
def test_a_catalog_exports_and_reads_back_with_units_and_metadata(cls, suffix, tmp_path):
    product = cls.example()
    table = product_table(product)
    out = tmp_path / f"table.{suffix}"
    assert export_table(product, out) == len(table)
    again, metadata = read_export(out, type(table))
    assert metadata["product_type"] == cls.product_type
    assert metadata["schema_version"] == cls.schema_version
    assert metadata["meta"]["file_name"] == product.meta.file_name
    for name in table.column_specs():
        original, read = np.asarray(getattr(table, name)), np.asarray(getattr(again, name))
        assert read.shape == original.shape, name
        if original.dtype.kind == "f":
            np.testing.assert_allclose(read, original, rtol=1e-6, equal_nan=True, err_msg=name)
        else:
            np.testing.assert_array_equal(read, original, err_msg=name)


@pytest.mark.parametrize("cls", EXPORTABLE, ids=lambda c: c.tag_uri().rsplit("/", 1)[1])
def test_parquet_columns_carry_their_units(cls, tmp_path):
    import pyarrow.parquet as pq

    product = cls.example()
    export_table(product, tmp_path / "t.parquet")
    schema = pq.read_schema(tmp_path / "t.parquet")
    for name, spec in product_table(product).column_specs().items():
        metadata = schema.field(name).metadata or {}
        if spec.unit:
            assert metadata[b"unit"] == spec.unit.encode()
        if spec.time_scale:
            assert metadata[b"time_scale"] == spec.time_scale.encode()


def test_a_product_without_a_table_refuses_to_export(tmp_path):
    from roman_schemas import ProductValidationError

    without = [cls for cls in registered_products().values() if not cls.export_table]
    if not without:
        pytest.skip("every product type has a table")
    with pytest.raises(ProductValidationError, match="no table to export"):
        export_table(without[0].example(), tmp_path / "x.parquet")
