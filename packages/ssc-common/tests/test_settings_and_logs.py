"""Settings come from SSC_* variables with embedded defaults; logs are text or JSON lines."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from ssc_common.errors import ConfigurationError
from ssc_common.logs import configure_logging
from ssc_common.metrics import REGISTRY, export_metrics, record_product, timed_step
from ssc_common.settings import SQLITE_FILE_NAME, get_settings


def test_embedded_defaults_are_local_files_and_sqlite_inside_them(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    for name in ("SSC_STORAGE_URL", "SSC_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    settings = get_settings()
    assert settings.storage_url == "file://./ssc-data"
    expected = (tmp_path / "ssc-data" / SQLITE_FILE_NAME).resolve()
    assert settings.resolved_database_url() == f"sqlite:///{expected}"


def test_environment_variables_and_overrides_take_precedence(monkeypatch):
    monkeypatch.setenv("SSC_STORAGE_URL", "s3://bucket/prefix")
    monkeypatch.setenv("SSC_DATABASE_URL", "postgresql://db.example/ssc")
    settings = get_settings(log_format="json")
    assert settings.storage_url == "s3://bucket/prefix"
    assert settings.resolved_database_url() == "postgresql://db.example/ssc"
    assert settings.log_format == "json"


def test_cloud_storage_without_a_database_url_is_a_configuration_error(monkeypatch):
    monkeypatch.delenv("SSC_DATABASE_URL", raising=False)
    with pytest.raises(ConfigurationError, match="SSC_DATABASE_URL: must be set"):
        get_settings(storage_url="s3://bucket/x").resolved_database_url()


def test_a_malformed_setting_names_its_variable(monkeypatch):
    monkeypatch.setenv("SSC_S3_MAX_ATTEMPTS", "many")
    with pytest.raises(ConfigurationError, match=r"^SSC_S3_MAX_ATTEMPTS: "):
        get_settings()


def test_json_logs_are_one_object_per_line_with_context(capsys):
    configure_logging("json", "INFO")
    logging.getLogger("ssc_common.test").info("published", extra={"uri": "s3://b/k"})
    line = capsys.readouterr().err.strip().splitlines()[-1]
    entry = json.loads(line)
    assert entry["message"] == "published" and entry["uri"] == "s3://b/k"
    assert entry["level"] == "info" and entry["time"].endswith("+00:00")


def test_text_logs_show_context_as_key_value(capsys):
    configure_logging("text", "INFO")
    logging.getLogger("ssc_common.test").warning("slow", extra={"step": "msos.dia"})
    assert "warning ssc_common.test: slow  step=msos.dia" in capsys.readouterr().err


def test_metrics_count_steps_and_products_and_write_a_text_file(tmp_path: Path):
    with timed_step("test.metrics"):
        record_product("test_product", 1234)
    with pytest.raises(RuntimeError), timed_step("test.metrics"):
        raise RuntimeError("boom")
    target = tmp_path / "ssc.prom"
    export_metrics("test", None, str(target))
    text = target.read_text()
    assert 'ssc_step_runs_total{outcome="succeeded",step="test.metrics"}' in text
    assert 'ssc_step_runs_total{outcome="failed",step="test.metrics"}' in text
    assert 'ssc_product_bytes_written_total{product_type="test_product"}' in text
    assert (
        REGISTRY.get_sample_value("ssc_products_written_total", {"product_type": "test_product"})
        >= 1
    )
