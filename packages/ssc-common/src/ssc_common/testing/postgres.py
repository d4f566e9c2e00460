"""A throwaway PostgreSQL database for tests: created fresh, dropped afterwards.

Tests that need PostgreSQL must fail, never skip, when the server is missing, so a broken
test environment cannot pass silently; connection failures here raise one clear line.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg import sql
from sqlalchemy.engine import URL, make_url

from ssc_common.errors import DatabaseUnreachable

DEFAULT_SERVER_URL = "postgresql://postgres@127.0.0.1:5432/test"
SERVER_URL_ENV = "SSC_TEST_POSTGRES_URL"
CONNECT_TIMEOUT_S = 5


def postgres_server_url() -> str:
    """The server tests use: ``$SSC_TEST_POSTGRES_URL``, else the local default."""
    return os.environ.get(SERVER_URL_ENV) or DEFAULT_SERVER_URL


@contextmanager
def throwaway_postgres_database(server_url: str | None = None) -> Iterator[str]:
    """Create ``ssc_test_<random>`` on the server, yield its URL, and drop it afterwards.

    ``server_url`` (default: :func:`postgres_server_url`) names any existing database the user
    can connect to and create databases from. The yielded URL is the same URL with the new
    database name. Other sessions still connected at the end are terminated first.
    """
    server = make_url(server_url or postgres_server_url())
    name = f"ssc_test_{secrets.token_hex(6)}"
    with _admin_connection(server) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with _admin_connection(server) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            )
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))


@contextmanager
def _admin_connection(server: URL) -> Iterator[psycopg.Connection]:
    url = server.set(drivername="postgresql")  # libpq's spelling, without +psycopg
    shown = url.render_as_string(hide_password=True)
    try:
        connection = psycopg.connect(
            url.render_as_string(hide_password=False),
            autocommit=True,
            connect_timeout=CONNECT_TIMEOUT_S,
        )
    except psycopg.Error as exc:
        first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise DatabaseUnreachable(
            shown,
            f"cannot connect to the test PostgreSQL server ({first_line});"
            f" start it or point {SERVER_URL_ENV} at one",
        ) from exc
    with connection:
        yield connection
