"""``roman-schemas``: list product types, inspect, validate, export and make example files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer

from roman_schemas.errors import ProductError
from roman_schemas.io import open_product, validate_file, write_product
from roman_schemas.product import product_class, registered_products

app = typer.Typer(
    name="roman-schemas",
    help="Roman SSC product schemas: inspect, validate and export product files.",
    no_args_is_help=True,
    add_completion=False,
)


def _fail(error: ProductError) -> None:
    typer.echo(f"error: {error}", err=True)
    raise typer.Exit(1)


@app.command("list")
def list_products() -> None:
    """Every product type with its schema version and tag."""
    for tag, cls in sorted(registered_products().items()):
        typer.echo(f"{cls.system:5} {cls.product_type:55} {cls.schema_version:8} {tag}")


def _describe(value: Any, prefix: str = "") -> list[str]:
    lines = []
    for name, item in value.items():
        key = f"{prefix}{name}"
        if isinstance(item, dict):
            lines.extend(_describe(item, key + "."))
        elif hasattr(item, "shape") and hasattr(item, "dtype"):
            lines.append(f"{key}: array {tuple(item.shape)} {np.dtype(item.dtype).name}")
    return lines


@app.command()
def info(path: Annotated[Path, typer.Argument(help="product file")]) -> None:
    """Type, schema version, key metadata and array shapes of a product file."""
    try:
        with open_product(path) as product:
            typer.echo(f"file:          {path}")
            typer.echo(f"product type:  {product.product_type} {product.schema_version}")
            typer.echo(f"model:         {type(product).__name__}")
            typer.echo(f"tag:           {product.tag_uri()}")
            meta = product.meta
            typer.echo(f"created:       {meta.file_date.isoformat()}")
            typer.echo(f"processing id: {meta.processing_id}")
            typer.echo(f"step:          {meta.provenance.step}")
            typer.echo(f"inputs:        {len(meta.provenance.inputs)}")
            versions = ", ".join(f"{k} {v}" for k, v in meta.software_versions.items())
            typer.echo(f"software:      {versions}")
            tree = {n: getattr(product, n) for n in type(product).model_fields if n != "meta"}
            for line in _describe(_shallow(tree)):
                typer.echo(f"  {line}")
    except ProductError as error:
        _fail(error)


def _shallow(tree: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in tree.items():
        if hasattr(type(value), "model_fields"):
            out[name] = _shallow({n: getattr(value, n) for n in type(value).model_fields})
        else:
            out[name] = value
    return out


@app.command()
def validate(paths: Annotated[list[Path], typer.Argument(help="product files")]) -> None:
    """Fully validate product files (schema, model, completeness, checksums); exit 1 on error."""
    failed = 0
    for path in paths:
        try:
            product = validate_file(path)
            typer.echo(f"ok    {path} ({product.product_type} {product.schema_version})")
        except ProductError as error:
            failed += 1
            typer.echo(f"error: {error}", err=True)
    if failed:
        raise typer.Exit(1)


@app.command()
def example(
    product_type: Annotated[str, typer.Argument(help="product type (see `list`)")],
    out: Annotated[Path, typer.Argument(help="file to write")],
) -> None:
    """Write a small valid example of a product type."""
    try:
        cls = product_class(product_type)
        product = cls.example()
        product.meta.file_name = out.name
        write_product(product, out)
        typer.echo(f"wrote {out} ({cls.product_type} {cls.schema_version})")
    except ProductError as error:
        _fail(error)


@app.command()
def keywords(path: Annotated[Path, typer.Argument(help="product file")]) -> None:
    """Print the product's archive keyword set (rad SSC names) as JSON."""
    try:
        with open_product(path) as product:
            typer.echo(json.dumps(product.archive_keywords(), indent=2, default=str))
    except ProductError as error:
        _fail(error)


@app.command()
def export(
    path: Annotated[Path, typer.Argument(help="catalog-like product file")],
    out: Annotated[Path, typer.Argument(help="OUT.parquet or OUT.ecsv")],
) -> None:
    """Export a catalog-like product's table to Parquet or ECSV, units and metadata kept."""
    from roman_schemas.export import export_table

    try:
        with open_product(path) as product:
            rows = export_table(product, out)
        typer.echo(f"wrote {out} ({rows} rows)")
    except ProductError as error:
        _fail(error)


@app.command()
def generate() -> None:
    """Regenerate the YAML schemas and manifest from the models (developers)."""
    from roman_schemas.schema_gen import generate as regenerate

    for path in regenerate():
        typer.echo(f"wrote {path}")


@app.command()
def docs(out: Annotated[Path, typer.Argument(help="folder for the reference pages")]) -> None:
    """Write the reference page of every product (fields, types, units) from the schemas."""
    from roman_schemas.reference_docs import write_pages

    for path in write_pages(out):
        typer.echo(f"wrote {path}")


@app.command()
def release(
    examples: Annotated[Path, typer.Argument(help="folder of frozen per-version example files")],
) -> None:
    """Freeze the current schemas (developers, at a release): record digests, write examples."""
    from roman_schemas.schema_gen import release as freeze

    for path in freeze(examples):
        typer.echo(f"released {path}")


def main() -> None:
    """Entry point of the ``roman-schemas`` command."""
    app()


if __name__ == "__main__":
    main()
