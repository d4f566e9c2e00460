"""pytest fixtures for every package's tests: real S3 (moto's server), real PostgreSQL.

Loaded by the workspace's root ``conftest.py``. S3 tests talk HTTP to moto's server on
127.0.0.1; database tests run on SQLite and on throwaway PostgreSQL databases, and fail
(never skip) when the PostgreSQL server cannot be reached.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from ssc_common.db import ProcessingDB
from ssc_common.testing.postgres import throwaway_postgres_database

# ---------------------------------------------------------------------------------------
# S3: moto's S3 server on 127.0.0.1 (one per session), a fresh bucket per test, and the
# fault-injecting proxy. Dummy AWS credentials are set per test with monkeypatch, so they
# never outlive the test. moto is imported only when an S3 fixture is used.
# ---------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def s3_server() -> Iterator[Any]:
    """The session's moto S3 server (a :class:`ssc_common.testing.s3.MotoS3`)."""
    from ssc_common.testing.s3 import moto_s3_server

    with moto_s3_server() as server:
        yield server


@pytest.fixture
def aws_env(s3_server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Dummy AWS credentials (and no profile or config file) for this test only."""
    for name, value in s3_server.env.items():
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)


@pytest.fixture
def s3_bucket(s3_server: Any, aws_env: None) -> str:
    """A new, empty bucket for this test."""
    return s3_server.create_bucket()


@pytest.fixture
def make_s3_storage(s3_server: Any, s3_bucket: str, aws_env: None) -> Callable[..., Any]:
    """Build S3Storage objects on this test's bucket: ``make_s3_storage(prefix, **options)``.

    ``endpoint_url`` defaults to the moto server (pass a FaultyProxy's to go through it);
    the other options go to :class:`ssc_common.storage.s3.S3Storage`.
    """
    from ssc_common.storage.s3 import S3Storage

    def make(prefix: str = "products", **options: Any) -> S3Storage:
        options.setdefault("endpoint_url", s3_server.endpoint_url)
        options.setdefault("connect_timeout", 2.0)
        options.setdefault("read_timeout", 10.0)
        url = f"s3://{s3_bucket}/{prefix}" if prefix else f"s3://{s3_bucket}"
        return S3Storage(url, **options)

    return make


@pytest.fixture
def s3_storage(make_s3_storage: Callable[..., Any]) -> Any:
    """An S3Storage on a fresh bucket, under the key prefix ``products``."""
    return make_s3_storage()


@pytest.fixture
def faulty_proxy(s3_server: Any) -> Iterator[Any]:
    """A :class:`ssc_common.testing.s3.FaultyProxy` in front of the moto server."""
    from ssc_common.testing.s3 import FaultyProxy

    with FaultyProxy(s3_server.endpoint_url) as proxy:
        yield proxy


# ---------------------------------------------------------------------------------------
# Processing database: every test runs on SQLite and on PostgreSQL.
# ---------------------------------------------------------------------------------------

BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
]
_TABLES = "provenance_edges, products, tasks, runs"


@pytest.fixture(scope="session")
def migrated_postgres_url() -> Iterator[str]:
    """A PostgreSQL database migrated to head once per session (tests empty it after use)."""
    with throwaway_postgres_database() as url:
        ProcessingDB.open(url, upgrade=True).dispose()
        yield url


@pytest.fixture(params=BACKENDS)
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ProcessingDB]:
    """An empty processing database at head, on each backend."""
    if request.param == "sqlite":
        database = ProcessingDB.open(f"sqlite:///{tmp_path / 'db' / 'ssc.sqlite3'}", upgrade=True)
    else:
        database = ProcessingDB.open(request.getfixturevalue("migrated_postgres_url"))
    try:
        yield database
    finally:
        if database.dialect == "postgresql":
            with database.engine.begin() as conn:
                conn.execute(text(f"TRUNCATE {_TABLES} RESTART IDENTITY"))
        database.dispose()


@pytest.fixture(params=BACKENDS)
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of a database with no schema at all, on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.sqlite3'}"
    else:
        with throwaway_postgres_database() as url:
            yield url


# ---------------------------------------------------------------------------------------
# A whole processing context, as a pipeline command sees it, on both deployments:
# "embedded" (local files + SQLite) and "cloud" (S3 over HTTP + PostgreSQL).
# ---------------------------------------------------------------------------------------

DEPLOYMENTS = [
    pytest.param("embedded", id="embedded"),
    pytest.param("cloud", id="cloud", marks=[pytest.mark.s3, pytest.mark.postgres]),
]


@pytest.fixture(params=DEPLOYMENTS)
def ssc_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """Settings of one deployment; the storage and database are new and empty."""
    from ssc_common.settings import Settings

    if request.param == "embedded":
        yield Settings(storage_url=(tmp_path / "ssc-data").as_uri())
        return
    server = request.getfixturevalue("s3_server")
    request.getfixturevalue("aws_env")
    bucket = request.getfixturevalue("s3_bucket")
    url = request.getfixturevalue("migrated_postgres_url")
    try:
        yield Settings(
            storage_url=f"s3://{bucket}/ssc",
            database_url=url,
            s3_endpoint_url=server.endpoint_url,
            s3_max_attempts=2,
        )
    finally:
        engine = ProcessingDB(url).engine
        with engine.begin() as conn:
            conn.execute(text(f"TRUNCATE {_TABLES} RESTART IDENTITY"))
        engine.dispose()


@pytest.fixture
def ssc_context(ssc_settings: Any) -> Iterator[Any]:
    """A :class:`ssc_common.context.Context` on ``ssc_settings``."""
    from ssc_common.context import Context

    context = Context(ssc_settings)
    try:
        yield context
    finally:
        context.close()
