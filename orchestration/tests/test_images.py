"""The image lock pins every pipeline package at exactly the version its pyproject declares."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from ssc_orchestration.images import LOCK_FILE, image_for, load_lock

PACKAGES = Path(__file__).resolve().parents[2] / "packages"
RUNS_AS_IMAGE = ["ssc-common", "msos", "gdps", "cgi-dm"]


@pytest.mark.parametrize("package", RUNS_AS_IMAGE)
def test_every_pipeline_package_is_pinned_at_its_own_version(package):
    project = tomllib.loads((PACKAGES / package / "pyproject.toml").read_text())["project"]
    assert load_lock()[package].version == project["version"]


def test_the_lock_names_only_packages_that_exist():
    assert set(load_lock()) == set(RUNS_AS_IMAGE)
    for package in load_lock():
        assert (PACKAGES / package / "pyproject.toml").exists()


def test_a_pushed_image_is_referenced_by_digest(tmp_path, monkeypatch):
    lock = tmp_path / "images.lock.yaml"
    lock.write_text(LOCK_FILE.read_text().replace("digest: null", "digest: sha256:" + "ab" * 32, 1))
    monkeypatch.setenv("SSC_IMAGE_LOCK", str(lock))
    monkeypatch.setenv("SSC_IMAGE_REGISTRY", "123.dkr.ecr.us-east-1.amazonaws.com/roman-ssc")
    assert image_for("ssc-common") == (
        "123.dkr.ecr.us-east-1.amazonaws.com/roman-ssc/ssc-common:0.1.0@sha256:" + "ab" * 32
    )
    with pytest.raises(KeyError, match="no pinned image"):
        image_for("romancal")
