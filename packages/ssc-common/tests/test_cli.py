"""The ``ssc`` command: info, products, lineage, db upgrade, demo, and one-line errors."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

from ssc_common.cli import app
from ssc_common.cli_base import run_app


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_info_reports_settings_versions_and_reachability(tmp_path, capsys):
    code = run_app(app, ["--storage", (tmp_path / "data").as_uri(), "info"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "roman-schemas:" in out and "ssc-common:" in out
    assert "storage:       reachable" in out
    assert "database:      reachable" in out and "revision 0002" in out


def test_unreachable_s3_is_one_error_line_and_exit_1(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SSC_S3_ENDPOINT_URL", f"http://127.0.0.1:{closed_port()}")
    monkeypatch.setenv("SSC_S3_MAX_ATTEMPTS", "1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    database = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    code = run_app(app, ["--storage", "s3://bucket/x", "--database", database, "info"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert len(err) == 1 and err[0].startswith("error: ") and "cannot connect" in err[0]


@pytest.mark.postgres
def test_unreachable_database_is_one_error_line_and_exit_1(tmp_path, capsys):
    database = f"postgresql://postgres@127.0.0.1:{closed_port()}/nothing"
    code = run_app(app, ["--storage", tmp_path.as_uri(), "--database", database, "products"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert len(err) == 1 and err[0].startswith("error: ") and "127.0.0.1" in err[0]


def test_a_bad_setting_is_one_error_line(capsys):
    code = run_app(app, ["--storage", "ftp://somewhere", "info"])
    err = capsys.readouterr().err.strip()
    assert code == 1 and err.startswith("error: SSC_STORAGE_URL") and "\n" not in err


@pytest.mark.postgres
def test_db_upgrade_migrates_an_empty_postgresql_database(capsys, tmp_path):
    from ssc_common.testing.postgres import throwaway_postgres_database

    with throwaway_postgres_database() as url:
        base = ["--storage", tmp_path.as_uri(), "--database", url]
        assert run_app(app, [*base, "db", "current"]) == 0
        assert "none" in capsys.readouterr().out
        assert run_app(app, [*base, "products"]) == 1
        assert "ssc db upgrade" in capsys.readouterr().err
        assert run_app(app, [*base, "db", "upgrade"]) == 0
        assert "revision 0002" in capsys.readouterr().out
        assert run_app(app, [*base, "products"]) == 0


def test_demo_then_products_and_lineage(ssc_settings, capsys, monkeypatch):
    for name, value in ssc_settings.model_dump().items():
        if value is not None:
            monkeypatch.setenv(f"SSC_{name.upper()}", str(value))
    assert run_app(app, ["demo"]) == 0
    out = capsys.readouterr().out
    assert "did nothing (already done)" in out and "registered demo products: 1" in out
    assert run_app(app, ["products", "--type", "wfi_microlensing_reference_frame_level_3"]) == 0
    listing = capsys.readouterr().out.strip().splitlines()
    assert len(listing) == 1
    uri = listing[0].split()[-1]
    assert run_app(app, ["lineage", uri]) == 0
    assert uri in capsys.readouterr().out
    assert run_app(app, ["lineage", uri + ".nope"]) == 1
    assert "not a registered product" in capsys.readouterr().err


def test_the_installed_command_exits_non_zero_without_a_traceback(tmp_path):
    env = {**os.environ, "SSC_STORAGE_URL": tmp_path.as_uri()}
    result = subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), "ssc"), "lineage", "file:///nothing"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert result.returncode == 1
    assert result.stderr.strip() == "error: file:///nothing: not a registered product"
