"""Opening a big light-curve partition reads its header, not its gigabyte of data."""

from __future__ import annotations

import io
import time

import numpy as np
import pytest

from roman_schemas import open_product, write_product
from roman_schemas.products.msos import DailyLightCurves, LightCurveObjects

N_OBJECTS = 1_100_000  # × 96 epochs × (4 + 4 + 2) bytes ≈ 1.06 GB
N_EPOCHS = 96


class CountingFile(io.FileIO):
    """A file that counts the bytes read from it."""

    bytes_read = 0

    def readinto(self, buffer):
        count = super().readinto(buffer)
        self.bytes_read += count or 0
        return count


@pytest.fixture(scope="module")
def gigabyte_partition(tmp_path_factory):
    small = DailyLightCurves.example(n_objects=4, n_epochs=N_EPOCHS)
    fields = {name: getattr(small, name) for name in DailyLightCurves.model_fields}
    fields["object_id"] = np.arange(1, N_OBJECTS + 1, dtype="int64")
    shape = (N_OBJECTS, N_EPOCHS)
    rng = np.random.default_rng(0)
    fields["delta_flux_ujy"] = rng.standard_normal(shape, dtype="float32")
    fields["delta_flux_err_ujy"] = np.ones(shape, dtype="float32")
    fields["flags"] = np.zeros(shape, dtype="uint16")
    ones = np.ones(N_OBJECTS, dtype="float32")
    fields["objects"] = LightCurveObjects(
        object_id=fields["object_id"],
        ra_deg=rng.uniform(268.0, 268.1, N_OBJECTS),
        dec_deg=rng.uniform(-29.1, -29.0, N_OBJECTS),
        ref_flux_ujy=ones,
        ref_flux_err_ujy=ones,
        n_epochs_good=np.full(N_OBJECTS, N_EPOCHS, dtype="uint32"),
        median_delta_flux_ujy=ones,
        rms_delta_flux_ujy=ones,
    )
    path = tmp_path_factory.mktemp("big") / "partition.asdf"
    write_product(DailyLightCurves(**fields), path)
    return path


@pytest.mark.slow
def test_opening_a_1_gb_partition_reads_under_a_megabyte(gigabyte_partition):
    size = gigabyte_partition.stat().st_size
    assert size > 1.0e9
    raw = CountingFile(gigabyte_partition, "rb")
    with io.BufferedReader(raw) as handle, open_product(handle, DailyLightCurves) as product:
        assert product.delta_flux_ujy.shape == (N_OBJECTS, N_EPOCHS)
        assert product.meta.season == "s01" and len(product.epochs) == N_EPOCHS
        opened = raw.bytes_read
        row = np.asarray(product.delta_flux_ujy[123_456])  # one star's day
        assert row.shape == (N_EPOCHS,)
    assert opened < 1_000_000, f"open read {opened} bytes of {size}"


@pytest.mark.slow
def test_opening_a_1_gb_partition_takes_well_under_a_second(gigabyte_partition):
    with open_product(gigabyte_partition):  # first use loads asdf's extensions
        pass
    start = time.perf_counter()
    with open_product(gigabyte_partition, DailyLightCurves) as product:
        assert product.object_id.shape == (N_OBJECTS,)
    elapsed = time.perf_counter() - start
    assert elapsed < 0.5, f"opening took {elapsed:.2f} s"
