"""Catalog-like products export to Parquet and ECSV, units and metadata kept, and read back."""

from __future__ import annotations

import numpy as np
import pytest
from astropy import units as u

from roman_schemas import registered_products
from roman_schemas.export import export_table, product_table, read_export

EXPORTABLE = sorted(
    (cls for cls in registered_products().values() if cls.export_table),
    key=lambda cls: cls.tag_uri(),
)


def _expected(product) -> dict:
    batches = list(product.export_batches(rows=7))  # several batches, to test batching too
    return {
        column.name: np.concatenate([batch[column.name] for batch in batches])
        for column in product.export_columns()
    }


@pytest.mark.parametrize("cls", EXPORTABLE, ids=lambda c: c.tag_uri().rsplit("/", 1)[1])
@pytest.mark.parametrize("suffix", ["parquet", "ecsv"])
def test_a_catalog_exports_and_reads_back_with_units_and_metadata(cls, suffix, tmp_path):
    product = cls.example()
    expected = _expected(product)
    out = tmp_path / f"table.{suffix}"
    rows = export_table(product, out, rows_per_batch=7)
    assert rows == len(next(iter(expected.values())))
    columns, column_meta, metadata = read_export(out)
    assert metadata["product_type"] == cls.product_type
    assert metadata["schema_version"] == cls.schema_version
    assert metadata["meta"]["file_name"] == product.meta.file_name
    assert list(columns) == [c.name for c in product.export_columns()]
    for column in product.export_columns():
        original, read = expected[column.name], columns[column.name]
        assert read.shape == original.shape, column.name
        if original.dtype.kind == "f":
            np.testing.assert_allclose(
                read, original, rtol=1e-6, equal_nan=True, err_msg=column.name
            )
        else:
            np.testing.assert_array_equal(read, original, err_msg=column.name)
        if column.unit:
            assert u.Unit(column_meta[column.name]["unit"]) == u.Unit(column.unit), column.name
        if column.time_scale:
            assert column_meta[column.name]["time_scale"] == column.time_scale


@pytest.mark.parametrize("cls", EXPORTABLE, ids=lambda c: c.tag_uri().rsplit("/", 1)[1])
def test_a_table_export_reads_back_into_its_table_type(cls, tmp_path):
    product = cls.example()
    table = product_table(product)
    if product.export_columns() != table.export_columns():
        return  # a product with its own export layout (light curves) is covered above
    export_table(product, tmp_path / "t.parquet")
    columns, _, _ = read_export(tmp_path / "t.parquet")
    again = type(table).from_export(columns)
    for name in table.column_specs():
        np.testing.assert_array_equal(np.asarray(getattr(again, name)), getattr(table, name))


@pytest.mark.parametrize(
    "cls_name, names",
    [
        ("DailyLightCurves", ["object_id", "ra", "dec", "time_mjd", "flux", "flux_err", "flag"]),
        ("LightCurveCatalog", ["object_id", "ra", "dec", "time_mjd", "flux", "flux_err", "flag"]),
        ("ObjectFiducialCatalog", ["object_id", "ra", "dec", "x", "y", "flux", "flux_err"]),
        ("ReferenceFrame", ["object_id", "ra", "dec", "x", "y", "flux", "flux_err"]),
        (
            "MicrolensingEventCatalog",
            [
                "object_id",
                "t_0",
                "u_0",
                "t_E",
                "rho",
                "pi_E_N",
                "pi_E_E",
                "s",
                "q",
                "alpha",
                "f_source",
                "f_blend",
                "chi2",
                "dof",
                "model",
                "classification",
                "t_0_err",
                "u_0_err",
                "t_E_err",
                "rho_err",
                "pi_E_N_err",
                "pi_E_E_err",
                "s_err",
                "q_err",
                "alpha_err",
                "f_source_err",
                "f_blend_err",
            ],
        ),
    ],
)
def test_msos_exports_use_the_plain_column_names_astronomers_expect(cls_name, names):
    import roman_schemas.products.msos as msos

    exported = [c.name for c in getattr(msos, cls_name).example().export_columns()]
    assert exported[: len(names)] == names or set(names) <= set(exported)


def test_a_constant_star_is_flat_at_its_reference_flux_in_the_long_export(tmp_path):
    from roman_schemas.products.msos import DailyLightCurves

    product = DailyLightCurves.example()
    product.delta_flux_ujy[:] = 0.0
    export_table(product, tmp_path / "lc.parquet")
    columns, _, _ = read_export(tmp_path / "lc.parquet")
    first = columns["object_id"] == product.object_id[1]
    assert first.sum() == len(product.epochs)
    np.testing.assert_allclose(columns["flux"][first], product.objects.ref_flux_ujy[1])
    np.testing.assert_allclose(columns["time_mjd"][first], product.epochs.time_mjd_tdb)


def test_a_product_without_a_table_refuses_to_export(tmp_path):
    from roman_schemas import ProductValidationError

    without = [cls for cls in registered_products().values() if not cls.export_table]
    assert without, "images and spectra have no table: some product must refuse"
    with pytest.raises(ProductValidationError, match="no table to export"):
        export_table(without[0].example(), tmp_path / "x.parquet")


@pytest.mark.parametrize("suffix", [".parquet", ".ecsv"])
def test_event_parameters_a_model_lacks_are_empty_cells(suffix, tmp_path):
    from roman_schemas.products.msos import MicrolensingEventCatalog

    product = MicrolensingEventCatalog.example()
    export_table(product, tmp_path / f"events{suffix}")
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        table = pq.read_table(tmp_path / "events.parquet")
        assert table.column("q").null_count == 2  # PSPL and PSPL+par rows have no q
        assert table.column("t_0").null_count == 0
    else:
        from astropy.table import Table as AstropyTable

        table = AstropyTable.read(tmp_path / "events.ecsv")
        assert int(table["q"].mask.sum()) == 2 and table["q"][1] == product.events.q[1]
    columns, _, _ = read_export(tmp_path / f"events{suffix}")
    again = type(product.events).from_export(columns)
    np.testing.assert_array_equal(again.q, product.events.q)
