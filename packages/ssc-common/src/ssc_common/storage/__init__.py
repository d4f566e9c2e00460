"""One storage interface over ``file://`` and ``s3://``: see :class:`Storage`."""

from __future__ import annotations

from urllib.parse import urlparse

from ssc_common.settings import Settings, get_settings
from ssc_common.storage.base import ObjectInfo, Storage, sha256_file
from ssc_common.storage.local import LocalStorage

__all__ = ["LocalStorage", "ObjectInfo", "Storage", "open_storage", "sha256_file"]


def open_storage(url: str | None = None, settings: Settings | None = None) -> Storage:
    """The store a URL names (default: ``SSC_STORAGE_URL``)."""
    settings = settings or get_settings()
    url = url or settings.storage_url
    scheme = urlparse(url).scheme
    if scheme == "file":
        return LocalStorage(url)
    if scheme == "s3":
        from ssc_common.storage.s3 import S3Storage

        return S3Storage(
            url,
            endpoint_url=settings.s3_endpoint_url,
            region=settings.s3_region,
            max_attempts=settings.s3_max_attempts,
            multipart_threshold=settings.s3_multipart_threshold_mb * 1024 * 1024,
        )
    raise ValueError(f"storage URL {url!r} must start with file:// or s3://")
