"""Settings of every SSC pipeline process, read from ``SSC_*`` environment variables.

The embedded defaults run everything on one machine: products under ``./ssc-data`` and the
processing database in a SQLite file inside it. In the cloud the same code gets an
``s3://`` storage URL and a PostgreSQL database URL.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from urllib.parse import urlparse

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ssc_common.errors import ConfigurationError

DEFAULT_STORAGE_URL = "file://./ssc-data"
SQLITE_FILE_NAME = "ssc-processing.sqlite3"


class Settings(BaseSettings):
    """Where products live, where the processing database is, and how to log."""

    model_config = SettingsConfigDict(env_prefix="SSC_", extra="ignore")

    storage_url: str = Field(
        DEFAULT_STORAGE_URL,
        description="file://PATH or s3://BUCKET/PREFIX; relative file paths are from the cwd",
    )
    database_url: str | None = Field(
        None,
        description="SQLAlchemy URL; default: a SQLite file under a file:// storage root",
    )
    s3_endpoint_url: str | None = Field(
        None, description="S3 endpoint (a local S3 server in tests); default: AWS"
    )
    s3_region: str = "us-east-1"
    s3_max_attempts: int = Field(5, ge=1, description="tries per S3 request (5xx, throttling)")
    s3_multipart_threshold_mb: int = Field(64, ge=5)
    pushgateway_url: str | None = Field(None, description="Prometheus Pushgateway for metrics")
    metrics_file: str | None = Field(None, description="node-exporter text file for metrics")
    log_format: Literal["text", "json"] = "text"
    log_level: str = "INFO"
    processing_id: str = Field("r01", max_length=3, description="release id, e.g. r03")

    @field_validator("storage_url")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        scheme = urlparse(value).scheme
        if scheme not in ("file", "s3"):
            raise ValueError(f"storage URL {value!r} must start with file:// or s3://")
        return value

    def resolved_database_url(self) -> str:
        """The database URL, defaulting to SQLite under a local storage root."""
        if self.database_url:
            return self.database_url
        parsed = urlparse(self.storage_url)
        if parsed.scheme != "file":
            raise ConfigurationError(
                "SSC_DATABASE_URL", "must be set when storage is not local (no embedded default)"
            )
        root = local_path_of(self.storage_url)
        return f"sqlite:///{root / SQLITE_FILE_NAME}"


def local_path_of(file_url: str) -> Path:
    """The absolute path a ``file://`` URL names (``file://./x`` is relative to the cwd)."""
    parsed = urlparse(file_url)
    if parsed.scheme != "file":
        raise ConfigurationError(file_url, "not a file:// URL")
    raw = parsed.netloc + parsed.path
    return Path(raw).expanduser().resolve()


def get_settings(**overrides: object) -> Settings:
    """Settings from the environment, with explicit overrides (CLI options) on top."""
    clean = {key: value for key, value in overrides.items() if value is not None}
    try:
        return Settings(**clean)
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        first = exc.errors()[0] if hasattr(exc, "errors") else {"loc": ("?",), "msg": str(exc)}
        name = "SSC_" + str(first["loc"][0]).upper()
        raise ConfigurationError(name, first["msg"]) from None
