"""The one way to write a product: validated, published atomically, registered with provenance.

A product is serialised to a local temporary file (schema-validated by roman-schemas), put in
storage as one atomic publish, and registered in the processing database with its inputs.
If registration fails the object is withdrawn, so storage never holds an unregistered product.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from collections.abc import Iterator, Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from roman_schemas import Product, ProductError, open_product, write_product
from roman_schemas.meta import InputFile
from ssc_common.context import Context
from ssc_common.errors import InputError, SSCError
from ssc_common.metrics import record_product
from ssc_common.provenance import InputRef

if TYPE_CHECKING:
    from ssc_common.db import ProductRecord

log = logging.getLogger(__name__)
P = TypeVar("P", bound=Product)


def software_versions(*distributions: str) -> dict[str, str]:
    """Installed versions of our distributions (always including roman-schemas, ssc-common)."""
    versions = {}
    for name in ("roman-schemas", "ssc-common", *distributions):
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            continue
    return versions


def publish_product(
    ctx: Context,
    product: Product,
    key: str,
    *,
    task_id: str | None,
    inputs: Sequence[InputRef],
) -> ProductRecord:
    """Write ``product`` to storage under ``key`` and register it; returns the DB record."""
    product.meta.file_name = Path(key).name
    product.meta.provenance.task_id = task_id
    product.meta.provenance.inputs = [InputFile(uri=i.uri, sha256=i.sha256) for i in inputs]
    with tempfile.TemporaryDirectory(prefix="ssc-publish-") as scratch:
        local = write_product(product, Path(scratch) / Path(key).name)
        info = ctx.storage.put_file(key, local)
    try:
        record = ctx.db.register_product(
            uri=info.uri,
            sha256=info.sha256,
            size_bytes=info.size,
            product_type=product.product_type,
            schema_tag=product.tag_uri(),
            task_id=task_id,
            inputs=list(inputs),
        )
    except SSCError:
        ctx.storage.delete(key)  # never leave a product that the database does not know
        raise
    record_product(product.product_type, info.size)
    log.info("published %s", product.product_type, extra={"uri": info.uri, "bytes": info.size})
    return record


@contextlib.contextmanager
def open_stored_product(ctx: Context, key: str, expected: type[P] | None = None) -> Iterator[P]:
    """Open a stored product (lazily, through a seekable stream) as a step's input.

    A corrupt file, a file of another product type or one breaking its schema is an
    :class:`InputError` naming the URI (the step records the task as rejected).
    """
    uri = ctx.storage.uri(key)
    with ctx.storage.open_read(key) as stream:
        try:
            with open_product(stream, expected, subject=uri) as product:
                yield product
        except ProductError as error:
            raise InputError(error.subject, error.problem) from None


def local_copy(ctx: Context, key: str, directory: str | os.PathLike[str]) -> Path:
    """Download a stored object to ``directory`` (for tools that need a real file path)."""
    target = Path(directory) / Path(key).name
    ctx.storage.get_file(key, target)
    return target
