"""The ``roman-schemas`` command: list, info, validate, example, keywords, export."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from roman_schemas.cli import app
from roman_schemas.export import read_export
from roman_schemas.products.msos import ReferenceFrame, ReferenceObjects

runner = CliRunner()


def test_list_names_every_product_type_and_version():
    result = runner.invoke(app, ["list"])
    assert result.exit_code == 0
    assert "wfi_microlensing_reference_frame_level_3" in result.output
    assert "1.0.0" in result.output


def test_example_then_info_validate_and_keywords(tmp_path):
    path = tmp_path / "rf.asdf"
    assert runner.invoke(app, ["example", ReferenceFrame.product_type, str(path)]).exit_code == 0
    info = runner.invoke(app, ["info", str(path)])
    assert info.exit_code == 0 and "data: array (64, 64) float32" in info.output
    assert runner.invoke(app, ["validate", str(path)]).exit_code == 0
    keywords = json.loads(runner.invoke(app, ["keywords", str(path)]).output)
    assert keywords["filename"] == "rf.asdf"
    assert keywords["product_type"] == ReferenceFrame.product_type


def test_validate_exits_1_naming_the_failing_file(tmp_path):
    good, bad = tmp_path / "good.asdf", tmp_path / "bad.asdf"
    runner.invoke(app, ["example", ReferenceFrame.product_type, str(good)])
    bad.write_bytes(good.read_bytes()[:500])
    result = runner.invoke(app, ["validate", str(good), str(bad)])
    assert result.exit_code == 1
    assert f"error: {bad}: " in result.output


def test_example_of_an_unknown_type_fails_clearly(tmp_path):
    result = runner.invoke(app, ["example", "no_such_product", str(tmp_path / "x.asdf")])
    assert result.exit_code == 1
    assert "no_such_product: no such product type" in result.output
    assert not (tmp_path / "x.asdf").exists()


def test_export_to_parquet_and_ecsv_keeps_units_and_metadata(tmp_path):
    path = tmp_path / "rf.asdf"
    runner.invoke(app, ["example", ReferenceFrame.product_type, str(path)])
    original = ReferenceFrame.example()
    for suffix in ("parquet", "ecsv"):
        out = tmp_path / f"objects.{suffix}"
        result = runner.invoke(app, ["export", str(path), str(out)])
        assert result.exit_code == 0, result.output
        columns, _, metadata = read_export(out)
        table = ReferenceObjects.from_export(columns)
        assert len(table) == len(original.objects)
        assert list(table.object_id) == list(original.objects.object_id)
        assert metadata["product_type"] == ReferenceFrame.product_type
        assert metadata["meta"]["season"] == "s01"
    import pyarrow.parquet as pq

    schema = pq.read_schema(tmp_path / "objects.parquet")
    assert schema.field("ra").metadata[b"unit"] == b"deg"
    from astropy.table import Table

    assert str(Table.read(tmp_path / "objects.ecsv")["ra"].unit) == "deg"
