"""The tables of the processing database: runs, tasks, products and their provenance.

These models are the schema the Alembic migrations must produce (the tests compare the two);
change them only together with a new revision under ``migrations/versions``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

RUNNING = "running"
SUCCEEDED = "succeeded"
FAILED = "failed"
#: a task that refused its input (e.g. an unusable epoch): recorded with the reason, not retried
REJECTED = "rejected"
STATUSES = (RUNNING, SUCCEEDED, FAILED)
FINAL_STATUSES = (SUCCEEDED, FAILED)
TASK_FINAL_STATUSES = (SUCCEEDED, FAILED, REJECTED)

# Deterministic constraint names, so migrations (and SQLite batch rebuilds) can name them.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

_STATUS_CHECK = "status IN ('running', 'succeeded', 'failed')"
_TASK_STATUS_CHECK = "status IN ('running', 'succeeded', 'failed', 'rejected')"
# BIGINT keys on PostgreSQL; SQLite only auto-increments a column declared INTEGER.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend.

    PostgreSQL stores ``timestamptz``; SQLite has no time zones, so the value is stored as
    naive UTC and read back with ``tzinfo=UTC``. Naive datetimes are refused on the way in.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value.isoformat()} (use an aware UTC datetime)")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    """Declarative base of the processing database's tables."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON()}


class Run(Base):
    """One invocation of a pipeline command: its parameters and the software that ran."""

    __tablename__ = "runs"
    __table_args__ = (CheckConstraint(_STATUS_CHECK, name="status"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16))
    parameters: Mapped[dict[str, Any]]
    software_versions: Mapped[dict[str, Any]]
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]


class Task(Base):
    """One execution of a pipeline step on one partition, identified by its digests."""

    __tablename__ = "tasks"
    __table_args__ = (
        CheckConstraint(_TASK_STATUS_CHECK, name="status"),
        Index("ix_tasks_lookup", "step", "inputs_digest", "parameters_digest", "status"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    run_id: Mapped[str | None] = mapped_column(ForeignKey("runs.id"), index=True)
    step: Mapped[str] = mapped_column(String(128))
    partition: Mapped[str | None] = mapped_column(String(128))
    inputs_digest: Mapped[str] = mapped_column(String(64))
    parameters_digest: Mapped[str] = mapped_column(String(64))
    parameters: Mapped[dict[str, Any]]
    status: Mapped[str] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]


class Product(Base):
    """One stored file the pipelines made, with its content digest and the task that made it."""

    __tablename__ = "products"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    uri: Mapped[str] = mapped_column(String(2048), unique=True)
    sha256: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    product_type: Mapped[str] = mapped_column(String(64), index=True)
    schema_tag: Mapped[str] = mapped_column(String(256))
    created_at: Mapped[datetime]
    task_id: Mapped[str | None] = mapped_column(ForeignKey("tasks.id"), index=True)


class ProvenanceEdge(Base):
    """One input of a product: its URI and sha256 as read, and the product it is, if any."""

    __tablename__ = "provenance_edges"
    __table_args__ = (UniqueConstraint("output_product_id", "input_uri"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    output_product_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("products.id", ondelete="CASCADE")
    )
    input_uri: Mapped[str] = mapped_column(String(2048), index=True)
    input_sha256: Mapped[str] = mapped_column(String(64))
    input_product_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("products.id", ondelete="SET NULL"), index=True
    )
