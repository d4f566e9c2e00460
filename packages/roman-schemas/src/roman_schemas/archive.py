"""Checks a product's archive keyword set against the rad package's SSC schema for it.

rad publishes the keywords the archive ingests for each SSC product under
``rad/resources/schemas/SSC`` (it does not register them with asdf, so we load them here).
rad is needed only for this check: a test dependency, not a runtime one.
"""

from __future__ import annotations

import functools
from importlib import resources
from typing import Any

from roman_schemas.errors import ProductValidationError

RAD_SSC_PREFIX = "asdf://stsci.edu/datamodels/roman/schemas/SSC/"


@functools.cache
def _resolved_rad_schema(schema_id: str) -> dict[str, Any]:
    try:
        import rad  # noqa: F401 - only to fail early with a clear message
    except ImportError:
        raise ProductValidationError(
            schema_id, "checking archive keywords needs the rad package (pip install rad)"
        ) from None
    import asdf
    from asdf.resource import DirectoryResourceMapping

    ssc = resources.files("rad") / "resources" / "schemas" / "SSC"
    config = asdf.get_config()
    if not any(
        isinstance(m, DirectoryResourceMapping)
        and str(getattr(m, "_uri_prefix", "")) == RAD_SSC_PREFIX
        for m in config.resource_mappings
    ):
        config.add_resource_mapping(DirectoryResourceMapping(ssc, RAD_SSC_PREFIX, recursive=True))
    return asdf.schema.load_schema(schema_id, resolve_references=True)


def _properties(schema: dict[str, Any]) -> tuple[set[str], set[str]]:
    """All property names and all required names of a (resolved) schema with allOf parts."""
    names = set(schema.get("properties", {}))
    required = set(schema.get("required", []))
    for part in schema.get("allOf", []):
        more, more_required = _properties(part)
        names |= more
        required |= more_required
    return names, required


def rad_keyword_names(schema_id: str) -> tuple[set[str], set[str]]:
    """(every keyword, required keywords) of a rad SSC product schema."""
    return _properties(_resolved_rad_schema(schema_id))


def check_archive_keywords(keywords: dict[str, Any], schema_id: str) -> None:
    """Raise ProductValidationError unless ``keywords`` is exactly a valid rad keyword set."""
    import jsonschema

    schema = _resolved_rad_schema(schema_id)
    names, required = _properties(schema)
    extra = sorted(set(keywords) - names)
    if extra:
        raise ProductValidationError(schema_id, f"keywords not in the rad schema: {extra}")
    missing = sorted(required - set(keywords))
    if missing:
        raise ProductValidationError(schema_id, f"required keywords missing: {missing}")
    validator = jsonschema.Draft4Validator(schema)
    errors = sorted(validator.iter_errors(keywords), key=lambda e: list(e.absolute_path))
    if errors:
        error = errors[0]
        where = "/".join(str(p) for p in error.absolute_path) or "(root)"
        raise ProductValidationError(schema_id, f"{where}: {error.message}")
