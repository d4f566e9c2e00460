"""Released schemas are never edited; every released version keeps an example file that
still opens; a new version sits beside the old one."""

from __future__ import annotations

import hashlib
from pathlib import Path

import asdf
import pytest
import yaml

from roman_schemas import open_product, registered_products, validate_file
from roman_schemas.product import product_class
from roman_schemas.schema_gen import (
    RESOURCES,
    example_path,
    latest_products,
    manifest_path,
    released,
    schema_path,
)

EXAMPLES = Path(__file__).parent / "data" / "released"
RELEASED_PRODUCTS = [
    cls for cls in registered_products().values() if schema_path(cls) in released()
]


@pytest.mark.parametrize("path", sorted(released()), ids=lambda p: p.name)
def test_a_released_file_is_never_edited(path):
    assert path.exists(), f"released file {path} was deleted"
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert digest == released()[path], (
        f"{path.relative_to(RESOURCES)} was edited after release: "
        "restore it and put the change in a new schema version"
    )


@pytest.mark.parametrize("cls", RELEASED_PRODUCTS, ids=lambda c: c.tag_uri().rsplit("/", 1)[1])
def test_a_file_of_every_released_version_still_opens_as_that_version(cls):
    path = example_path(EXAMPLES, cls)
    assert path.exists(), f"no frozen example of {cls.tag_uri()} in {EXAMPLES}"
    with open_product(path) as product:
        assert type(product) is cls
    assert type(validate_file(path)) is cls
    with asdf.open(path) as af:
        assert type(af["ssc"]) is cls


def test_every_released_manifest_still_registers_its_tags():
    manifests = [p for p in released() if p.parent.name == "manifests"]
    assert manifests
    extension_uris = {e.extension_uri for e in asdf.get_config().extensions}
    for path in manifests:
        manifest = yaml.safe_load(path.read_text())
        assert manifest["extension_uri"] in extension_uris
        for entry in manifest["tags"]:
            assert entry["tag_uri"] in registered_products()


def test_the_current_manifest_lists_the_newest_version_of_every_product():
    manifest = yaml.safe_load(manifest_path().read_text())
    listed = {entry["tag_uri"] for entry in manifest["tags"]}
    assert listed == {cls.tag_uri() for cls in latest_products()}


def test_a_new_version_sits_beside_the_old_and_is_the_default():
    versions = sorted(
        cls.schema_version
        for cls in registered_products().values()
        if cls.product_type == "wfi_microlensing_reference_frame_level_3"
    )
    assert versions == ["1.0.0", "1.1.0", "1.2.0"]
    assert product_class("wfi_microlensing_reference_frame_level_3").schema_version == "1.2.0"
    old = product_class("wfi_microlensing_reference_frame_level_3", "1.0.0")
    assert schema_path(old).exists() and schema_path(old) in released()


def test_new_files_are_written_with_the_newest_version(tmp_path):
    from roman_schemas import write_product

    cls = product_class("wfi_microlensing_reference_frame_level_3")
    path = write_product(cls.example(), tmp_path / "rf.asdf")
    with asdf.open(path) as af:
        assert af["ssc"].tag_uri() == cls.tag_uri()
