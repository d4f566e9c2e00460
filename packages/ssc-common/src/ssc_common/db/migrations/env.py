"""Alembic environment of the processing database.

:meth:`ssc_common.db.ProcessingDB.upgrade` runs it with an open connection (in
``config.attributes["connection"]``) inside its own transaction; a developer running the
``alembic`` command (e.g. ``revision --autogenerate``) gets a connection to
``sqlalchemy.url`` or, without it, to the database the SSC settings name.
"""

from __future__ import annotations

from typing import Any

from alembic import context
from sqlalchemy.engine import Connection

from ssc_common.db.models import Base, UTCDateTime

config = context.config


def render_item(type_: str, obj: Any, autogen_context: Any) -> str | bool:
    """Render model-only types as plain SQLAlchemy ones, so revisions never import models."""
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def run_with(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        render_item=render_item,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        run_with(connection)
        return
    from ssc_common.db.database import ProcessingDB
    from ssc_common.settings import get_settings

    url = config.get_main_option("sqlalchemy.url") or get_settings().resolved_database_url()
    db = ProcessingDB(url)
    try:
        with db.engine.connect() as connection:
            run_with(connection)
            connection.commit()
    finally:
        db.dispose()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported; run against a database")
run_online()
