"""The storage interface every pipeline uses, the same over ``file://`` and ``s3://``.

Keys are ``/``-separated relative paths (``msos/s01/f03/wfi01/reference.asdf``). Writes are
atomic publishes: a reader sees either nothing or the whole object, never a partial one.
Every stored object carries its sha256, which the processing database records.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

CHUNK_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True)
class ObjectInfo:
    """What storage knows about one object."""

    key: str
    uri: str
    size: int
    sha256: str


def sha256_file(path: Path) -> str:
    """The sha256 hex digest of a local file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def check_key(key: str) -> str:
    """A key is a relative ``/`` path without ``..``, ``.`` or empty parts."""
    parts = key.split("/")
    if not key or key.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise ValueError(f"invalid storage key {key!r}")
    return key


class Storage(ABC):
    """One object store: a local directory or an S3 bucket prefix."""

    url: str

    def uri(self, key: str) -> str:
        """The full URI of ``key`` (``file:///…`` or ``s3://bucket/prefix/…``)."""
        return f"{self.url.rstrip('/')}/{check_key(key)}"

    def key_of(self, uri: str) -> str:
        """The key of a full URI inside this store (inverse of :meth:`uri`)."""
        base = self.url.rstrip("/") + "/"
        if not uri.startswith(base):
            raise ValueError(f"{uri} is not inside {self.url}")
        return check_key(uri[len(base) :])

    @abstractmethod
    def put_file(self, key: str, path: Path) -> ObjectInfo:
        """Publish a local file under ``key`` atomically (replacing any object there)."""

    @abstractmethod
    def put_bytes(self, key: str, data: bytes) -> ObjectInfo:
        """Publish ``data`` under ``key`` atomically."""

    @abstractmethod
    def get_bytes(self, key: str) -> bytes:
        """The whole object; raises ObjectNotFound."""

    @abstractmethod
    def get_file(self, key: str, path: Path) -> ObjectInfo:
        """Copy the object to a local file (written atomically); raises ObjectNotFound."""

    @abstractmethod
    def open_read(self, key: str) -> BinaryIO:
        """A seekable binary stream over the object; the caller closes it."""

    @abstractmethod
    def exists(self, key: str) -> bool:
        """Whether an object is published under ``key``."""

    @abstractmethod
    def info(self, key: str) -> ObjectInfo:
        """Size and sha256 of the object; raises ObjectNotFound."""

    @abstractmethod
    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Every published object whose key starts with ``prefix``, in key order."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove the object (no error if it is absent)."""

    @abstractmethod
    def check(self) -> None:
        """Raise StorageUnreachable unless the store can be read and written."""
