"""The processing database, on SQLite and PostgreSQL: schema, runs, tasks, products, lineage."""

from __future__ import annotations

import socket
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import select, text

from ssc_common.db import InputRef, ProcessingDB, head_revision
from ssc_common.db.models import Base, ProvenanceEdge
from ssc_common.errors import DatabaseError, DatabaseUnreachable
from ssc_common.provenance import digest_inputs, digest_parameters

RAW = InputRef("file:///data/raw/exposure-0001.asdf", "1" * 64)
DARK = InputRef("s3://calibration/dark-0007.asdf", "2" * 64)
PARAMETERS = {"sigma_clip": 3.0, "iterations": 5, "bands": ["F062", "F087"]}


def sha(character: str) -> str:
    return character * 64


def register(db: ProcessingDB, uri: str, *, inputs=(), task_id=None, digest="a", size=100):
    return db.register_product(
        uri=uri,
        sha256=sha(digest),
        size_bytes=size,
        product_type="msos.reference",
        schema_tag="asdf://roman.ssc/schemas/msos/reference-1.0.0",
        task_id=task_id,
        inputs=list(inputs),
    )


def finished_task(
    db: ProcessingDB, *, inputs=(RAW, DARK), parameters=PARAMETERS, status="succeeded"
):
    task = db.start_task(
        "msos.reference", partition="s01/f03/wfi01", inputs=list(inputs), parameters=parameters
    )
    db.finish_task(task.id, status, error="boom" if status == "failed" else None)
    return task


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# --- schema ---------------------------------------------------------------------------


def test_migrations_apply_from_empty_and_match_the_models(empty_database_url):
    db = ProcessingDB(empty_database_url)
    try:
        assert db.current_revision() is None

        assert db.upgrade() == head_revision() == "0002"
        assert db.current_revision() == "0002"
        db.check()
        with db.engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            assert compare_metadata(context, Base.metadata) == []

        assert db.upgrade() == "0002"  # a second upgrade is a no-op
    finally:
        db.dispose()


def test_unmigrated_database_is_reported(empty_database_url):
    with pytest.raises(DatabaseError) as raised:
        ProcessingDB.open(empty_database_url)

    assert not isinstance(raised.value, DatabaseUnreachable)
    message = str(raised.value)
    assert "\n" not in message
    expected = f"schema is at revision none, code needs {head_revision()}: run `ssc db upgrade`"
    assert message.endswith(expected)


def test_database_migrated_by_newer_software_is_reported(empty_database_url):
    ProcessingDB.open(empty_database_url, upgrade=True).dispose()
    db = ProcessingDB(empty_database_url)
    try:
        with db.engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
        with pytest.raises(DatabaseError, match="revision 9999, unknown to this software"):
            db.check()
        with pytest.raises(DatabaseError, match=r"migrating the schema: .*9999"):
            db.upgrade()
    finally:
        db.dispose()


def test_open_with_upgrade_migrates_an_empty_database(empty_database_url):
    with ProcessingDB.open(empty_database_url, upgrade=True) as db:
        assert db.current_revision() == head_revision()


# --- connections and errors -----------------------------------------------------------


def test_unreachable_database_is_one_clear_line():
    url = f"postgresql://ssc:s3cret-pw@127.0.0.1:{free_port()}/ssc"
    started = time.monotonic()

    with pytest.raises(DatabaseUnreachable) as raised:
        ProcessingDB.open(url)

    assert time.monotonic() - started < 5
    message = str(raised.value)
    assert "\n" not in message
    assert "127.0.0.1" in message
    assert "s3cret-pw" not in message
    assert message.startswith("postgresql://ssc:***@127.0.0.1:")
    assert ": cannot connect: " in message


def test_sqlite_file_that_cannot_be_created_is_unreachable(tmp_path):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")

    with pytest.raises(DatabaseUnreachable, match="cannot create directory") as raised:
        ProcessingDB.open(f"sqlite:///{blocker}/sub/ssc.sqlite3")
    assert "\n" not in str(raised.value)


def test_sqlite_database_is_created_in_wal_mode_with_foreign_keys(tmp_path):
    path = tmp_path / "new" / "dir" / "ssc.sqlite3"
    db = ProcessingDB(f"sqlite:///{path}")
    assert not path.parent.exists()  # nothing happens before the first connection

    try:
        db.upgrade()
        assert path.exists()
        with db.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 5000
    finally:
        db.dispose()


def test_postgresql_urls_use_psycopg_3_and_hide_the_password():
    db = ProcessingDB("postgresql://ssc:hunter2@db.example.org:5432/ssc")
    try:
        assert db.engine.url.drivername == "postgresql+psycopg"
        assert db.url == "postgresql://ssc:***@db.example.org:5432/ssc"
    finally:
        db.dispose()


def test_unsupported_database_url_is_a_database_error():
    with pytest.raises(DatabaseError, match="unsupported database 'mysql'"):
        ProcessingDB("mysql://ssc:pw@db.example.org/ssc")
    with pytest.raises(DatabaseError, match="not a database URL"):
        ProcessingDB("this is not a url")


def test_failed_statement_is_one_line_naming_the_product(db):
    with pytest.raises(DatabaseError) as raised:
        register(db, "file:///products/orphan.asdf", task_id="no-such-task")

    message = str(raised.value)
    assert "\n" not in message
    assert "registering file:///products/orphan.asdf" in message
    assert "foreign key" in message.lower()


# --- runs and tasks -------------------------------------------------------------------


def test_run_is_started_and_finished(db):
    run_id = db.start_run(
        "msos.process-partition",
        {"partition": "s01/f03/wfi01", "threshold": np.float32(0.5)},
        {"ssc-common": "0.1.0", "msos": "0.1.0"},
    )
    started = db.run(run_id)
    assert started.status == "running"
    assert started.parameters == {"partition": "s01/f03/wfi01", "threshold": 0.5}
    assert started.software_versions == {"ssc-common": "0.1.0", "msos": "0.1.0"}
    assert started.started_at.tzinfo is UTC
    assert started.finished_at is None

    db.finish_run(run_id, "succeeded")

    finished = db.run(run_id)
    assert finished.status == "succeeded"
    assert finished.started_at <= finished.finished_at <= datetime.now(UTC)


def test_task_is_started_and_finished(db):
    run_id = db.start_run("msos.process-partition", {}, {})
    task = db.start_task(
        "msos.reference",
        partition="s01/f03/wfi01",
        inputs=[RAW, DARK],
        parameters=PARAMETERS,
        run_id=run_id,
    )
    assert task.status == "running"
    assert task.run_id == run_id
    assert task.partition == "s01/f03/wfi01"
    assert task.inputs_digest == digest_inputs([RAW, DARK])
    assert task.parameters_digest == digest_parameters(PARAMETERS)

    db.finish_task(task.id, "failed", error="InputError: exposure-0001.asdf: truncated")

    stored = db.task(task.id)
    assert stored.status == "failed"
    assert stored.error == "InputError: exposure-0001.asdf: truncated"
    assert stored.finished_at.tzinfo is UTC


def test_finishing_needs_a_final_status_and_an_existing_task(db):
    task = db.start_task("msos.reference", partition=None, inputs=[], parameters={})
    with pytest.raises(ValueError, match="final status"):
        db.finish_task(task.id, "running")
    with pytest.raises(DatabaseError, match="no such task"):
        db.finish_task("0" * 32, "succeeded")
    with pytest.raises(DatabaseError, match="no such run"):
        db.finish_run("0" * 32, "failed")


def test_finished_task_is_found_by_inputs_and_parameters(db):
    task = finished_task(db)

    # The same inputs in another order and the same parameters spelled differently.
    found = db.find_finished_task(
        "msos.reference",
        digest_inputs([DARK, RAW]),
        digest_parameters({"bands": ["F062", "F087"], "iterations": 5.0, "sigma_clip": 3}),
    )
    assert found is not None
    assert found.id == task.id
    assert found.status == "succeeded"


def test_finished_task_is_not_found_when_a_parameter_changes(db):
    finished_task(db)
    changed = {**PARAMETERS, "sigma_clip": 3.5}
    assert (
        db.find_finished_task(
            "msos.reference", digest_inputs([RAW, DARK]), digest_parameters(changed)
        )
        is None
    )


def test_finished_task_is_not_found_when_an_input_changes(db):
    finished_task(db)
    rewritten = InputRef(RAW.uri, sha("9"))
    assert (
        db.find_finished_task(
            "msos.reference", digest_inputs([rewritten, DARK]), digest_parameters(PARAMETERS)
        )
        is None
    )


def test_failed_or_running_task_is_not_found(db):
    finished_task(db, status="failed")
    db.start_task("msos.reference", partition=None, inputs=[RAW, DARK], parameters=PARAMETERS)
    assert (
        db.find_finished_task(
            "msos.reference", digest_inputs([RAW, DARK]), digest_parameters(PARAMETERS)
        )
        is None
    )


def test_latest_succeeded_task_is_found(db):
    finished_task(db)
    latest = finished_task(db)
    found = db.find_finished_task(
        "msos.reference", digest_inputs([RAW, DARK]), digest_parameters(PARAMETERS)
    )
    assert found.id == latest.id


# --- products and provenance ----------------------------------------------------------


def test_product_is_registered_with_its_provenance(db):
    task = db.start_task("msos.reference", partition=None, inputs=[RAW, DARK], parameters={})
    calibrated = register(db, RAW.uri, digest="1")  # an input that is itself a product
    product = register(db, "file:///products/reference.asdf", inputs=[RAW, DARK], task_id=task.id)

    assert product.task_id == task.id
    assert product.created_at.tzinfo is UTC
    assert db.product("file:///products/reference.asdf") == product
    assert db.product("file:///products/missing.asdf") is None
    assert db.task_products(task.id) == [product]
    assert db.inputs_of(product.uri) == sorted([RAW, DARK])
    assert db.inputs_of(calibrated.uri) == []
    assert linked_inputs(db, product.id) == {RAW.uri: calibrated.id, DARK.uri: None}


def test_reregistering_a_uri_replaces_the_product_and_its_inputs(db):
    first_task = db.start_task("msos.reference", partition=None, inputs=[RAW], parameters={})
    rerun_task = db.start_task("msos.reference", partition=None, inputs=[DARK], parameters={})
    first = register(db, "file:///products/reference.asdf", inputs=[RAW], task_id=first_task.id)
    downstream = register(
        db, "file:///products/mosaic.asdf", inputs=[InputRef(first.uri, sha("a"))]
    )

    rewritten = register(
        db,
        first.uri,
        inputs=[DARK],
        task_id=rerun_task.id,
        digest="b",
        size=200,
    )

    assert rewritten.id == first.id
    assert db.product(first.uri) == rewritten
    assert (rewritten.sha256, rewritten.size_bytes, rewritten.task_id) == (
        sha("b"),
        200,
        rerun_task.id,
    )
    assert db.inputs_of(first.uri) == [DARK]
    assert db.task_products(first_task.id) == []
    assert len(db.products()) == 2
    # The product made from it keeps its link (and the digest it was actually made from).
    assert linked_inputs(db, downstream.id) == {first.uri: first.id}
    assert db.inputs_of(downstream.uri) == [InputRef(first.uri, sha("a"))]


def test_input_registered_later_is_linked_to_earlier_products(db):
    product = register(db, "file:///products/reference.asdf", inputs=[RAW])
    assert linked_inputs(db, product.id) == {RAW.uri: None}

    raw = register(db, RAW.uri, digest="1")

    assert linked_inputs(db, product.id) == {RAW.uri: raw.id}


def test_inputs_must_be_consistent(db):
    with pytest.raises(ValueError, match="two different sha256"):
        register(db, "file:///p.asdf", inputs=[RAW, InputRef(RAW.uri, sha("f"))])
    with pytest.raises(ValueError, match="input of itself"):
        register(db, RAW.uri, inputs=[RAW])
    # Listing one input twice is harmless.
    product = register(db, "file:///p.asdf", inputs=[RAW, RAW])
    assert db.inputs_of(product.uri) == [RAW]


def test_products_are_filtered_by_type_prefix_and_task(db):
    task = db.start_task("msos.reference", partition=None, inputs=[], parameters={})
    a = register(db, "file:///products/s01/a.asdf", task_id=task.id)
    b = register(db, "file:///products/s01_x/b.asdf")
    c = db.register_product(
        uri="file:///products/s01/c.parquet",
        sha256=sha("c"),
        size_bytes=5_000_000_000,  # more than 32 bits
        product_type="msos.catalog",
        schema_tag="catalog-1.0",
        task_id=None,
        inputs=[],
    )

    assert db.products() == [a, b, c]
    assert db.products(product_type="msos.catalog") == [c]
    assert db.products(uri_prefix="file:///products/s01/") == [a, c]
    assert db.products(uri_prefix="file:///products/s01_") == [b]  # "_" is no wildcard
    assert db.products(task_id=task.id) == [a]
    assert db.products(limit=2) == [a, b]
    assert db.product(c.uri).size_bytes == 5_000_000_000


def linked_inputs(db: ProcessingDB, product_id: int) -> dict[str, int | None]:
    """``{input_uri: input_product_id}`` of a product's provenance edges."""
    query = select(ProvenanceEdge.input_uri, ProvenanceEdge.input_product_id).where(
        ProvenanceEdge.output_product_id == product_id
    )
    with db.engine.connect() as conn:
        return {uri: linked for uri, linked in conn.execute(query)}


# --- concurrency ----------------------------------------------------------------------


def test_concurrent_sqlite_writers_do_not_lock(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'ssc.sqlite3'}"
    ProcessingDB.open(url, upgrade=True).dispose()
    writers = [ProcessingDB.open(url) for _ in range(2)]  # as two processes would
    start = threading.Barrier(len(writers))
    failures: list[BaseException] = []

    def write(db: ProcessingDB, worker: int) -> None:
        try:
            start.wait()
            for i in range(40):
                task = db.start_task(
                    "msos.reference", partition=None, inputs=[RAW], parameters={"i": i}
                )
                register(db, f"file:///w{worker}/{i}.asdf", inputs=[RAW], task_id=task.id)
                register(db, "file:///shared.asdf", inputs=[DARK], digest=str(worker))
                db.find_finished_task("msos.reference", task.inputs_digest, task.parameters_digest)
                db.finish_task(task.id, "succeeded")
        except BaseException as exc:  # reported by the main thread
            failures.append(exc)

    threads = [threading.Thread(target=write, args=(db, n)) for n, db in enumerate(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    try:
        assert failures == []
        assert len(writers[0].products()) == 2 * 40 + 1
    finally:
        for db in writers:
            db.dispose()


# --- digests --------------------------------------------------------------------------


def test_digest_inputs_is_order_independent():
    assert digest_inputs([RAW, DARK]) == digest_inputs([DARK, RAW])
    assert digest_inputs([RAW, DARK, RAW]) == digest_inputs([DARK, RAW])
    assert digest_inputs([RAW]) != digest_inputs([RAW, DARK])
    assert digest_inputs([RAW]) != digest_inputs([InputRef(RAW.uri, sha("9"))])
    assert digest_inputs([]) == digest_inputs(iter([]))
    assert len(digest_inputs([RAW])) == 64


def test_digest_parameters_is_canonical():
    base = digest_parameters({"a": 1, "b": {"x": [1, 2], "y": None}, "c": "text", "d": True})
    assert base == digest_parameters(
        {"d": True, "c": "text", "b": {"y": None, "x": (1, 2)}, "a": 1}
    )
    assert base == digest_parameters(
        {"a": np.int64(1), "b": {"x": [np.float64(1.0), 2], "y": None}, "c": "text", "d": np.True_}
    )
    assert base != digest_parameters(
        {"a": 1, "b": {"x": [2, 1], "y": None}, "c": "text", "d": True}
    )
    assert base != digest_parameters(
        {"a": True, "b": {"x": [1, 2], "y": None}, "c": "text", "d": True}
    )
    assert digest_parameters({"sigma": 0.1}) != digest_parameters({"sigma": 0.10000001})
    assert digest_parameters({}) == digest_parameters({})


@pytest.mark.parametrize(
    "value",
    [{1, 2}, b"bytes", Path("/tmp"), datetime(2026, 1, 1, tzinfo=UTC), object(), np.zeros(2)],
    ids=["set", "bytes", "path", "datetime", "object", "array"],
)
def test_digest_parameters_rejects_values_without_one_json_form(value):
    with pytest.raises(TypeError):
        digest_parameters({"value": value})


def test_digest_parameters_rejects_non_string_keys_and_nan():
    with pytest.raises(TypeError, match="keys must be strings"):
        digest_parameters({"nested": {1: "one"}})
    with pytest.raises(ValueError, match="no JSON form"):
        digest_parameters({"sigma": float("nan")})


def test_a_task_can_be_rejected_with_its_reason(db):
    task = db.start_task("msos.dia", partition="s01/f03/wfi01", inputs=[], parameters={})
    db.finish_task(task.id, "rejected", error="epoch.asdf: all pixels are NaN")
    record = db.task(task.id)
    assert record.status == "rejected" and "all pixels are NaN" in record.error
    with pytest.raises(ValueError, match="final status"):
        db.finish_run(db.start_run("r", {}, {}), "rejected")


def test_migration_0002_keeps_the_tasks_of_a_0001_database(empty_database_url):
    from alembic import command

    from ssc_common.db.database import _alembic_config

    database = ProcessingDB(empty_database_url)
    try:
        config = _alembic_config()
        with database.engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "0001")
        with database.engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO tasks (id, step, inputs_digest, parameters_digest, parameters,"
                    " status, started_at) VALUES ('t1', 's', 'a', 'b', '{}', 'succeeded',"
                    " '2026-01-01 00:00:00')"
                )
            )
        assert database.upgrade() == "0002"
        assert database.task("t1").status == "succeeded"
        later = database.start_task("s", partition=None, inputs=[], parameters={})
        database.finish_task(later.id, "rejected", error="bad epoch")
    finally:
        database.dispose()
