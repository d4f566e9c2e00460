"""Product files: written atomically, read back typed and lazily, bad files refused in one line."""

from __future__ import annotations

import asdf
import numpy as np
import pytest

from roman_schemas import (
    ProductReadError,
    WrongProductType,
    open_product,
    read_product,
    validate_file,
    write_product,
)
from roman_schemas.io import product_bytes
from roman_schemas.products.msos import ReferenceFrame


def test_plain_asdf_open_returns_the_typed_product_with_lazy_arrays(example_file, product_cls):
    with asdf.open(example_file) as af:
        product = af["ssc"]
        assert type(product) is product_cls
        arrays = list(_arrays(product))
        assert arrays, "every product holds arrays"
        assert all(not isinstance(a, np.ndarray) for a in arrays), "arrays load lazily"


def _arrays(model):
    """Every array inside a product, however deeply nested."""
    for name in type(model).model_fields:
        value = getattr(model, name)
        if hasattr(type(value), "model_fields"):
            yield from _arrays(value)
        elif hasattr(value, "dtype") and hasattr(value, "shape"):
            yield value


def test_round_trip_keeps_every_value(tmp_path):
    original = ReferenceFrame.example()
    path = write_product(original, tmp_path / "rf.asdf")
    again = read_product(path, ReferenceFrame)
    assert again.meta == original.meta
    np.testing.assert_array_equal(again.data, original.data)
    np.testing.assert_array_equal(again.objects.flux_ujy, original.objects.flux_ujy)
    np.testing.assert_array_equal(again.psf.stamps, original.psf.stamps)
    assert again.meta.file_date.tzinfo is not None


def test_a_failed_write_leaves_neither_the_file_nor_a_temporary(tmp_path, monkeypatch):
    path = tmp_path / "rf.asdf"

    def explode(self, fd, *args, **kwargs):
        fd.write(b"#ASDF 1.0.0\n partial")
        raise OSError("disk full")

    monkeypatch.setattr(asdf.AsdfFile, "write_to", explode)
    with pytest.raises(OSError, match="disk full"):
        write_product(ReferenceFrame.example(), path)
    assert list(tmp_path.iterdir()) == []


def test_a_rewrite_replaces_the_old_file_whole(tmp_path):
    path = tmp_path / "rf.asdf"
    write_product(ReferenceFrame.example(seed=1), path)
    write_product(ReferenceFrame.example(seed=2), path)
    again = read_product(path)
    np.testing.assert_array_equal(again.data, ReferenceFrame.example(seed=2).data)
    assert [p.name for p in tmp_path.iterdir()] == ["rf.asdf"]


@pytest.mark.parametrize("fraction", [0.05, 0.5, 0.9, 0.999])
def test_a_truncated_file_is_one_clear_error(tmp_path, fraction):
    whole = product_bytes(ReferenceFrame.example())
    path = tmp_path / "cut.asdf"
    path.write_bytes(whole[: int(len(whole) * fraction)])
    with pytest.raises(ProductReadError) as err:
        read_product(path)
    message = str(err.value)
    assert message.startswith(f"{path}: ") and "\n" not in message


def test_garbage_and_missing_files_are_one_clear_error(tmp_path):
    garbage = tmp_path / "garbage.asdf"
    garbage.write_bytes(b"SIMPLE  =                    T" * 40)
    with pytest.raises(ProductReadError, match=r"garbage\.asdf: not a readable ASDF file"):
        read_product(garbage)
    with pytest.raises(ProductReadError, match=r"missing\.asdf: no such file"):
        read_product(tmp_path / "missing.asdf")


def test_an_asdf_file_that_is_not_an_ssc_product_is_the_wrong_type(tmp_path):
    path = tmp_path / "other.asdf"
    asdf.AsdfFile({"roman": {"data": np.zeros(3)}}).write_to(path)
    with pytest.raises(WrongProductType, match="not a Roman SSC product"):
        read_product(path)


def test_a_flipped_byte_in_a_block_fails_checksum_validation(tmp_path):
    path = write_product(ReferenceFrame.example(), tmp_path / "rf.asdf")
    data = bytearray(path.read_bytes())
    at = data.index(b"\xd3BLK") + 6 + 48 + 100  # inside the first block's data
    data[at] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ProductReadError, match="checksum"):
        validate_file(path)


def test_open_product_can_name_the_file_by_its_uri(tmp_path):
    path = write_product(ReferenceFrame.example(), tmp_path / "rf.asdf")
    with open(path, "rb") as handle, open_product(handle, subject="s3://b/rf.asdf") as product:
        assert product.meta.season == "s01"
    with open(path, "rb") as handle:
        pass  # closed on purpose
    with pytest.raises(ValueError), open_product(handle, subject="s3://b/rf.asdf"):
        pass
