"""Reference pages of every product (fields, types, units), generated from the YAML schemas.

``roman-schemas docs DIR`` writes one Markdown page per product version and an index; the
package's ``docs/products`` folder holds the committed pages and a test keeps them current.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from roman_schemas.product import Product, registered_products
from roman_schemas.schema_gen import schema_path


def _type_of(schema: dict[str, Any]) -> str:
    if "tag" in schema:
        datatype = schema["datatype"]
        if isinstance(datatype, list):
            datatype = f"{datatype[0]}[{datatype[1]}]"
        return f"array {datatype}, {schema['ndim']}-d"
    if "enum" in schema:
        return "one of " + ", ".join(f"`{v}`" for v in schema["enum"])
    kind = schema.get("type", "any")
    if kind == "array":
        return f"list of {_type_of(schema.get('items', {}))}"
    if kind == "object" and "properties" not in schema:
        values = schema.get("additionalProperties")
        return "mapping" if values in (None, True) else f"mapping to {_type_of(values)}"
    if schema.get("format") == "date-time":
        return "time (ISO 8601, UTC)"
    if schema.get("format") == "date":
        return "date (ISO 8601)"
    if "anyOf" in schema:
        return " or ".join(_type_of(option) for option in schema["anyOf"])
    return str(kind)


def _constraints(schema: dict[str, Any]) -> str:
    parts = []
    for key, label in (
        ("minimum", "≥"),
        ("exclusiveMinimum", ">"),
        ("maximum", "≤"),
        ("exclusiveMaximum", "<"),
        ("maxLength", "max length"),
        ("pattern", "pattern"),
    ):
        if key in schema:
            value = f"`{schema[key]}`" if key == "pattern" else schema[key]
            parts.append(f"{label} {value}")
    return ", ".join(parts)


def _rows(schema: dict[str, Any], prefix: str = "") -> list[list[str]]:
    rows = []
    required = set(schema.get("required", []))
    for name, prop in schema.get("properties", {}).items():
        path = f"{prefix}{name}"
        unit = prop.get("unit", "")
        if prop.get("time_scale"):
            unit = f"{unit} ({prop['time_scale'].upper()})"
        description = " ".join(str(prop.get("description", "")).split())
        note = _constraints(prop)
        if note:
            description = f"{description} ({note})" if description else note
        if prop.get("type") == "object" and "properties" in prop:
            rows.append([f"`{path}`", "group", "", "yes" if name in required else "no",
                         description, ""])  # fmt: skip
            rows.extend(_rows(prop, path + "."))
            continue
        rows.append(
            [
                f"`{path}`",
                _type_of(prop),
                unit,
                "yes" if name in required else "no",
                description.replace("|", "\\|"),
                f"`{prop['archive_keyword']}`" if "archive_keyword" in prop else "",
            ]
        )
    return rows


def page(cls: type[Product]) -> str:
    """The Markdown reference page of one product version."""
    schema = yaml.safe_load(schema_path(cls).read_text())
    lines = [
        f"# {cls.product_type} {cls.schema_version}",
        "",
        schema.get("title", ""),
        "",
        f"- system: {cls.system.upper()}",
        f"- class: `{cls.__module__}.{cls.__name__}`",
        f"- tag: `{cls.tag_uri()}`",
        f"- schema: `{cls.schema_uri()}`",
    ]
    if cls.rad_schema:
        lines.append(f"- archive keywords: `{cls.rad_schema}`")
    if cls.export_table:
        lines.append(f"- exports (Parquet, ECSV): the `{cls.export_table}` table")
    lines += [
        "",
        "| field | type | unit | required | description | archive keyword |",
        "|---|---|---|---|---|---|",
    ]
    lines += ["| " + " | ".join(row) + " |" for row in _rows(schema)]
    return "\n".join(lines) + "\n"


def page_path(root: Path, cls: type[Product]) -> Path:
    """Where the page of ``cls`` goes under ``root``."""
    return root / cls.system / f"{cls.product_type}-{cls.schema_version}.md"


def expected_pages(root: Path) -> dict[Path, str]:
    """Every page and the index, with their content."""
    classes = sorted(registered_products().values(), key=lambda c: (c.system, c.tag_uri()))
    pages = {page_path(root, cls): page(cls) for cls in classes}
    index = ["# Roman SSC products", "", "Generated from the schemas by `roman-schemas docs`.", ""]
    for system in ("msos", "gdps", "cgi"):
        members = [c for c in classes if c.system == system]
        if not members:
            continue
        index += [f"## {system.upper()}", ""]
        for cls in members:
            relative = page_path(root, cls).relative_to(root).as_posix()
            title = (cls.__doc__ or "").strip().splitlines()[0]
            index.append(f"- [{cls.product_type} {cls.schema_version}]({relative}) — {title}")
        index.append("")
    pages[root / "index.md"] = "\n".join(index)
    return pages


def write_pages(root: Path) -> list[Path]:
    """Write every page that changed; returns them."""
    changed = []
    for path, text in expected_pages(root).items():
        if not path.exists() or path.read_text() != text:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            changed.append(path)
    return changed
