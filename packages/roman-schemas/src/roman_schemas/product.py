"""The product base class: a pydantic model serialised as one tagged, versioned ASDF object.

Every product type is a subclass naming its ``product_type`` (the rad SSC name where one
exists), its ``system`` and its ``schema_version``; defining the subclass registers it, and
the asdf extension of this package then reads and writes it under its own tag.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any, ClassVar, Self

import numpy as np
from pydantic import BaseModel, ConfigDict, ValidationError

from roman_schemas.errors import ProductValidationError, UnknownProductType
from roman_schemas.meta import ProductMeta

URI_PREFIX = "asdf://ipac.caltech.edu/roman-ssc"
TREE_KEY = "ssc"  # products sit at ``asdf_file["ssc"]``
SYSTEMS = ("msos", "gdps", "cgi")

_REGISTRY: dict[str, type[Product]] = {}  # tag URI → class


class Product(BaseModel):
    """Base of every product: ``meta`` (a ProductMeta subclass) plus arrays and tables."""

    model_config = ConfigDict(
        extra="forbid", arbitrary_types_allowed=True, validate_assignment=True
    )

    product_type: ClassVar[str]
    system: ClassVar[str]
    schema_version: ClassVar[str]
    #: the rad SSC schema whose keyword set this product emits for the archive
    rad_schema: ClassVar[str | None] = None
    #: False for working products between steps (never delivered to the archive)
    archived: ClassVar[bool] = True
    #: the field holding the table that ``export`` writes (catalog-like products)
    export_table: ClassVar[str | None] = None

    meta: ProductMeta

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "product_type" not in cls.__dict__:
            return  # an abstract intermediate base
        if cls.system not in SYSTEMS:
            raise TypeError(f"{cls.__name__}.system must be one of {SYSTEMS}")
        tag = cls.tag_uri()
        if tag in _REGISTRY and _REGISTRY[tag].__qualname__ != cls.__qualname__:
            raise TypeError(f"{tag} is already registered by {_REGISTRY[tag].__name__}")
        _REGISTRY[tag] = cls

    # -- identity -----------------------------------------------------------------------
    @classmethod
    def tag_uri(cls) -> str:
        """The ASDF tag this class is written under."""
        return f"{URI_PREFIX}/tags/{cls.system}/{cls.product_type}-{cls.schema_version}"

    @classmethod
    def schema_uri(cls) -> str:
        """The URI of the YAML schema that validates this class's tagged object."""
        return f"{URI_PREFIX}/schemas/{cls.system}/{cls.product_type}-{cls.schema_version}"

    @classmethod
    def new_meta(cls, **fields: Any) -> dict[str, Any]:
        """Meta keyword arguments with this class's product and model type filled in."""
        return {"product_type": cls.product_type, "model_type": cls.__name__, **fields}

    def model_post_init(self, context: Any, /) -> None:
        if self.meta.product_type != self.product_type:
            raise ValueError(
                f"meta.product_type is {self.meta.product_type!r}, expected {self.product_type!r}"
            )

    # -- ASDF tree ----------------------------------------------------------------------
    def to_tree(self) -> dict[str, Any]:
        """The YAML tree of this product: nested dicts, ISO times, arrays left as arrays."""
        return _to_tree(self)

    @classmethod
    def from_tree(cls, node: Any) -> Self:
        """The product from its YAML tree (arrays stay lazy if asdf gave lazy arrays)."""
        try:
            return cls.model_validate(_plain(node))
        except ValidationError as exc:
            raise ProductValidationError(cls.product_type, first_error(exc)) from None

    # -- archive ------------------------------------------------------------------------
    def archive_keywords(self) -> dict[str, Any]:
        """The archive keyword set of this product (rad ``schemas/SSC`` names and types)."""
        keywords: dict[str, Any] = {}
        _collect_archive(self.meta, keywords)
        keywords.update(self.extra_archive_keywords())
        return keywords

    def extra_archive_keywords(self) -> dict[str, Any]:
        """Keywords computed from several fields; subclasses extend."""
        return {}

    # -- export ---------------------------------------------------------------------------
    def export_columns(self) -> list[Any]:
        """The columns a Parquet/ECSV export writes (``roman_schemas.tables.ExportColumn``)."""
        from roman_schemas.export import product_table

        return product_table(self).export_columns()

    def export_batches(self, rows: int) -> Iterator[dict[str, Any]]:
        """The exported rows in batches of at most ``rows`` (``{column name: array}``)."""
        from roman_schemas.export import product_table

        return product_table(self).export_batches(rows)

    @classmethod
    def archive_keyword_names(cls) -> set[str]:
        """Every archive keyword this product type can emit (optional ones when they apply)."""
        names: set[str] = set()
        _archive_names(cls.model_fields["meta"].annotation, names)
        names |= set(cls.example().extra_archive_keywords())
        return names


def _to_tree(value: Any) -> Any:
    if isinstance(value, BaseModel):
        tree = {}
        for name in type(value).model_fields:
            item = getattr(value, name)
            if item is not None:
                tree[name] = _to_tree(item)
        return tree
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dict):
        return {str(k): _to_tree(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_tree(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.memmap):
        return value.view(np.ndarray)  # asdf knows ndarray; the view keeps the mapping (no copy)
    return value


def _plain(node: Any) -> Any:
    """asdf's tagged dict/list subclasses → plain containers (arrays untouched)."""
    if isinstance(node, dict):
        return {k: _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    return node


def archive_time(value: datetime) -> str:
    """A UTC time the way the archive's ``iso_time`` keywords want it."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]


def _archive_names(model: Any, out: set[str]) -> None:
    for field in model.model_fields.values():
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        if "archive" in extra:
            out.add(str(extra["archive"]))
            continue
        annotation = field.annotation
        for candidate in (annotation, *getattr(annotation, "__args__", ())):
            if isinstance(candidate, type) and issubclass(candidate, BaseModel):
                _archive_names(candidate, out)


def _collect_archive(model: BaseModel, out: dict[str, Any]) -> None:
    for name, field in type(model).model_fields.items():
        value = getattr(model, name)
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        keyword = extra.get("archive")
        if keyword is not None:
            if value is None:
                continue  # an optional keyword that does not apply to this product
            if isinstance(value, datetime):
                value = archive_time(value)
            elif isinstance(value, enum.Enum):
                value = value.value
            out[str(keyword)] = value
        elif isinstance(value, BaseModel):
            _collect_archive(value, out)


def first_error(exc: ValidationError) -> str:
    """pydantic's first error as ``field.path: message`` on one line."""
    error = exc.errors()[0]
    where = ".".join(str(p) for p in error["loc"]) or "(root)"
    return f"{where}: {error['msg']}"


def registered_products() -> dict[str, type[Product]]:
    """Every registered product class by tag URI (importing the product modules first)."""
    import roman_schemas.products  # noqa: F401 - defining the classes registers them

    return dict(_REGISTRY)


def product_class(name: str, version: str | None = None) -> type[Product]:
    """The class for a product type (latest version unless ``version``) or a tag URI."""
    products = registered_products()
    if name in products:
        return products[name]
    matches = [c for c in products.values() if c.product_type == name]
    if version is not None:
        matches = [c for c in matches if c.schema_version == version]
    if not matches:
        known = ", ".join(sorted({c.product_type for c in products.values()}))
        raise UnknownProductType(name, f"no such product type (known: {known})")
    return max(matches, key=lambda c: tuple(int(p) for p in c.schema_version.split(".")))
