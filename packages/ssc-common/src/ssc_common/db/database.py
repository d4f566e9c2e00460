"""The processing database: runs, tasks, products and provenance, on SQLite or PostgreSQL.

Every pipeline step asks it whether its work is already done (a succeeded task with the same
input and parameter digests) and records what it made (products and the inputs they came
from), so reruns are idempotent and every product is traceable to its inputs.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.script.revision import RevisionError
from alembic.util import CommandError
from sqlalchemy import Engine, create_engine, delete, event, insert, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, SQLAlchemyError
from sqlalchemy.orm import Session

from ssc_common.db.models import (
    FINAL_STATUSES,
    RUNNING,
    SUCCEEDED,
    TASK_FINAL_STATUSES,
    Product,
    ProvenanceEdge,
    Run,
    Task,
)
from ssc_common.errors import DatabaseError, DatabaseUnreachable, SSCError
from ssc_common.provenance import InputRef, digest_inputs, digest_parameters, json_safe

__all__ = ["ProcessingDB", "ProductRecord", "RunRecord", "TaskRecord", "head_revision"]

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
CONNECT_TIMEOUT_S = 5
SQLITE_BUSY_TIMEOUT_MS = 30_000
# Serialises concurrent `upgrade()` calls on PostgreSQL (pg_advisory_xact_lock key).
MIGRATION_LOCK_KEY = 0x55C_DB_0001
_WRITE_OPTION = "ssc_write"  # execution option: this transaction will write
_IN_CHUNK = 500  # values per IN (...) list, well under every backend's parameter limit


@dataclass(frozen=True)
class RunRecord:
    """One pipeline run as stored."""

    id: str
    name: str
    status: str
    parameters: dict[str, Any]
    software_versions: dict[str, Any]
    started_at: datetime
    finished_at: datetime | None


@dataclass(frozen=True)
class TaskRecord:
    """One task (a step on a partition) as stored."""

    id: str
    run_id: str | None
    step: str
    partition: str | None
    inputs_digest: str
    parameters_digest: str
    status: str
    error: str | None
    started_at: datetime
    finished_at: datetime | None


@dataclass(frozen=True)
class ProductRecord:
    """One registered product as stored."""

    id: int
    uri: str
    sha256: str
    size_bytes: int
    product_type: str
    schema_tag: str
    created_at: datetime
    task_id: str | None


class ProcessingDB:
    """The processing database at one SQLAlchemy URL (``sqlite:///…`` or ``postgresql://…``).

    Every method runs in its own short transaction and raises only
    :class:`~ssc_common.errors.DatabaseError` (or its subclass
    :class:`~ssc_common.errors.DatabaseUnreachable`) for database failures, with a one-line
    message that names the database (password masked). Safe to share between threads.
    """

    def __init__(self, url: str) -> None:
        self.url = _masked(url)
        self._password = _password_of(url)
        self._engine = _build_engine(_normalised(url, self.url), self.url)

    @classmethod
    def open(cls, url: str, *, upgrade: bool = False) -> ProcessingDB:
        """Connect to the database (migrating it to head first if ``upgrade``) and check it."""
        db = cls(url)
        try:
            if upgrade:
                db.upgrade()
            db.check()
        except BaseException:
            db.dispose()
            raise
        return db

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine (for tools and tests; pipelines use the methods)."""
        return self._engine

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self._engine.dialect.name

    def __enter__(self) -> ProcessingDB:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.dispose()

    def dispose(self) -> None:
        """Close every pooled connection."""
        self._engine.dispose()

    # --- schema -----------------------------------------------------------------------

    def check(self) -> None:
        """Raise unless the database is reachable and its schema is at this code's head."""
        current = self.current_revision()
        head = head_revision()
        if current == head:
            return
        if current is not None and current not in _known_revisions():
            raise DatabaseError(
                self.url,
                f"schema is at revision {current}, unknown to this software (it needs {head}):"
                " install the ssc-common that migrated it",
            )
        raise DatabaseError(
            self.url,
            f"schema is at revision {current or 'none'}, code needs {head}: run `ssc db upgrade`",
        )

    def current_revision(self) -> str | None:
        """The Alembic revision the database is at (``None`` when it was never migrated)."""
        with self._connect(what="reading the schema revision") as conn:
            return MigrationContext.configure(conn).get_current_revision()

    def upgrade(self) -> str:
        """Migrate the schema to head (idempotent, safe to run concurrently); return head."""
        config = _alembic_config()
        with self._connect(write=True, what="migrating the schema") as conn:
            on_sqlite = conn.dialect.name == "sqlite"
            if on_sqlite:
                # Batch migrations rebuild tables; with foreign keys on, that would cascade.
                _sqlite_pragma(conn, "PRAGMA foreign_keys = OFF")
            try:
                with conn.begin():
                    if conn.dialect.name == "postgresql":
                        conn.execute(
                            text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY}
                        )
                    config.attributes["connection"] = conn
                    command.upgrade(config, "head")
            finally:
                if on_sqlite:
                    try:
                        _sqlite_pragma(conn, "PRAGMA foreign_keys = ON")
                    except Exception:
                        conn.invalidate()  # never return a connection without foreign keys
        return head_revision()

    # --- runs -------------------------------------------------------------------------

    def start_run(
        self, name: str, parameters: Mapping[str, Any], software_versions: Mapping[str, str]
    ) -> str:
        """Record a run as running; return its id."""
        run = Run(
            id=uuid.uuid4().hex,
            name=name,
            status=RUNNING,
            parameters=json_safe(parameters),
            software_versions=json_safe(software_versions),
            started_at=_now(),
        )
        with self._session(write=True, what=f"starting run {name}") as session:
            session.add(run)
        return run.id

    def finish_run(self, run_id: str, status: str) -> None:
        """Record that a run ended with ``status`` (``succeeded`` or ``failed``)."""
        _check_final(status)
        with self._session(write=True, what=f"finishing run {run_id}") as session:
            run = session.get(Run, run_id)
            if run is None:
                raise DatabaseError(f"run {run_id}", "no such run")
            run.status = status
            run.finished_at = _now()

    def run(self, run_id: str) -> RunRecord | None:
        """The run with this id, if any."""
        with self._session(what=f"reading run {run_id}") as session:
            run = session.get(Run, run_id)
            return None if run is None else _run_record(run)

    # --- tasks ------------------------------------------------------------------------

    def find_finished_task(
        self, step: str, inputs_digest: str, parameters_digest: str
    ) -> TaskRecord | None:
        """The latest succeeded task of ``step`` with these digests: the work already done."""
        query = (
            select(Task)
            .where(
                Task.step == step,
                Task.inputs_digest == inputs_digest,
                Task.parameters_digest == parameters_digest,
                Task.status == SUCCEEDED,
            )
            .order_by(Task.finished_at.desc(), Task.started_at.desc())
            .limit(1)
        )
        with self._session(what=f"looking up finished {step} tasks") as session:
            task = session.scalars(query).first()
            return None if task is None else _task_record(task)

    def start_task(
        self,
        step: str,
        *,
        partition: str | None,
        inputs: Sequence[InputRef],
        parameters: Mapping[str, Any],
        run_id: str | None = None,
    ) -> TaskRecord:
        """Record a task as running; its digests come from ``inputs`` and ``parameters``."""
        task = Task(
            id=uuid.uuid4().hex,
            run_id=run_id,
            step=step,
            partition=partition,
            inputs_digest=digest_inputs(inputs),
            parameters_digest=digest_parameters(parameters),
            parameters=json_safe(parameters),
            status=RUNNING,
            error=None,
            started_at=_now(),
            finished_at=None,
        )
        with self._session(write=True, what=f"starting task {step}") as session:
            session.add(task)
            session.flush()
            return _task_record(task)

    def finish_task(self, task_id: str, status: str, error: str | None = None) -> None:
        """Record that a task ended with ``status`` (and ``error``, when it failed or refused
        its input: ``rejected``)."""
        _check_final(status, TASK_FINAL_STATUSES)
        with self._session(write=True, what=f"finishing task {task_id}") as session:
            task = session.get(Task, task_id)
            if task is None:
                raise DatabaseError(f"task {task_id}", "no such task")
            task.status = status
            task.error = error
            task.finished_at = _now()

    def task(self, task_id: str) -> TaskRecord | None:
        """The task with this id, if any."""
        with self._session(what=f"reading task {task_id}") as session:
            task = session.get(Task, task_id)
            return None if task is None else _task_record(task)

    # --- products and provenance ------------------------------------------------------

    def register_product(
        self,
        *,
        uri: str,
        sha256: str,
        size_bytes: int,
        product_type: str,
        schema_tag: str,
        task_id: str | None,
        inputs: Sequence[InputRef],
    ) -> ProductRecord:
        """Record a product and the inputs it was made from, in one transaction.

        Registering a URI again (a rerun rewrote the product) replaces its digest, size,
        type, tag, task and inputs but keeps its id, so products made from it stay linked.
        Inputs that are registered products are linked to them, and earlier edges that
        named this URI before it was registered are linked now.
        """
        edges = _edges_by_uri(uri, inputs)
        values = {
            "uri": uri,
            "sha256": sha256,
            "size_bytes": size_bytes,
            "product_type": product_type,
            "schema_tag": schema_tag,
            "created_at": _now(),
            "task_id": task_id,
        }
        with self._session(write=True, what=f"registering {uri}") as session:
            product_id = session.execute(self._upsert_product(values)).scalar_one()
            edge_table = ProvenanceEdge.__table__
            session.execute(delete(edge_table).where(edge_table.c.output_product_id == product_id))
            if edges:
                known = _product_ids(session, list(edges))
                rows = [
                    {
                        "output_product_id": product_id,
                        "input_uri": input_uri,
                        "input_sha256": input_sha256,
                        "input_product_id": known.get(input_uri),
                    }
                    for input_uri, input_sha256 in sorted(edges.items())
                ]
                session.execute(insert(edge_table), rows)
            session.execute(
                update(edge_table)
                .where(edge_table.c.input_uri == uri, edge_table.c.input_product_id.is_(None))
                .values(input_product_id=product_id)
            )
        return ProductRecord(id=product_id, **values)

    def product(self, uri: str) -> ProductRecord | None:
        """The product registered at ``uri``, if any."""
        with self._session(what=f"reading product {uri}") as session:
            product = session.scalars(select(Product).where(Product.uri == uri)).first()
            return None if product is None else _product_record(product)

    def products(
        self,
        *,
        product_type: str | None = None,
        uri_prefix: str | None = None,
        task_id: str | None = None,
        limit: int | None = None,
    ) -> list[ProductRecord]:
        """Registered products matching every given filter, oldest registration first."""
        query = select(Product).order_by(Product.id)
        if product_type is not None:
            query = query.where(Product.product_type == product_type)
        if uri_prefix is not None:
            query = query.where(Product.uri.startswith(uri_prefix, autoescape=True))
        if task_id is not None:
            query = query.where(Product.task_id == task_id)
        if limit is not None:
            query = query.limit(limit)
        with self._session(what="listing products") as session:
            return [_product_record(product) for product in session.scalars(query)]

    def task_products(self, task_id: str) -> list[ProductRecord]:
        """The products a task registered."""
        return self.products(task_id=task_id)

    def inputs_of(self, uri: str) -> list[InputRef]:
        """The recorded inputs of the product at ``uri``, sorted by URI (empty if none)."""
        query = (
            select(ProvenanceEdge.input_uri, ProvenanceEdge.input_sha256)
            .join(Product, Product.id == ProvenanceEdge.output_product_id)
            .where(Product.uri == uri)
            .order_by(ProvenanceEdge.input_uri)
        )
        with self._session(what=f"reading the inputs of {uri}") as session:
            return [InputRef(uri=row[0], sha256=row[1]) for row in session.execute(query)]

    # --- plumbing ---------------------------------------------------------------------

    def _upsert_product(self, values: dict[str, Any]) -> Any:
        dialect_insert = postgresql.insert if self.dialect == "postgresql" else sqlite.insert
        table = Product.__table__
        statement = dialect_insert(table).values(**values)
        replaced = {key: statement.excluded[key] for key in values if key != "uri"}
        return statement.on_conflict_do_update(
            index_elements=[table.c.uri], set_=replaced
        ).returning(table.c.id)

    @contextmanager
    def _connect(self, *, write: bool = False, what: str) -> Iterator[Connection]:
        """A connection whose every database failure becomes one :class:`DatabaseError` line."""
        try:
            conn = self._engine.connect()
        except SSCError:
            raise
        except (SQLAlchemyError, OSError) as exc:
            raise DatabaseUnreachable(self.url, f"cannot connect: {self._cause(exc)}") from exc
        try:
            if write:
                conn.execution_options(**{_WRITE_OPTION: True})
            yield conn
        except SSCError:
            raise
        except DBAPIError as exc:
            if exc.connection_invalidated:
                raise DatabaseUnreachable(
                    self.url, f"connection lost while {what}: {self._cause(exc)}"
                ) from exc
            raise DatabaseError(self.url, f"{what}: {self._cause(exc)}") from exc
        except (SQLAlchemyError, CommandError, RevisionError) as exc:
            raise DatabaseError(self.url, f"{what}: {self._cause(exc)}") from exc
        finally:
            conn.close()

    @contextmanager
    def _session(self, *, write: bool = False, what: str) -> Iterator[Session]:
        """An ORM session in one transaction, committed on success."""
        with (
            self._connect(write=write, what=what) as conn,
            Session(bind=conn, expire_on_commit=False) as session,
            session.begin(),
        ):
            yield session

    def _cause(self, exc: BaseException) -> str:
        """The first line of the driver's message, password masked."""
        return _one_line(getattr(exc, "orig", None) or exc, self._password)


# --- engine -----------------------------------------------------------------------------


def _normalised(url: str, shown: str) -> URL:
    """The URL SQLAlchemy connects to: ``postgresql://`` means the psycopg 3 driver."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise DatabaseError(
            shown, "not a database URL (sqlite:///PATH or postgresql://…)"
        ) from None
    driver = parsed.drivername
    if driver in ("postgres", "postgresql", "postgresql+psycopg"):
        return parsed.set(drivername="postgresql+psycopg")
    if driver in ("sqlite", "sqlite+pysqlite"):
        return parsed
    raise DatabaseError(
        shown, f"unsupported database {driver!r}: use sqlite:///PATH or postgresql://…"
    )


def _build_engine(url: URL, shown: str) -> Engine:
    if url.get_backend_name() == "sqlite":
        return _sqlite_engine(url, shown)
    connect_args: dict[str, Any] = {
        "connect_timeout": CONNECT_TIMEOUT_S,
        "application_name": "ssc",
    }
    for key in url.query:  # options in the URL win
        connect_args.pop(key, None)
    return create_engine(url, pool_pre_ping=True, connect_args=connect_args)


def _sqlite_engine(url: URL, shown: str) -> Engine:
    """A SQLite engine in WAL mode, with foreign keys, a busy timeout and explicit BEGINs."""
    engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
    database = url.database or ""
    in_memory = database in ("", ":memory:") or database.startswith("file:")

    @event.listens_for(engine, "do_connect")
    def _create_directory(*_args: object) -> None:
        if in_memory:
            return
        parent = Path(database).expanduser().parent
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DatabaseUnreachable(
                shown, f"cannot create directory {parent}: {exc.strerror}"
            ) from exc

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection: Any, _record: object) -> None:
        # Take transaction control from the sqlite3 module (see _begin).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA foreign_keys = ON")
            if not in_memory:
                cursor.execute("PRAGMA journal_mode = WAL")
                cursor.execute("PRAGMA synchronous = NORMAL")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        # A writer takes the write lock up front (waiting up to the busy timeout) instead of
        # upgrading a read transaction later, which fails at once with "database is locked".
        writes = conn.get_execution_options().get(_WRITE_OPTION, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if writes else "BEGIN")

    return engine


def _sqlite_pragma(conn: Connection, statement: str) -> None:
    """Run a PRAGMA on the driver connection, outside any transaction (as PRAGMAs need)."""
    conn.connection.driver_connection.execute(statement)


# --- migrations -------------------------------------------------------------------------


def _alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    config.set_main_option("path_separator", "os")
    return config


@cache
def _script_directory() -> ScriptDirectory:
    return ScriptDirectory.from_config(_alembic_config())


def head_revision() -> str:
    """The schema revision this code needs."""
    head = _script_directory().get_current_head()
    if head is None:  # pragma: no cover - the package ships its migrations
        raise DatabaseError(str(MIGRATIONS_DIR), "no migrations found")
    return head


def _known_revisions() -> set[str]:
    return {script.revision for script in _script_directory().walk_revisions()}


# --- helpers ----------------------------------------------------------------------------


def _now() -> datetime:
    return datetime.now(UTC)


def _check_final(status: str, allowed: tuple[str, ...] = FINAL_STATUSES) -> None:
    if status not in allowed:
        raise ValueError(f"final status must be one of {allowed}, not {status!r}")


def _edges_by_uri(output_uri: str, inputs: Sequence[InputRef]) -> dict[str, str]:
    """The inputs as ``{uri: sha256}``; a URI listed twice must carry one digest."""
    edges: dict[str, str] = {}
    for ref in inputs:
        if ref.uri == output_uri:
            raise ValueError(f"{output_uri} cannot be an input of itself")
        if edges.setdefault(ref.uri, ref.sha256) != ref.sha256:
            raise ValueError(f"input {ref.uri} listed with two different sha256 digests")
    return edges


def _product_ids(session: Session, uris: list[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    for start in range(0, len(uris), _IN_CHUNK):
        chunk = uris[start : start + _IN_CHUNK]
        rows = session.execute(select(Product.uri, Product.id).where(Product.uri.in_(chunk)))
        found.update({product_uri: product_id for product_uri, product_id in rows})
    return found


def _run_record(run: Run) -> RunRecord:
    return RunRecord(
        id=run.id,
        name=run.name,
        status=run.status,
        parameters=run.parameters,
        software_versions=run.software_versions,
        started_at=run.started_at,
        finished_at=run.finished_at,
    )


def _task_record(task: Task) -> TaskRecord:
    return TaskRecord(
        id=task.id,
        run_id=task.run_id,
        step=task.step,
        partition=task.partition,
        inputs_digest=task.inputs_digest,
        parameters_digest=task.parameters_digest,
        status=task.status,
        error=task.error,
        started_at=task.started_at,
        finished_at=task.finished_at,
    )


def _product_record(product: Product) -> ProductRecord:
    return ProductRecord(
        id=product.id,
        uri=product.uri,
        sha256=product.sha256,
        size_bytes=product.size_bytes,
        product_type=product.product_type,
        schema_tag=product.schema_tag,
        created_at=product.created_at,
        task_id=product.task_id,
    )


_USERINFO = re.compile(r"(?P<head>://[^:/@]*:)[^@/]*(?P<tail>@)")


def _masked(url: str) -> str:
    """``url`` with its password replaced by ``***`` (also when SQLAlchemy cannot parse it)."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return _USERINFO.sub(r"\g<head>***\g<tail>", url)


def _password_of(url: str) -> str | None:
    try:
        password = make_url(url).password
    except ArgumentError:
        return None
    return str(password) if password else None


def _one_line(exc: BaseException, password: str | None) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    line = " ".join(lines[0].split()) if lines else type(exc).__name__
    if password:
        line = line.replace(password, "***")
    return line if len(line) <= 300 else line[:299] + "…"
