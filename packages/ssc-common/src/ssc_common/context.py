"""What a pipeline process works with: its settings, its storage and its processing database.

Built once per command from the ``SSC_*`` settings and the shared CLI options; storage and
database are opened on first use, so ``--help`` never touches the network.
"""

from __future__ import annotations

from functools import cached_property
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

    def close(self) -> None:
        """Release the database connections."""
        if "db" in self.__dict__:
            self.db.dispose()
