"""The YAML schemas and the pydantic models are one contract, and asdf enforces it both ways."""

from __future__ import annotations

import asdf
import numpy as np
import pytest
import yaml
from asdf.exceptions import ValidationError as SchemaValidationError

from roman_schemas import ProductValidationError, open_product, write_product
from roman_schemas.arrays import ArraySpec, asdf_datatype
from roman_schemas.product import TREE_KEY, registered_products
from roman_schemas.products.msos import ReferenceFrame
from roman_schemas.schema_gen import NDARRAY_TAG, expected_files, manifest_path, schema_path


def test_committed_schemas_and_manifest_are_what_the_models_generate():
    expected = expected_files()
    stale = [str(p) for p, text in expected.items() if not p.exists() or p.read_text() != text]
    assert not stale, (
        f"generated resources differ from the models: {stale}. A released schema is never "
        "edited: bump schema_version for a changed model, then run `roman-schemas generate`."
    )


def test_every_manifest_tag_has_a_schema_file_and_a_class(product_cls):
    tags = {}
    for path in manifest_path().parent.glob("*.yaml"):
        for entry in yaml.safe_load(path.read_text())["tags"]:
            tags[entry["tag_uri"]] = entry["schema_uri"]
    assert tags[product_cls.tag_uri()] == product_cls.schema_uri()
    schema = yaml.safe_load(schema_path(product_cls).read_text())
    assert schema["id"] == product_cls.schema_uri()
    assert asdf.schema.load_schema(product_cls.schema_uri())["id"] == product_cls.schema_uri()


def _walk_agreement(model, schema, where):
    """Every model field appears in the schema with the same requiredness and array spec."""
    assert set(schema["properties"]) == set(model.model_fields), where
    assert schema.get("additionalProperties") is False, where
    for name, field in model.model_fields.items():
        prop = schema["properties"][name]
        spec = next((m for m in field.metadata if isinstance(m, ArraySpec)), None)
        if spec is not None:
            assert prop["tag"] == NDARRAY_TAG, f"{where}.{name}"
            assert prop["datatype"] == asdf_datatype(spec.dtype), f"{where}.{name}"
            assert prop["ndim"] == spec.ndim, f"{where}.{name}"
            assert prop.get("unit") == spec.unit, f"{where}.{name}"
        annotation = field.annotation
        if isinstance(annotation, type) and hasattr(annotation, "model_fields"):
            _walk_agreement(annotation, prop, f"{where}.{name}")
    required = set(schema.get("required", []))
    for name, field in model.model_fields.items():
        optional = type(None) in getattr(field.annotation, "__args__", ())
        assert (name in required) is (not optional), f"{where}.{name} requiredness"


def test_pydantic_model_and_yaml_schema_agree_field_by_field(product_cls):
    schema = yaml.safe_load(schema_path(product_cls).read_text())
    _walk_agreement(product_cls, schema, product_cls.__name__)


def test_the_asdf_schema_rejects_an_array_of_the_wrong_dtype_on_write(tmp_path):
    product = ReferenceFrame.example()
    tree = product.to_tree()
    tree["data"] = tree["data"].astype("float64")  # bypass pydantic: only the schema guards
    af = asdf.AsdfFile()
    af.tree = {TREE_KEY: asdf.tagged.TaggedDict(tree, ReferenceFrame.tag_uri())}
    with pytest.raises(SchemaValidationError, match="float64"):
        af.validate()


def test_a_file_breaking_the_schema_is_refused_on_read_naming_the_file(tmp_path):
    path = write_product(ReferenceFrame.example(), tmp_path / "bad.asdf")
    data = path.read_bytes()
    assert data.count(b"season: s01") == 1
    path.write_bytes(data.replace(b"season: s01", b"season: sXY"))  # same length: blocks intact
    with (
        pytest.raises(ProductValidationError, match=r"bad\.asdf: .*season") as err,
        open_product(path),
    ):
        pass
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"data": np.zeros((64, 64), dtype="float64")}, "dtype float64"),
        ({"data": np.zeros(64, dtype="float32")}, "1-d array"),
        ({"err": np.zeros((8, 8), dtype="float32")}, "err shape"),
        ({"n_epochs_stacked": 0}, "greater than or equal to 1"),
    ],
)
def test_the_model_rejects_bad_arrays_and_values(change, message):
    product = ReferenceFrame.example()
    fields = {name: getattr(product, name) for name in ReferenceFrame.model_fields}
    fields.update(change)
    with pytest.raises(ValueError, match=message):
        ReferenceFrame(**fields)


def test_metadata_patterns_are_enforced():
    product = ReferenceFrame.example()
    with pytest.raises(ValueError, match="season"):
        product.meta.season = "2027"


def test_every_product_class_has_a_unique_tag_and_its_example_is_valid(product_cls, tmp_path):
    tags = registered_products()
    assert tags[product_cls.tag_uri()] is product_cls
    write_product(product_cls.example(), tmp_path / "x.asdf")
