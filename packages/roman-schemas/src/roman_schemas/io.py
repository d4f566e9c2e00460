"""Reading and writing product files: validated both ways, atomic on write, lazy on read.

``write_product`` validates the tree against the product's ASDF schema and renames a
complete temporary file into place; ``open_product`` checks the file is whole (every block
inside the file), validates it, and hands back the typed product with arrays loaded lazily.
"""

from __future__ import annotations

import contextlib
import os
import struct
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, TypeVar

import asdf
import numpy as np
import yaml
from asdf.exceptions import ValidationError as SchemaValidationError

from roman_schemas.errors import (
    ProductReadError,
    ProductValidationError,
    UnknownProductType,
    WrongProductType,
)
from roman_schemas.product import TREE_KEY, Product

P = TypeVar("P", bound=Product)

_BLOCK_MAGIC = b"\xd3BLK"
_INDEX_MARK = b"#ASDF BLOCK INDEX"
_TAIL_BYTES = 1 << 16


def _schema_error(subject: str, exc: SchemaValidationError) -> ProductValidationError:
    where = "/".join(str(p) for p in exc.absolute_path) or "(root)"
    return ProductValidationError(subject, f"{where}: {exc.message}")


def product_asdf(product: Product) -> asdf.AsdfFile:
    """An in-memory AsdfFile holding ``product`` under the ``ssc`` key, schema-validated."""
    af = asdf.AsdfFile({TREE_KEY: product})
    try:
        af.validate()
    except SchemaValidationError as exc:
        raise _schema_error(product.meta.file_name, exc) from None
    return af


def write_product(product: Product, path: str | os.PathLike[str]) -> Path:
    """Write ``product`` to ``path`` atomically (temp file + rename) after validation."""
    target = Path(path)
    af = product_asdf(product)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.parent / f".{target.name}.partial-{uuid.uuid4().hex}"
    try:
        with open(temporary, "wb") as handle:
            af.write_to(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
    except SchemaValidationError as exc:
        raise _schema_error(str(target), exc) from None
    finally:
        temporary.unlink(missing_ok=True)
    return target


def check_complete(handle: IO[bytes], subject: str) -> None:
    """Raise ProductReadError if the file was cut short (a block ends past end of file).

    Uses the ASDF block index that asdf writes at the end of every file with blocks.
    """
    handle.seek(0, os.SEEK_END)
    size = handle.tell()
    handle.seek(max(0, size - _TAIL_BYTES))
    tail = handle.read()
    at = tail.rfind(_INDEX_MARK)
    if at < 0:
        # No index: acceptable only if the file has no binary blocks at all.
        if _contains(handle, _BLOCK_MAGIC):
            raise ProductReadError(subject, "truncated: binary blocks but no block index at end")
        handle.seek(0)
        return
    try:
        offsets = yaml.safe_load(tail[at:].split(b"\n", 1)[1].replace(b"...", b""))
    except yaml.YAMLError:
        raise ProductReadError(subject, "truncated: unreadable block index") from None
    if not (isinstance(offsets, list) and offsets and all(isinstance(o, int) for o in offsets)):
        raise ProductReadError(subject, "truncated: incomplete block index")
    last = int(offsets[-1])
    handle.seek(last)
    head = handle.read(6 + 48)
    if len(head) < 6 + 48 or head[:4] != _BLOCK_MAGIC:
        raise ProductReadError(subject, f"truncated: no block header at byte {last}")
    header_size = struct.unpack(">H", head[4:6])[0]
    allocated = struct.unpack(">Q", head[6 + 8 : 6 + 16])[0]
    end = last + 6 + header_size + allocated
    if end > size:
        raise ProductReadError(
            subject, f"truncated: last block ends at byte {end}, file has {size}"
        )
    handle.seek(0)


def _contains(handle: IO[bytes], needle: bytes) -> bool:
    """Whether the stream contains ``needle`` (stops at the first hit: blocks follow the YAML)."""
    handle.seek(0)
    carry = b""
    while chunk := handle.read(1 << 20):
        if needle in carry + chunk:
            return True
        carry = chunk[-len(needle) :]
    return False


@contextlib.contextmanager
def open_product(
    source: str | os.PathLike[str] | IO[bytes],
    expected: type[P] | None = None,
    *,
    subject: str | None = None,
) -> Iterator[P]:
    """Open a product file; arrays load lazily while the context is open.

    ``expected`` (a product class) makes a file of another type a WrongProductType error.
    ``subject`` names the file in errors (default: its path).
    """
    name = subject or (str(source) if isinstance(source, (str, os.PathLike)) else "<stream>")
    close: IO[bytes] | None = None
    if isinstance(source, (str, os.PathLike)):
        try:
            close = handle = open(source, "rb")  # noqa: SIM115 - closed in finally
        except FileNotFoundError:
            raise ProductReadError(name, "no such file") from None
        except OSError as exc:
            raise ProductReadError(name, f"cannot read: {exc.strerror}") from None
    else:
        handle = source
    try:
        check_complete(handle, name)
        try:
            # Validate against the schema on read and let a failed conversion raise
            # (asdf's defaults skip the first and only warn on the second).
            with asdf.config_context() as config:
                config.validate_on_read = True
                config.warn_on_failed_conversion = False
                # A local file is memory-mapped, so reading one light curve of a gigabyte
                # partition touches a few pages; a stream (S3) loads a block on first use.
                af = asdf.open(handle, lazy_load=True, memmap=close is not None)
        except SchemaValidationError as exc:
            raise _schema_error(name, exc) from None
        except ProductValidationError as exc:
            raise ProductValidationError(name, exc.problem) from None
        except Exception as exc:  # asdf raises many kinds for a file that is not ASDF
            raise ProductReadError(name, f"not a readable ASDF file ({_short(exc)})") from None
        with af:
            product = _product_in(af, name)
            if expected is not None and not isinstance(product, expected):
                raise WrongProductType(
                    name, f"holds {product.product_type}, expected {expected.product_type}"
                )
            yield product  # type: ignore[misc]
    finally:
        if close is not None:
            close.close()


def _product_in(af: asdf.AsdfFile, name: str) -> Product:
    if TREE_KEY not in af.tree:
        raise WrongProductType(name, f"not a Roman SSC product (no '{TREE_KEY}' node)")
    node = af.tree[TREE_KEY]
    if isinstance(node, Product):
        return node
    tag = getattr(node, "_tag", None)
    if tag:
        raise UnknownProductType(
            name, f"written as {tag}, which this roman-schemas does not know: upgrade it"
        )
    raise WrongProductType(name, f"the '{TREE_KEY}' node is not a tagged product")


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:200]


def read_product(source: str | os.PathLike[str] | IO[bytes], expected: type[P] | None = None) -> P:
    """Read a product fully into memory (every array loaded and checked) and close the file."""
    with open_product(source, expected) as product:
        return load_arrays(product, str(source))


def load_arrays(product: P, subject: str) -> P:
    """A copy of ``product`` with every lazy array read into memory."""

    def materialise(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: materialise(v) for k, v in value.items()}
        if isinstance(value, list):
            return [materialise(v) for v in value]
        if hasattr(value, "__array__") and hasattr(value, "shape"):
            try:
                return np.array(value)
            except Exception as exc:
                raise ProductReadError(subject, f"array data unreadable ({_short(exc)})") from None
        return value

    data = materialise(product.model_dump(round_trip=True))
    return type(product).model_validate(data)


def validate_file(path: str | os.PathLike[str]) -> Product:
    """Fully validate a product file: completeness, schema, model, block checksums, arrays."""
    name = str(path)
    with open_product(path) as product:
        loaded = load_arrays(product, name)
    try:
        with asdf.open(path, validate_checksums=True, lazy_load=False, memmap=False):
            pass
    except ValueError as exc:
        raise ProductReadError(name, f"block checksum mismatch ({_short(exc)})") from None
    return loaded


def product_bytes(product: Product) -> bytes:
    """The product serialised to bytes (small products; large ones go through a file)."""
    import io as _io

    buffer = _io.BytesIO()
    product_asdf(product).write_to(buffer)
    return buffer.getvalue()
