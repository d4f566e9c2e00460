"""Storage in a local directory (the embedded default, ``file://./ssc-data``).

Atomic publish: the bytes go to a hidden temporary file in the destination directory,
are flushed to disk, and the file is renamed into place (``os.replace`` is atomic on POSIX).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from ssc_common.errors import ObjectNotFound, StorageError, StorageUnreachable
from ssc_common.settings import local_path_of
from ssc_common.storage.base import CHUNK_BYTES, ObjectInfo, Storage, check_key, sha256_file

TEMP_MARK = ".partial-"


def is_temporary(name: str) -> bool:
    """Whether a file name is one of our in-flight temporary files."""
    return name.startswith(".") and TEMP_MARK in name


@contextlib.contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it over ``target`` on success.

    On any exception the temporary file is removed and ``target`` is untouched.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.parent / f".{target.name}{TEMP_MARK}{uuid.uuid4().hex}"
    try:
        yield temporary
        with open(temporary, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)


class LocalStorage(Storage):
    """Objects are files under a root directory."""

    def __init__(self, url: str) -> None:
        self.root = local_path_of(url)
        self.url = self.root.as_uri()

    def path(self, key: str) -> Path:
        """The local file that holds ``key``."""
        return self.root / check_key(key)

    def _info(self, key: str, path: Path, sha256: str | None = None) -> ObjectInfo:
        return ObjectInfo(
            key=key,
            uri=self.uri(key),
            size=path.stat().st_size,
            sha256=sha256 or sha256_file(path),
        )

    def put_file(self, key: str, path: Path) -> ObjectInfo:
        target = self.path(key)
        digest = hashlib.sha256()
        try:
            with (
                atomic_path(target) as temporary,
                open(path, "rb") as src,
                open(temporary, "wb") as dst,
            ):
                while chunk := src.read(CHUNK_BYTES):
                    digest.update(chunk)
                    dst.write(chunk)
        except FileNotFoundError:
            raise StorageError(str(path), "source file does not exist") from None
        except OSError as exc:
            raise StorageError(self.uri(key), f"write failed: {exc.strerror or exc}") from exc
        return self._info(key, target, digest.hexdigest())

    def put_bytes(self, key: str, data: bytes) -> ObjectInfo:
        target = self.path(key)
        try:
            with atomic_path(target) as temporary:
                temporary.write_bytes(data)
        except OSError as exc:
            raise StorageError(self.uri(key), f"write failed: {exc.strerror or exc}") from exc
        return self._info(key, target, hashlib.sha256(data).hexdigest())

    def _existing(self, key: str) -> Path:
        path = self.path(key)
        if not path.is_file():
            raise ObjectNotFound(self.uri(key), "no such object")
        return path

    def get_bytes(self, key: str) -> bytes:
        return self._existing(key).read_bytes()

    def get_file(self, key: str, path: Path) -> ObjectInfo:
        source = self._existing(key)
        try:
            with atomic_path(Path(path)) as temporary:
                shutil.copyfile(source, temporary)
        except OSError as exc:
            raise StorageError(str(path), f"copy failed: {exc.strerror or exc}") from exc
        return self._info(key, source)

    def open_read(self, key: str) -> BinaryIO:
        return open(self._existing(key), "rb")

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    def info(self, key: str) -> ObjectInfo:
        return self._info(key, self._existing(key))

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        if not self.root.is_dir():
            return
        found = []
        for dirpath, dirnames, filenames in os.walk(self.root):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            for name in filenames:
                if is_temporary(name) or name.startswith("."):
                    continue
                key = Path(dirpath, name).relative_to(self.root).as_posix()
                if key.startswith(prefix):
                    found.append(key)
        for key in sorted(found):
            yield self._info(key, self.path(key))

    def delete(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)

    def check(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            probe = self.root / f".probe{TEMP_MARK}{uuid.uuid4().hex}"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            raise StorageUnreachable(self.url, f"not writable: {exc.strerror or exc}") from exc
