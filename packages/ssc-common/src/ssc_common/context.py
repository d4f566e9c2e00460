"""What a pipeline process works with: its settings, its storage and its processing database.

Built once per command from the ``SSC_*`` settings and the shared CLI options; storage and
database are opened on first use, so ``--help`` never touches the network.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

from ssc_common.settings import Settings, get_settings
from ssc_common.storage import Storage, open_storage

if TYPE_CHECKING:
    from ssc_common.db import ProcessingDB


class Context:
    """Settings plus lazily opened storage and processing database."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or get_settings()
        self.verbose = 0

    @cached_property
    def storage(self) -> Storage:
        """The product store of ``SSC_STORAGE_URL``."""
        return open_storage(settings=self.settings)

    @cached_property
    def db(self) -> ProcessingDB:
        """The processing database; the embedded SQLite one is migrated on first use."""
        from ssc_common.db import ProcessingDB

        url = self.settings.resolved_database_url()
        embedded = urlparse(url).scheme.startswith("sqlite")
        return ProcessingDB.open(url, upgrade=embedded)

    def locate(self, ref: str) -> tuple[Storage, str]:
        """The store and key of an input given as a key, a local path or a URI.

        Inputs (Level-2 files, say) may live outside the product store: a ``file://`` or
        ``s3://`` URI elsewhere, or a plain path, is served by a store of its own.
        """
        from ssc_common.storage import open_storage

        scheme = urlparse(ref).scheme
        if scheme not in ("file", "s3"):
            if ref.startswith(("/", "./", "../")) or Path(ref).exists():
                ref = Path(ref).resolve().as_uri()
            else:
                return self.storage, ref  # a key of the product store
        base = self.storage.url.rstrip("/") + "/"
        if ref.startswith(base):
            return self.storage, ref[len(base) :]
        if ref.startswith("file://"):
            path = Path(urlparse(ref).path)
            return open_storage(path.parent.as_uri(), self.settings), path.name
        bucket = urlparse(ref).netloc
        return open_storage(f"s3://{bucket}", self.settings), urlparse(ref).path.lstrip("/")

    def close(self) -> None:
        """Release the database connections."""
        if "db" in self.__dict__:
            self.db.dispose()
