"""Metadata every product carries: what it is, who made it, from what, with which software.

Fields tagged ``archive="<keyword>"`` map one-to-one onto an archive keyword of the rad
package's SSC schemas; :meth:`roman_schemas.product.Product.archive_keywords` collects them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

ORIGIN = "IPAC/SSC"


def archive(keyword: str, **kwargs: Any) -> Any:
    """A pydantic Field that is also the archive keyword ``keyword``."""
    extra = kwargs.pop("json_schema_extra", {}) or {}
    return Field(json_schema_extra={**extra, "archive": keyword}, **kwargs)


class MetaModel(BaseModel):
    """Base of metadata blocks: strict, no unknown keys, assignment validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class InputFile(MetaModel):
    """One input of a product, pinned by content."""

    uri: str = Field(description="where the input was read from")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="sha256 of the input's bytes")


class Provenance(MetaModel):
    """How a product was made: its inputs, the step's parameters, the processing task."""

    step: str = Field(description="pipeline step that wrote the product, e.g. msos.reference")
    inputs: list[InputFile] = Field(default_factory=list, description="inputs with checksums")
    parameters: dict[str, Any] = Field(default_factory=dict, description="step parameters")
    task_id: str | None = Field(None, description="processing-database task id")


def utc_now() -> datetime:
    """The current time in UTC, to the microsecond."""
    return datetime.now(UTC)


class ProductMeta(MetaModel):
    """The metadata block of every product (systems extend it)."""

    product_type: str = archive("product_type", description="product type (rad SSC name)")
    model_type: str = archive("model_type", description="roman-schemas class of the product")
    file_name: str = archive("filename", max_length=1024, description="file name of the product")
    file_date: datetime = archive(
        "file_date", default_factory=utc_now, description="creation time (UTC)"
    )
    origin: str = archive("origin", default=ORIGIN, max_length=15, description="institution")
    instrument: Literal["WFI", "CGI"] = archive("instrument", description="Roman instrument")
    processing_id: str = Field(
        "r01", pattern=r"^[a-z][0-9]{2}$", description="processing release id, e.g. r03"
    )
    software_versions: dict[str, str] = Field(
        default_factory=dict, description="distribution name → version of the software used"
    )
    provenance: Provenance = Field(description="inputs, parameters and task of this product")

    @field_validator("file_date")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("file_date must be timezone-aware (UTC)")
        return value.astimezone(UTC)
